"""Who may do what on the gateway's websockets, end to end (gateway, broker, jira worker, the
Jira sandbox): every kind of refused hello answered with `unauthorized` and a reason while
the socket stays usable; tenants and conversations isolated from each other; anonymous
visitors where the project allows them, and only there."""
import asyncio
import json
import time

import jwt
import websockets

from test_gateway_ws import PROJECT_KEY, agent_token, chat, expect  # noqa: F401 (fixture)
from test_jira_worker import TENANT, ctl

ACME_KEY = "widget-key"  # the acme tenant's SUP signing key (JiraStack)


def customer(email, key=PROJECT_KEY, lifetime_s=300, iat=None, name="Cus Tomer"):
    now = int(time.time()) if iat is None else iat
    return jwt.encode({"email": email, "displayName": name, "iat": now,
                       "exp": now + lifetime_s}, key, algorithm="HS256")


async def hello(ws, tenant, kind, token=None, project="SUP"):
    frame = {"type": "hello", "tenant": tenant, "kind": kind}
    if token is not None:
        frame["token"] = token
    if kind == "customer" and project:
        frame["project"] = project
    await ws.send(json.dumps(frame))
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if answer["type"] in ("welcome", "error"):
            return answer


def test_refused_hellos_say_why_and_the_socket_stays(chat):
    stack = chat
    now = int(time.time())
    wrong_agent = jwt.encode({"iss": stack.tenant, "sub": "agent-1", "iat": now,
                              "exp": now + 300}, "not-the-shared-secret", algorithm="HS256")
    cases = [
        # (what, tenant, kind, token, project, words in the reason)
        ("bad signature", stack.tenant, "customer", customer("a@example.com", key="wrong"),
         "SUP", "signature"),
        ("expired", stack.tenant, "customer",
         customer("a@example.com", iat=now - 4000, lifetime_s=600), "SUP", "expired"),
        ("wrong project", stack.tenant, "customer", customer("a@example.com"), "NOPE",
         "no chat configuration"),
        ("another tenant's token", stack.tenant, "customer",
         customer("a@example.com", key=ACME_KEY), "SUP", "signature"),
        ("unknown tenant", "no-such-tenant", "customer", customer("a@example.com"), "SUP",
         "configuration"),
        ("agent: wrong secret", stack.tenant, "agent", wrong_agent, None, "signature"),
        ("agent: token of another tenant", TENANT, "agent", agent_token(stack), None,
         "connect"),
        ("agent: no token", stack.tenant, "agent", None, None, "token is needed"),
        ("anonymous where the project has none", TENANT, "customer", None, "SUP",
         "token is needed"),
    ]

    async def run():
        async with websockets.connect(stack.ws_url) as ws:
            await ws.send(json.dumps({"type": "message", "id": "m", "issue": "SUP-1",
                                      "text": "before hello"}))
            assert (await expect(ws, "error"))["code"] == "unauthenticated"
            for what, tenant, kind, token, project, words in cases:
                answer = await hello(ws, tenant, kind, token, project)
                assert answer["type"] == "error", (what, answer)
                assert answer["code"] == "unauthorized", (what, answer)
                assert words.lower() in answer["message"].lower(), (what, answer)
                if token:
                    assert token not in answer["message"]
            # the same socket still takes a good hello
            welcome = await hello(ws, stack.tenant, "customer", customer("good@example.com"))
            assert welcome["type"] == "welcome" and welcome["kind"] == "customer"
            assert "token" not in welcome
    asyncio.run(run())


