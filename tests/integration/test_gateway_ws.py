"""Client protocol v1 end to end (first slice): a customer's widget and an agent's panel on
websockets to the gateway, the broker, the jira worker and the Jira sandbox (a Connect
installation). hello/welcome with each kind's JWT, conversation.start, messages both ways
with acks and persisted events, join, and bad frames answered with error frames while the
socket stays usable."""
import asyncio
import json
import time

import jwt
import pytest
import websockets

from conftest import free_port, wait_for, wait_http_up
from test_jira_worker import JiraStack, ctl

PROJECT_KEY = "widget-signing-key"


def start_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox, **gateway_env):
    """broker, jira, presence and a gateway (with gateway_env) behind a Connect installation
    (stack.tenant, stack.shared) whose project SUP is signed with PROJECT_KEY and served by
    agent-1; the tenant "acme" (API token) has SUP signed with "widget-key"."""
    stack = JiraStack(cluster_factory, redis_server, dynamo_proxy, jira_sandbox)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PARLEY_APP_BASE_URL": base,
           "PARLEY_CONNECT_INSTALL_KEYS_URL": f"{jira_sandbox.url}/_sandbox/connect-install-keys"}
    stack.start_jira(1, **env)
    stack.cluster.spawn("presence", "parley-presence")
    wait_for(lambda: stack.cluster.replicas("presence") == 1, what="presence ready")
    stack.gateway = stack.cluster.spawn("gateway", "parley-gateway", PARLEY_GATEWAY_PORT=port,
                                        **env, **gateway_env)

    wait_http_up(base, what="gateway")
    install = jira_sandbox.install(f"{base}/atlassian-connect.json")
    stack.tenant, stack.shared = install["clientKey"], install["sharedSecret"]
    ctl(dynamo_proxy, "project", "set", "--tenant", stack.tenant, "--project", "SUP",
        "--issue-type", "Support", "--secret-key-env", "SIGNING", "--visibility", "always",
        SIGNING=PROJECT_KEY)
    ctl(dynamo_proxy, "agent", "set", "--tenant", stack.tenant, "--account", "agent-1",
        "--projects", "SUP")
    stack.ws_url = f"ws://127.0.0.1:{port}/ws"
    stack.base = base
    return stack


@pytest.fixture
def chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    stack = start_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox)
    yield stack
    stack.client.close()


def customer_token():
    now = int(time.time())
    return jwt.encode({"email": "frank@example.com", "displayName": "Frank", "iat": now,
                       "exp": now + 300}, PROJECT_KEY, algorithm="HS256")


def agent_token(stack):
    now = int(time.time())
    return jwt.encode({"iss": stack.tenant, "sub": "agent-1", "iat": now, "exp": now + 300},
                      stack.shared, algorithm="HS256")


