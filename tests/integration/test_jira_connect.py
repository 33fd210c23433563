"""Atlassian Connect end to end: the Jira sandbox installs Parley from the gateway's
descriptor (signed install hook, RS256, verified by the jira worker against the sandbox's
install-keys service), Parley then calls Jira with JWTs whose qsh the sandbox checks; a comment
an agent writes in Jira comes back through the comment_created webhook as one message event,
Parley's own comments never echo; after uninstall the tenant is refused."""
import time

import jwt as pyjwt
import msgpack
import pytest
import zmq

from conftest import free_port, wait_for, wait_http_up
from test_jira_worker import JiraStack, message


@pytest.fixture
def connect(cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    stack = JiraStack(cluster_factory, redis_server, dynamo_proxy, jira_sandbox)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PARLEY_APP_BASE_URL": base,
           "PARLEY_CONNECT_INSTALL_KEYS_URL": f"{jira_sandbox.url}/_sandbox/connect-install-keys"}
    stack.start_jira(1, **env)
    stack.gateway = stack.cluster.spawn("gateway", "parley-gateway", PARLEY_GATEWAY_PORT=port,
                                        **env)
    wait_http_up(base, what="gateway /healthz")
    stack.base = base
    yield stack
    stack.client.close()


def subscriber(cluster, topic):
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(cluster.env["PARLEY_BROKER_EVENTS_OUT"])
    sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
    time.sleep(0.5)  # the subscription travels to the publishers
    return sub


def events(sub, wait_s):
    out, deadline = [], time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if sub.poll(100):
            topic, header, payload = sub.recv_multipart()
            out.append((msgpack.unpackb(header)["type"], msgpack.unpackb(payload)))
    return out


def test_install_jwt_calls_webhooks_and_uninstall(connect):
    sandbox = connect.sandbox
    installation = sandbox.install(f"{connect.base}/atlassian-connect.json")
    assert installation["installed"] is True, installation
    tenant = installation["clientKey"]

    # Parley's calls for this tenant are signed with the shared secret, qsh and all
    account = connect.call("jira.identity", {"tenant": tenant, "email": "grace@example.com",
                                             "display_name": "Grace Hopper"})["account"]
    started = connect.call("conversation.start", {
        "tenant": tenant, "project": "SUP", "conversation": "connect-1", "customer": account,
        "first_message": "Hello from the widget"})
    key = started["issue"]
    calls = [r for r in sandbox.requests()["records"] if r["path"].startswith("/rest/")]
    assert calls and all(r["auth"] == "jwt" and r["tenant"] == tenant for r in calls), calls
    assert all(200 <= r["status"] < 300 for r in calls), calls

    sub = subscriber(connect.cluster, f"conv.{tenant}.{key}")
    try:
        # Parley's own comment: persisted, and its webhook is not echoed as a message
        mine = dict(message(key, 0, "Parley wrote this"), tenant=tenant)
        assert connect.call("conversation.message", mine)["comment"]
        # an agent answers in Jira itself
        agent = sandbox.add_user("agent.smith@example.com", "Agent Smith", kind="agent")
        sandbox.comment_as_agent(key, agent["accountId"], "Answered in Jira")
        sandbox.wait_for_webhooks(2)
        seen = events(sub, 2.0)
        messages = [body for kind, body in seen if kind == "conversation.message"]
        assert len(messages) == 1, seen
        assert messages[0]["text"] == "Answered in Jira"
        assert messages[0]["author"] == agent["accountId"]
        assert messages[0]["author_name"] == "Agent Smith"
        assert [kind for kind, _ in seen].count("conversation.persisted") == 1
    finally:
        sub.close()

    # a forged lifecycle call (our own key, not the install-keys service's) is refused
    forged = pyjwt.encode({"iss": tenant, "aud": connect.base, "qsh": "x", "iat": int(time.time()),
                           "exp": int(time.time()) + 60}, "not-the-key", algorithm="HS256")
    import urllib.error
    import urllib.request
    request = urllib.request.Request(f"{connect.base}/connect/installed", data=b"{}",
                                     headers={"Authorization": f"JWT {forged}"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401

    # uninstalled: Parley refuses the tenant, and Jira refuses Parley's old credentials
    assert sandbox.uninstall(installation["key"])
    wait_for(lambda: connect.call("conversation.message",
                                  dict(message(key, 1, "after uninstall"), tenant=tenant))
             .get("error") == "tenant_uninstalled", timeout=40, what="tenant refused")