def test_tenants_and_conversations_are_isolated(chat):
    """Two customers of one tenant and one of another (whose Jira project has the same key):
    nobody sees or writes into a conversation that is not theirs, and an agent who joins the
    same issue key under their own tenant hears nothing of the other tenant's conversation."""
    stack = chat

    async def run():
        async with websockets.connect(stack.ws_url) as x, \
                websockets.connect(stack.ws_url) as y, \
                websockets.connect(stack.ws_url) as z, \
                websockets.connect(stack.ws_url) as agent:
            assert (await hello(x, stack.tenant, "customer",
                                customer("x@example.com")))["type"] == "welcome"
            assert (await hello(y, stack.tenant, "customer",
                                customer("y@example.com")))["type"] == "welcome"
            assert (await hello(z, TENANT, "customer",
                                customer("z@example.com", key=ACME_KEY)))["type"] == "welcome"
            assert (await hello(agent, stack.tenant, "agent",
                                agent_token(stack)))["type"] == "welcome"
            issues = {}
            for name, ws in (("x", x), ("y", y), ("z", z)):
                await ws.send(json.dumps({"type": "conversation.start", "id": "c1",
                                          "text": f"{name} needs help"}))
                issues[name] = (await expect(ws, "conversation.started", id="c1"))["issue"]
            assert len(set(issues.values())) == 3

            # y may not write into x's conversation, nor read it
            await y.send(json.dumps({"type": "message", "id": "y1", "issue": issues["x"],
                                     "text": "let me in"}))
            assert (await expect(y, "error", id="y1"))["code"] == "forbidden"
            await y.send(json.dumps({"type": "typing", "issue": issues["x"]}))
            assert (await expect(y, "error"))["code"] == "forbidden"

            # the agent joins z's issue key under their own tenant: a different conversation
            await agent.send(json.dumps({"type": "join", "issue": issues["z"]}))
            await expect(agent, "joined", issue=issues["z"])
            await agent.send(json.dumps({"type": "join", "issue": issues["x"]}))
            await expect(agent, "joined", issue=issues["x"])

            await x.send(json.dumps({"type": "message", "id": "x1", "issue": issues["x"],
                                     "text": "for my agent only"}))
            await z.send(json.dumps({"type": "message", "id": "z1", "issue": issues["z"],
                                     "text": "acme's secret"}))
            await expect(x, "ack", id="x1", timeout=20)
            await expect(z, "ack", id="z1", timeout=20)
            seen = await expect(agent, "message", id="x1", timeout=20)
            assert seen["issue"] == issues["x"]
            # a marker through z's own conversation proves its events have been delivered
            await agent.send(json.dumps({"type": "message", "id": "a1", "issue": issues["x"],
                                         "text": "hello x"}))
            await expect(x, "message", id="a1")
            await asyncio.sleep(1.0)
            seen = {}
            for name, ws in (("y", y), ("z", z), ("agent", agent)):
                seen[name] = []
                while True:
                    try:
                        seen[name].append(json.loads(await asyncio.wait_for(ws.recv(), 0.3)))
                    except asyncio.TimeoutError:
                        break
            assert "acme's secret" not in json.dumps(seen["agent"]), seen["agent"]
            for name in ("y", "z"):
                assert "for my agent only" not in json.dumps(seen[name]), seen[name]
                assert "hello x" not in json.dumps(seen[name]), seen[name]
            assert "acme's secret" not in json.dumps(seen["y"])
    asyncio.run(run())


def test_anonymous_visitors_where_the_project_allows_them(chat, dynamo_proxy):
    stack = chat
    ctl(dynamo_proxy, "project", "set", "--tenant", stack.tenant, "--project", "VIS",
        "--issue-type", "Support", "--secret-key-env", "SIGNING", "--visibility", "always",
        "--anonymous", "yes", SIGNING="visitor-key")
    stack.sandbox.add_project("VIS", issue_types=("Support", "Task"))

    async def run():
        async with websockets.connect(stack.ws_url) as ws:
            welcome = await hello(ws, stack.tenant, "customer", None, project="VIS")
            assert welcome["type"] == "welcome", welcome
            account, token = welcome["account"], welcome["token"]
            claims = jwt.decode(token, "visitor-key", algorithms=["HS256"])
            assert claims["visitor"] is True and claims["exp"] - claims["iat"] <= 3600
            assert claims["email"].endswith(".invalid")
            await ws.send(json.dumps({"type": "conversation.start", "id": "v1",
                                      "text": "just browsing, one question"}))
            issue = (await expect(ws, "conversation.started", id="v1", timeout=20))["issue"]
            assert issue.startswith("VIS-")
        # the visitor comes back with its token: the same account, the same conversation
        async with websockets.connect(stack.ws_url) as ws:
            again = await hello(ws, stack.tenant, "customer", token, project="VIS")
            assert again["type"] == "welcome" and again["account"] == account
            assert "token" not in again
            await ws.send(json.dumps({"type": "conversation.start", "id": "v1",
                                      "text": "just browsing, one question"}))
            assert (await expect(ws, "conversation.started", id="v1"))["issue"] == issue
        # a second visitor is someone else
        async with websockets.connect(stack.ws_url) as ws:
            other = await hello(ws, stack.tenant, "customer", None, project="VIS")
            assert other["type"] == "welcome" and other["account"] != account
        return issue, account
    issue, account = asyncio.run(run())
    found = stack.sandbox.issue(issue)
    assert found["reporter"] == account and found["reporter_name"].startswith("Visitor ")