async def expect(ws, type_, timeout=10, **match):
    """The next frame of type_ whose fields include match (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items()):
            return frame


async def customer_with_conversation(url, tenant, conversation_id, text):
    """A customer's socket (Frank, project SUP) that said hello and started a conversation:
    (socket, issue key)."""
    ws = await websockets.connect(url)
    await ws.send(json.dumps({"type": "hello", "tenant": tenant, "project": "SUP",
                              "kind": "customer", "token": customer_token()}))
    await expect(ws, "welcome")
    await ws.send(json.dumps({"type": "conversation.start", "id": conversation_id,
                              "text": text}))
    issue = (await expect(ws, "conversation.started", id=conversation_id))["issue"]
    return ws, issue


async def conversation(stack):
    async with websockets.connect(stack.ws_url) as customer, \
            websockets.connect(stack.ws_url) as agent:
        await agent.send(json.dumps({"type": "hello", "tenant": stack.tenant, "kind": "agent",
                                     "token": agent_token(stack)}))
        assert (await expect(agent, "welcome"))["account"] == "agent-1"

        await customer.send(json.dumps({"type": "hello", "tenant": stack.tenant,
                                        "project": "SUP", "kind": "customer",
                                        "token": customer_token()}))
        welcome = await expect(customer, "welcome")
        assert welcome["kind"] == "customer"
        # the agent is online (no schedule: always inside it), so someone is there
        assert (await expect(customer, "availability"))["available"] is True
        await customer.send("this is not json")
        assert (await expect(customer, "error"))["code"] == "bad_frame"
        await customer.send(json.dumps({"type": "conversation.start", "id": "c1",
                                        "text": "My order is late"}))
        issue = (await expect(customer, "conversation.started", id="c1"))["issue"]

        # the agent hears of the new conversation on its project and joins it
        await expect(agent, "conversation.new", issue=issue)
        await agent.send(json.dumps({"type": "join", "issue": issue}))
        await expect(agent, "joined", issue=issue)
        await agent.send(json.dumps({"type": "join", "issue": "OTHER-1"}))
        assert (await expect(agent, "error"))["code"] == "forbidden"

        await customer.send(json.dumps({"type": "typing", "issue": issue}))
        assert (await expect(agent, "typing", issue=issue))["author_kind"] == "customer"
        await customer.send(json.dumps({"type": "message", "id": "m1", "issue": issue,
                                        "text": "Can you help?"}))
        seen = await expect(agent, "message", id="m1")
        assert seen["text"] == "Can you help?" and seen["author_kind"] == "customer"
        ack = await expect(customer, "ack", id="m1")
        assert ack["comment"]
        await expect(agent, "persisted", id="m1", comment=ack["comment"])
        await agent.send(json.dumps({"type": "read", "issue": issue, "comment": ack["comment"]}))
        assert (await expect(customer, "read", issue=issue))["comment"] == ack["comment"]

        await agent.send(json.dumps({"type": "message", "id": "a1", "issue": issue,
                                     "text": "Sure, looking now"}))
        answer = await expect(customer, "message", id="a1")
        assert answer["text"] == "Sure, looking now" and answer["author_kind"] == "agent"
        await expect(agent, "ack", id="a1")
        await customer.send(json.dumps({"type": "message", "id": "m2", "issue": "SUP-999",
                                        "text": "sneaky"}))
        assert (await expect(customer, "error", id="m2"))["code"] == "forbidden"
    # both sockets closed: presence closed them, so nobody is there any more
    return issue


def test_customer_and_agent_chat_through_the_gateway(chat):
    issue = asyncio.run(conversation(chat))
    texts = [c["text"] for c in chat.sandbox.issue(issue)["comments"]]
    assert texts == ["Can you help?", "Sure, looking now"]
    open_sockets = chat.redis.command("ZCARD", "socks")
    wait_for(lambda: chat.redis.command("ZCARD", "socks") == 0, timeout=10,
             what=f"presence closed the sockets ({open_sockets} open)")


@pytest.mark.parametrize("batch_ms", [0, 100])
def test_any_bus_batch_chats_and_a_stopping_gateway_sends_what_waits(
        cluster_factory, redis_server, dynamo_proxy, jira_sandbox, batch_ms):
    """PARLEY_GATEWAY_BUS_BATCH_MS holds what goes to the broker for a moment so that it
    leaves in bursts: the whole conversation works at 0 (no holding) and at a long 100 ms, and
    on SIGTERM what still waits (here: presence hearing that the sockets closed) goes before
    the gateway exits."""
    stack = start_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox,
                       PARLEY_GATEWAY_BUS_BATCH_MS=batch_ms)
    try:
        asyncio.run(conversation(stack))
        wait_for(lambda: stack.redis.command("ZCARD", "socks") == 0, timeout=10,
                 what="presence closed the conversation's sockets")

        async def stop_with_a_socket_open():
            customer, _ = await customer_with_conversation(stack.ws_url, stack.tenant, "b1",
                                                           "Still here")
            wait_for(lambda: stack.redis.command("ZCARD", "socks") == 1, timeout=10,
                     what="presence has the open socket")
            stack.gateway.proc.send_signal(15)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(customer.recv(), 10)
            assert closed.value.code == 1001
        asyncio.run(stop_with_a_socket_open())
        assert stack.gateway.proc.wait(10) == 0
        wait_for(lambda: stack.redis.command("ZCARD", "socks") == 0, timeout=10,
                 what="presence heard of the close the stopping gateway sent")
    finally:
        stack.client.close()


def test_status_frames_wait_for_the_next_frame_or_the_delay(cluster_factory, redis_server,
                                                            dynamo_proxy, jira_sandbox):
    """ack and persisted are held back up to PARLEY_GATEWAY_STATUS_DELAY_MS: alone, an ack
    comes after the delay; when another frame goes to that socket first, the ack leaves with
    it, ahead of it."""
    delay_s = 2.0
    stack = start_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox,
                       PARLEY_GATEWAY_STATUS_DELAY_MS=int(delay_s * 1000))

    async def run():
        customer, issue = await customer_with_conversation(stack.ws_url, stack.tenant, "d1",
                                                           "Delays")
        async with websockets.connect(stack.ws_url) as agent:
            await agent.send(json.dumps({"type": "hello", "tenant": stack.tenant,
                                         "kind": "agent", "token": agent_token(stack)}))
            await expect(agent, "welcome")
            await agent.send(json.dumps({"type": "join", "issue": issue}))
            await expect(agent, "joined")

            sent = time.monotonic()
            await customer.send(json.dumps({"type": "message", "id": "m1", "issue": issue,
                                            "text": "first"}))
            await expect(agent, "message", id="m1")
            await expect(customer, "ack", id="m1")
            assert time.monotonic() - sent >= delay_s * 0.9  # held back: nothing else went

            await customer.send(json.dumps({"type": "message", "id": "m2", "issue": issue,
                                            "text": "second"}))
            await expect(agent, "message", id="m2")
            wait_for(lambda: len(stack.sandbox.issue(issue)["comments"]) == 2, timeout=10,
                     what="Jira has the second comment")
            await asyncio.sleep(0.3)  # its reply reaches the gateway: the ack waits there
            answered = time.monotonic()
            await agent.send(json.dumps({"type": "message", "id": "a1", "issue": issue,
                                         "text": "reply"}))
            frames = []
            while not frames or frames[-1].get("type") != "message":
                frames.append(json.loads(await asyncio.wait_for(customer.recv(), 10)))
            assert time.monotonic() - answered < delay_s * 0.75
            kinds = [(f["type"], f.get("id")) for f in frames]
            assert ("ack", "m2") in kinds and kinds[-1] == ("message", "a1"), kinds
        await customer.close()

    try:
        asyncio.run(run())
    finally:
        stack.client.close()


def test_persisted_reaches_every_other_socket_once_on_every_gateway(chat):
    """The sender gets `ack`, not `persisted` too; every other socket following the
    conversation gets `persisted` once: on the sender's gateway from the reply, on another
    gateway from the jira worker's event (which the sender's gateway drops as its own)."""
    port = free_port()
    chat.cluster.spawn("gateway-2", "parley-gateway", PARLEY_GATEWAY_PORT=port,
                       PARLEY_APP_BASE_URL=f"http://127.0.0.1:{port}")
    wait_http_up(f"http://127.0.0.1:{port}", what="second gateway")

    async def agent_on(url):
        ws = await websockets.connect(url)
        await ws.send(json.dumps({"type": "hello", "tenant": chat.tenant, "kind": "agent",
                                  "token": agent_token(chat)}))
        await expect(ws, "welcome")
        return ws

    async def until(ws, type_, id_):
        """Frames up to and including the first of type_ with id id_."""
        frames = []
        while not frames or (frames[-1].get("type"), frames[-1].get("id")) != (type_, id_):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        return frames

    async def run():
        here, there = await agent_on(chat.ws_url), await agent_on(f"ws://127.0.0.1:{port}/ws")
        customer, issue = await customer_with_conversation(chat.ws_url, chat.tenant, "p1",
                                                           "Persisted?")
        for agent in (here, there):
            await agent.send(json.dumps({"type": "join", "issue": issue}))
            await expect(agent, "joined")

        await customer.send(json.dumps({"type": "message", "id": "m1", "issue": issue,
                                        "text": "one"}))
        comment = (await expect(customer, "ack", id="m1"))["comment"]
        # a later message marks the end of what m1 brought to each socket
        await here.send(json.dumps({"type": "message", "id": "a1", "issue": issue,
                                    "text": "two"}))
        seen = {"customer": await until(customer, "message", "a1"),
                "agent here": await until(here, "ack", "a1"),
                "agent there": await until(there, "message", "a1")}
        for who, frames in seen.items():
            persisted = [f for f in frames if f["type"] == "persisted" and f["id"] == "m1"]
            expected = 0 if who == "customer" else 1
            assert len(persisted) == expected, (who, frames)
            assert all(f["comment"] == comment for f in persisted)
        for ws in (customer, here, there):
            await ws.close()

    asyncio.run(run())


def test_bad_token_and_huge_frame(chat):
    async def run():
        async with websockets.connect(chat.ws_url) as ws:
            await ws.send(json.dumps({"type": "hello", "tenant": chat.tenant, "project": "SUP",
                                      "kind": "customer", "token": "bad.token.here"}))
            assert (await expect(ws, "error"))["code"] == "unauthorized"
            await ws.send(json.dumps({"type": "message", "id": "x", "issue": "SUP-1",
                                      "text": "hi"}))
            assert (await expect(ws, "error"))["code"] == "unauthenticated"
        async with websockets.connect(chat.ws_url, max_size=None) as ws:
            await ws.send("x" * 200000)
            # the 1009 close frame comes at once; the TCP close may wait for lws's close-ack
            # timeout (5 s) while the client is still busy sending the rest of its frame
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 20)
            assert closed.value.code == 1009
    asyncio.run(run())


def test_limits_and_drain(cluster_factory):
    """Connection cap (1013), per-socket rate limit (error frames, the socket stays), and
    SIGTERM: every socket is closed with 1001 so that clients reconnect elsewhere."""
    c = cluster_factory()
    c.start_broker()
    port = free_port()
    gateway = c.spawn("gateway", "parley-gateway", PARLEY_GATEWAY_PORT=port,
                      PARLEY_GATEWAY_MAX_CONNECTIONS=3, PARLEY_GATEWAY_RATE_PER_S=5,
                      PARLEY_GATEWAY_RATE_BURST=10)
    url = f"ws://127.0.0.1:{port}/ws"

    wait_http_up(f"http://127.0.0.1:{port}", what="gateway")

    async def run():
        sockets = [await websockets.connect(url) for _ in range(3)]
        extra = await websockets.connect(url)
        with pytest.raises(websockets.ConnectionClosed) as full:
            await asyncio.wait_for(extra.recv(), 5)
        assert full.value.code == 1013
        ws = sockets[0]
        for n in range(30):
            await ws.send(json.dumps({"type": "message", "id": f"x{n}"}))
        codes = [json.loads(await asyncio.wait_for(ws.recv(), 5))["code"] for _ in range(30)]
        assert codes.count("unauthenticated") >= 10 and codes.count("rate_limited") >= 10
        await ws.send(json.dumps({"type": "nonsense"}))  # still open, still answering
        assert (await expect(ws, "error"))["code"] in ("unknown_type", "rate_limited")

        def counters():
            for client in c.stats()["clients"]["list"]:
                if "rate_limited" in client.get("counters", {}):
                    return client["counters"]
            return {}
        # the gateway's counters ride in its heartbeats to the broker's /stats
        wait_for(lambda: counters().get("sockets_open") == 3, what="gateway counters")
        seen = counters()
        assert seen["refused_full"] == 1 and seen["rate_limited"] >= 10, seen
        assert seen["frames_in"] >= 31 and seen["errors_sent"] >= 31, seen
        gateway.proc.send_signal(15)
        for sock in sockets:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(sock.recv(), 5)
            assert closed.value.code == 1001
    asyncio.run(run())
    assert gateway.proc.wait(10) == 0


def test_reconnect_to_another_gateway_gets_every_missed_message_once_in_order(chat):
    """The customer leaves after two acknowledged messages; the agent writes three more (and
    the first one again, resent); the customer reconnects to a second gateway with the last
    comment it saw and gets exactly the three it missed, in order, then live traffic."""
    port = free_port()
    chat.cluster.spawn("gateway-2", "parley-gateway", PARLEY_GATEWAY_PORT=port,
                       PARLEY_APP_BASE_URL=f"http://127.0.0.1:{port}")
    second = f"ws://127.0.0.1:{port}/ws"

    wait_http_up(f"http://127.0.0.1:{port}", what="second gateway")

    async def hello_customer(url):
        ws = await websockets.connect(url)
        await ws.send(json.dumps({"type": "hello", "tenant": chat.tenant, "project": "SUP",
                                  "kind": "customer", "token": customer_token()}))
        await expect(ws, "welcome")
        return ws

    async def run():
        agent = await websockets.connect(chat.ws_url)
        await agent.send(json.dumps({"type": "hello", "tenant": chat.tenant, "kind": "agent",
                                     "token": agent_token(chat)}))
        await expect(agent, "welcome")
        customer = await hello_customer(chat.ws_url)
        await customer.send(json.dumps({"type": "conversation.start", "id": "r1",
                                        "text": "Hello again"}))
        issue = (await expect(customer, "conversation.started", id="r1"))["issue"]
        await agent.send(json.dumps({"type": "join", "issue": issue}))
        await expect(agent, "joined")
        last = None
        for n in range(2):
            await customer.send(json.dumps({"type": "message", "id": f"c{n}", "issue": issue,
                                            "text": f"customer {n}"}))
            last = (await expect(customer, "ack", id=f"c{n}"))["comment"]
        await customer.close()
        for n in range(3):  # the customer is away
            await agent.send(json.dumps({"type": "message", "id": f"a{n}", "issue": issue,
                                         "text": f"agent {n}"}))
            await expect(agent, "ack", id=f"a{n}")
        await agent.send(json.dumps({"type": "message", "id": "a0", "issue": issue,
                                     "text": "agent 0"}))  # resent: written once
        assert (await expect(agent, "ack", id="a0"))["comment"]

        back = await hello_customer(second)
        await back.send(json.dumps({"type": "conversation.start", "id": "r1", "text": "x",
                                    "after_comment": last}))
        assert (await expect(back, "conversation.started", id="r1"))["issue"] == issue
        frames = []
        while True:
            frame = json.loads(await asyncio.wait_for(back.recv(), 10))
            if frame["type"] == "resumed":
                break
            if frame["type"] == "message":
                frames.append(frame)
        assert [f["text"] for f in frames] == ["agent 0", "agent 1", "agent 2"]
        assert [f["id"] for f in frames] == ["a0", "a1", "a2"]
        # and live again, through the second gateway
        await agent.send(json.dumps({"type": "message", "id": "a3", "issue": issue,
                                     "text": "welcome back"}))
        assert (await expect(back, "message", id="a3"))["text"] == "welcome back"
        await expect(agent, "ack", id="a3")  # in Jira now (the live copy comes before that)
        await back.close()
        await agent.close()
        return issue
    issue = asyncio.run(run())
    texts = [c["text"] for c in chat.sandbox.issue(issue)["comments"]]
    assert texts == ["customer 0", "customer 1", "agent 0", "agent 1", "agent 2",
                     "welcome back"]


def test_2000_concurrent_sockets_on_one_gateway(chat):
    """2,000 authenticated customer sockets held open on one gateway while a customer and an
    agent chat through it: every socket is welcomed, the chat's messages arrive, and after
    the sockets close presence has none open."""
    count = 2000

    async def run():
        token = customer_token()
        sockets = []

        async def open_one():
            ws = await websockets.connect(chat.ws_url, open_timeout=60, ping_interval=None)
            await ws.send(json.dumps({"type": "hello", "tenant": chat.tenant, "project": "SUP",
                                      "kind": "customer", "token": token}))
            sockets.append(ws)
            return ws

        batch = 200
        for start in range(0, count, batch):
            await asyncio.gather(*(open_one() for _ in range(batch)))
        welcomed = await asyncio.gather(*(expect(ws, "welcome", timeout=120)
                                          for ws in sockets))
        assert len(welcomed) == count
        # a conversation among the crowd still flows
        customer, agent = sockets[0], await websockets.connect(chat.ws_url)
        await agent.send(json.dumps({"type": "hello", "tenant": chat.tenant, "kind": "agent",
                                     "token": agent_token(chat)}))
        await expect(agent, "welcome")
        await customer.send(json.dumps({"type": "conversation.start", "id": "crowd",
                                        "text": "hello from the crowd"}))
        issue = (await expect(customer, "conversation.started", id="crowd", timeout=30))["issue"]
        await agent.send(json.dumps({"type": "join", "issue": issue}))
        await expect(agent, "joined")
        await customer.send(json.dumps({"type": "message", "id": "q1", "issue": issue,
                                        "text": "still there?"}))
        assert (await expect(agent, "message", id="q1", timeout=30))["text"] == "still there?"
        await expect(customer, "ack", id="q1", timeout=30)
        await asyncio.gather(*(ws.close() for ws in sockets + [agent]))
    asyncio.run(run())
    wait_for(lambda: chat.redis.command("ZCARD", "socks") == 0, timeout=60,
             what="presence closed all 2,000 sockets")


def test_each_heartbeat_tells_presence_of_every_socket_of_every_tenant(
        cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    """Every PARLEY_GATEWAY_PRESENCE_HEARTBEAT_MS the gateway tells presence that each of its
    authenticated sockets is still there, tenant by tenant, in one pass over the sockets:
    sockets of two tenants on one gateway all get a fresher last seen, and the gateway
    reports how long the pass took (presence_heartbeat_us in its counters)."""
    stack = start_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox,
                       PARLEY_GATEWAY_PRESENCE_HEARTBEAT_MS=200)

    def last_seen():
        raw = stack.redis.command("ZRANGE", "socks", "0", "-1", "WITHSCORES")
        return {raw[i].decode(): float(raw[i + 1]) for i in range(0, len(raw), 2)}

    def gateway_counters():
        for client in stack.cluster.stats()["clients"]["list"]:
            if "presence_heartbeat_us" in client.get("counters", {}):
                return client["counters"]
        return {}

    async def run():
        sockets = []
        for tenant, key in ((stack.tenant, PROJECT_KEY), ("acme", "widget-key")):
            for i in range(3):
                now = int(time.time())
                token = jwt.encode({"email": f"c{i}@example.com", "displayName": f"C {i}",
                                    "iat": now, "exp": now + 300}, key, algorithm="HS256")
                ws = await websockets.connect(stack.ws_url)
                await ws.send(json.dumps({"type": "hello", "tenant": tenant, "project": "SUP",
                                          "kind": "customer", "token": token}))
                await expect(ws, "welcome")
                sockets.append(ws)
        wait_for(lambda: len(last_seen()) == 6, timeout=10, what="presence has all six sockets")
        first = last_seen()
        assert {member.split("|")[0] for member in first} == {stack.tenant, "acme"}
        wait_for(lambda: all(seen > first[member] for member, seen in last_seen().items()),
                 timeout=10, what="a heartbeat renewed every socket of both tenants")
        await asyncio.gather(*(ws.close() for ws in sockets))
    try:
        asyncio.run(run())
        wait_for(lambda: "presence_heartbeat_us" in gateway_counters(), timeout=10,
                 what="the gateway's counters in its heartbeat")
        wait_for(lambda: stack.redis.command("ZCARD", "socks") == 0, timeout=10,
                 what="presence closed the sockets")
    finally:
        stack.client.close()


def test_a_long_absence_resumes_in_parts_and_reads_only_what_was_missed(
        cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    """A conversation of 300 comments; the customer leaves after its own message and 1,100
    more are written (more than one transcript part of 1,000). With a queue cap of 40
    frames the customer resumes and gets every missed comment once, in order, then
    `resumed`, without being cut off as a slow reader (the transcript joins its queue as it
    drains); Jira is read only for the pages that hold what was missed (back from the newest
    comment), not from the conversation's start."""
    stack = start_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox,
                       PARLEY_GATEWAY_OUTBOX_MAX=40)
    agent = jira_sandbox.add_user("long.absence@example.com", "Agent Long", kind="agent")

    async def customer():
        ws = await websockets.connect(stack.ws_url)
        await ws.send(json.dumps({"type": "hello", "tenant": stack.tenant, "project": "SUP",
                                  "kind": "customer", "token": customer_token()}))
        await expect(ws, "welcome")
        return ws

    async def leave():
        ws = await customer()
        await ws.send(json.dumps({"type": "conversation.start", "id": "long",
                                  "text": "Hello"}))
        issue = (await expect(ws, "conversation.started", id="long"))["issue"]
        for n in range(300):
            jira_sandbox.comment_as_agent(issue, agent["accountId"], f"before {n}")
        jira_sandbox.wait_for_webhooks(300, timeout_s=120)  # their events reached us
        await ws.send(json.dumps({"type": "message", "id": "mine", "issue": issue,
                                  "text": "my question"}))
        last = (await expect(ws, "ack", id="mine", timeout=30))["comment"]
        await ws.close()
        return issue, last

    async def come_back(issue, last):
        ws = await customer()
        await ws.send(json.dumps({"type": "conversation.start", "id": "long", "text": "x",
                                  "after_comment": last}))
        await expect(ws, "conversation.started", id="long", timeout=30)
        texts, done = [], None
        while done is None:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] == "message" and frame.get("issue") == issue:
                texts.append(frame["text"])
            elif frame["type"] == "resumed":
                done = frame
        await ws.close()
        return texts, done

    try:
        issue, last = asyncio.run(leave())
        for n in range(1100):
            jira_sandbox.comment_as_agent(issue, agent["accountId"], f"missed {n}")
        jira_sandbox.wait_for_webhooks(1400, timeout_s=120)
        seq = max([r["seq"] for r in jira_sandbox.requests()["records"]] or [0])
        texts, done = asyncio.run(come_back(issue, last))
        assert "error" not in done, done
        assert texts == [f"missed {n}" for n in range(1100)]
        pages = [r for r in jira_sandbox.requests(since=seq)["records"]
                 if r["method"] == "GET" and r["path"] == f"/rest/api/3/issue/{issue}/comment"]
        # 1,101 comments from the newest back to the customer's (12 pages), then the 100 after
        # the first part's last (2 pages); from the start it would be 15 and then 15 again
        assert len(pages) <= 14, [r["path"] for r in pages]
        assert gateway_slow_consumers(stack) == 0
    finally:
        stack.client.close()


def gateway_slow_consumers(stack):
    for client in stack.cluster.stats()["clients"]["list"]:
        counters = client.get("counters", {})
        if "slow_consumers" in counters:
            return counters["slow_consumers"]
    return 0
