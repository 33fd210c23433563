"""session.authenticate through the broker: customers' auto-login JWTs (signed with the
project's secret key) and agents' JWTs (signed with a Connect tenant's shared secret) verified
by the jira worker, identities resolved to Jira accounts, and every kind of bad token refused
with a reason."""
import hashlib
import time

import jwt
import pytest

from test_jira_worker import TENANT, JiraStack, ctl

PROJECT_KEY = "widget-key"          # the project's secret key (JiraStack seeds it)
SHARED = "connect-shared-secret-0123456789abcdef"


@pytest.fixture
def session(cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    s = JiraStack(cluster_factory, redis_server, dynamo_proxy, jira_sandbox)
    ctl(dynamo_proxy, "tenant", "set", "--id", "cloud", "--base-url", jira_sandbox.url,
        "--auth", "connect", "--shared-secret-env", "SHARED", SHARED=SHARED)
    ctl(dynamo_proxy, "agent", "set", "--tenant", "cloud", "--account", "agent-42",
        "--projects", "SUP,HR")
    s.start_jira(1)
    yield s
    s.client.close()


def customer_token(key=PROJECT_KEY, **claims):
    now = int(time.time())
    body = {"email": "erin@example.com", "displayName": "Erin", "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="HS256")


def agent_token(key=SHARED, **claims):
    now = int(time.time())
    body = {"iss": "cloud", "sub": "agent-42", "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="HS256")


def authenticate(s, kind, token, tenant=TENANT, project="SUP"):
    body = {"tenant": tenant, "kind": kind, "token": token}
    if project:
        body["project"] = project
    return s.call("session.authenticate", body)


def test_customer_and_agent_tokens_are_verified_and_resolved(session):
    me = authenticate(session, "customer", customer_token())
    assert me["kind"] == "customer" and me["display_name"] == "Erin"
    assert me["account"] == session.sandbox.user_by_email("erin@example.com")["accountId"]
    assert authenticate(session, "customer", customer_token())["account"] == me["account"]
    agent = authenticate(session, "agent", agent_token(), tenant="cloud", project=None)
    assert agent["kind"] == "agent" and agent["account"] == "agent-42"
    assert sorted(agent["projects"]) == ["HR", "SUP"]  # the projects this agent serves


def test_a_known_customer_is_read_through_a_redis_cache(session):
    me = authenticate(session, "customer", customer_token())
    # the cache is keyed by the address's hash, like the DynamoDB item: the address is nowhere
    key = f"jid|{TENANT}|{hashlib.sha256(b'erin@example.com').hexdigest()}"
    assert session.redis.command("GET", key) == me["account"].encode()
    assert 0 < session.redis.command("TTL", key) <= 86400
    for name in session.redis.command("KEYS", "*"):
        assert b"erin" not in name.lower()
    # the next hello is answered from the cache (a changed entry shows through), not DynamoDB
    session.redis.command("SET", key, "cached-account")
    assert authenticate(session, "customer", customer_token(email="Erin@Example.com"))[
        "account"] == "cached-account"
    # an entry that is not an account id is a miss: DynamoDB answers and the entry is mended
    session.redis.command("SET", key, "not an account\x00id")
    assert authenticate(session, "customer", customer_token())["account"] == me["account"]
    assert session.redis.command("GET", key) == me["account"].encode()


@pytest.mark.parametrize("what,kind,token,tenant,project", [
    ("wrong key", "customer", lambda: customer_token(key="not-the-key"), TENANT, "SUP"),
    ("expired", "customer", lambda: customer_token(iat=int(time.time()) - 1000,
                                                   exp=int(time.time()) - 600), TENANT, "SUP"),
    ("no exp", "customer", lambda: customer_token(exp=None), TENANT, "SUP"),
    ("long-lived", "customer", lambda: customer_token(exp=int(time.time()) + 86400), TENANT,
     "SUP"),
    ("no email", "customer", lambda: customer_token(email=None), TENANT, "SUP"),
    ("bad email", "customer", lambda: customer_token(email="nobody"), TENANT, "SUP"),
    ("other project", "customer", lambda: customer_token(), TENANT, "NOPE"),
    ("alg none", "customer", lambda: jwt.encode({"email": "a@b.c", "exp": 9999999999},
                                                None, algorithm="none"), TENANT, "SUP"),
    ("HS512", "customer", lambda: jwt.encode({"email": "a@b.c", "exp": 9999999999},
                                             PROJECT_KEY, algorithm="HS512"), TENANT, "SUP"),
    ("garbage", "customer", lambda: "not.a.jwt", TENANT, "SUP"),
    ("agent wrong key", "agent", lambda: agent_token(key="x" * 40), "cloud", None),
    ("agent other tenant", "agent", lambda: agent_token(iss="acme"), "cloud", None),
    ("agent unknown", "agent", lambda: agent_token(sub="stranger"), "cloud", None),
    ("agent expired", "agent", lambda: agent_token(exp=int(time.time()) - 600), "cloud", None),
    ("agent of a token tenant", "agent", lambda: agent_token(iss=TENANT), TENANT, None),
])
def test_bad_tokens_are_refused_with_a_reason(session, what, kind, token, tenant, project):
    answer = authenticate(session, kind, token(), tenant=tenant, project=project)
    assert answer.get("error") == "unauthorized", (what, answer)
    assert answer["message"], what
