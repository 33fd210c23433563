"""parleyctl writes tenants, projects and agents through the SigV4-checking proxy; boto3 reads
them back; secrets are sealed in the table and never taken from the command line."""
import base64
import json
import os
import subprocess

import boto3

from conftest import BIN

KEY = base64.b64encode(bytes(range(32))).decode()


def ctl(proxy, *args, **env):
    full = dict(os.environ, **proxy.env, PARLEY_SECRETS_KEY=KEY)
    full.update(env)
    return subprocess.run([os.path.join(BIN, "parleyctl"), *args], env=full,
                          capture_output=True, text=True, timeout=30)


def test_tenant_project_agent_round_trip_with_sealed_secrets(dynamo_proxy):
    assert ctl(dynamo_proxy, "init").returncode == 0
    done = ctl(dynamo_proxy, "tenant", "set", "--id", "acme", "--base-url",
               "https://acme.atlassian.net", "--auth", "token", "--api-user", "bot@acme.com",
               "--api-token-env", "TOKEN", TOKEN="jira-api-token-value")
    assert done.returncode == 0, done.stderr
    shown = json.loads(ctl(dynamo_proxy, "tenant", "show", "acme").stdout)
    assert shown["api_token"] == "set" and shown["base_url"] == "https://acme.atlassian.net"
    assert "jira-api-token-value" not in json.dumps(shown)

    done = ctl(dynamo_proxy, "project", "set", "--tenant", "acme", "--project", "SUP",
               "--issue-type", "Chat", "--secret-key-env", "KEY", "--anonymous", "yes",
               "--visibility", "schedule", "--schedule", "Europe/Berlin|mon-fri 09:00-17:00",
               KEY="project-signing-key")
    assert done.returncode == 0, done.stderr
    assert ctl(dynamo_proxy, "agent", "set", "--tenant", "acme", "--account", "557058:abc",
               "--projects", "SUP,HR").returncode == 0

    table = boto3.client("dynamodb", endpoint_url=dynamo_proxy.url,
                         region_name=dynamo_proxy.region,
                         aws_access_key_id=dynamo_proxy.access_key,
                         aws_secret_access_key=dynamo_proxy.secret_key)
    items = {i["sk"]["S"]: i for i in table.query(
        TableName="parley", KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "TENANT#acme"}})["Items"]}
    assert set(items) == {"META", "PROJECT#SUP", "AGENT#557058:abc"}
    assert b"jira-api-token-value" not in items["META"]["api_token"]["B"]
    assert b"project-signing-key" not in items["PROJECT#SUP"]["secret_key"]["B"]
    assert items["PROJECT#SUP"]["visibility"]["S"] == "schedule"
    assert set(items["AGENT#557058:abc"]["projects"]["SS"]) == {"SUP", "HR"}
    assert dynamo_proxy.rejected == 0

    # the wrong key cannot open what the right one sealed
    wrong = ctl(dynamo_proxy, "tenant", "show", "acme",
                PARLEY_SECRETS_KEY=base64.b64encode(bytes(32)).decode())
    assert wrong.returncode == 1 and "does not open" in wrong.stderr


def test_bad_arguments_are_refused_with_a_reason(dynamo_proxy):
    cases = [
        (["tenant", "set", "--id", "a", "--base-url", "ftp://x", "--auth", "token"], "--base-url"),
        (["tenant", "set", "--id", "a", "--base-url", "https://x", "--auth", "magic"], "--auth"),
        (["tenant", "set", "--id", "a", "--base-url", "https://x", "--auth", "token"],
         "--api-user"),
        (["project", "set", "--tenant", "a", "--project", "P", "--issue-type", "T",
          "--visibility", "sometimes"], "--visibility"),
        (["project", "set", "--tenant", "a", "--project", "P", "--issue-type", "T",
          "--visibility", "schedule"], "--schedule"),
        (["agent", "set", "--tenant", "a", "--account", "x"], "--projects"),
        (["agent", "set", "--tenant", "a", "--account", "x", "--projects", "P",
          "--schedule", "Mars/Olympus|mon 09:00-17:00"], "--schedule"),
        (["project", "set", "--tenant", "a", "--project", "P", "--issue-type", "T",
          "--visibility", "schedule", "--schedule", "Europe/Berlin|mon 25:00-26:00"],
         "--schedule"),
        (["tenant", "set", "--id", "a b", "--base-url", "https://x", "--auth", "token"], "--id"),
        (["frobnicate"], "unknown command"),
    ]
    for args, reason in cases:
        out = ctl(dynamo_proxy, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert reason in out.stderr, (args, out.stderr)
    no_table = ctl(dynamo_proxy, "tenant", "show", "nobody")
    assert no_table.returncode == 1 and "parleyctl init" in no_table.stderr
    assert ctl(dynamo_proxy, "init").returncode == 0
    missing = ctl(dynamo_proxy, "tenant", "show", "nobody")
    assert missing.returncode == 1 and "no tenant" in missing.stderr
    bad_key = ctl(dynamo_proxy, "init", PARLEY_SECRETS_KEY="short")
    assert bad_key.returncode == 2 and "PARLEY_SECRETS_KEY" in bad_key.stderr
