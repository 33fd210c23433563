"""The docker-compose stack end to end, through its published ports only: the images are
small, run as non-root and hold no compiler; a customer and an agent chat through the gateway
and the messages land in the Jira sandbox; the jira worker is scaled to 3 replicas while
customers keep sending, /stats shows the 3, one replica's container is killed, and every
message is in Jira exactly once and in order; `docker-compose stop` drains every process
(exit status 0) and `down` leaves nothing of the project behind.

The tests run in file order and share the one stack; the last one takes it down."""
import asyncio
import json
import time

import websockets

from conftest import expect, wait_for

COMPILERS = ("cc", "gcc", "c99", "g++", "c++", "clang", "tcc", "as", "ld")
PARLEY_IMAGE_MAX_BYTES = 150_000_000


def test_images_are_small_run_as_non_root_and_hold_no_compiler(stack):
    images = {c["Image"] for c in
              json.loads(stack.podman("ps", "--format", "json", "--filter",
                                      f"label=com.docker.compose.project={stack.project}"))}
    sizes = {image: int(stack.podman("image", "inspect", "-f", "{{.Size}}", image))
             for image in images}
    print("image sizes (bytes):", sizes)
    parley = [size for image, size in sizes.items() if image.endswith("/parley:latest")]
    assert parley and parley[0] < PARLEY_IMAGE_MAX_BYTES, sizes
    found = stack.compose("exec", "-T", "broker", "sh", "-c",
                          f"for c in {' '.join(COMPILERS)}; do command -v $c; done; true")
    assert found.strip() == "", f"compilers in the runtime image: {found}"
    for service in ("broker", "gateway", "jira", "presence", "jira-sandbox", "dynamodb"):
        assert stack.compose("exec", "-T", service, "id", "-u").strip() != "0", service


def test_customer_and_agent_chat_through_the_gateway_lands_in_jira(stack):
    customer_token = stack.customer_token("frank@example.com", "Frank")
    agent_token = stack.agent_token()

    async def chat():
        async with websockets.connect(stack.ws_url) as customer, \
                websockets.connect(stack.ws_url) as agent:
            await agent.send(json.dumps({"type": "hello", "tenant": "demo", "kind": "agent",
                                         "token": agent_token}))
            assert (await expect(agent, "welcome"))["account"] == "demo-agent"
            await customer.send(json.dumps({"type": "hello", "tenant": "demo",
                                            "project": "SUP", "kind": "customer",
                                            "token": customer_token}))
            assert (await expect(customer, "welcome"))["kind"] == "customer"
            assert (await expect(customer, "availability", available=True))
            await customer.send(json.dumps({"type": "conversation.start", "id": "c1",
                                            "text": "My order is late"}))
            issue = (await expect(customer, "conversation.started", id="c1"))["issue"]
            await expect(agent, "conversation.new", issue=issue)
            await agent.send(json.dumps({"type": "join", "issue": issue}))
            await expect(agent, "joined", issue=issue)

            await customer.send(json.dumps({"type": "message", "id": "m1", "issue": issue,
                                            "text": "Can you help?"}))
            seen = await expect(agent, "message", id="m1")
            assert seen["text"] == "Can you help?" and seen["author_kind"] == "customer"
            ack = await expect(customer, "ack", id="m1")
            await expect(agent, "persisted", id="m1", comment=ack["comment"])
            await agent.send(json.dumps({"type": "message", "id": "a1", "issue": issue,
                                         "text": "Sure, looking now"}))
            answer = await expect(customer, "message", id="a1")
            assert answer["text"] == "Sure, looking now" and answer["author_kind"] == "agent"
            await expect(agent, "ack", id="a1")
            return issue

    issue = asyncio.run(chat())
    assert stack.comments(issue) == ["Can you help?", "Sure, looking now"]


class Sender:
    """One customer in one conversation, sending numbered messages one at a time until told
    to stop. A message answered by an error (or by nothing in time) is sent again with the
    same id, as clients do; `acked` lists the acknowledged texts in send order."""

    def __init__(self, stack, n, token):
        self.stack, self.n, self.token = stack, n, token
        self.issue = None
        self.acked = []
        self.resends = 0
        self.failed = []

    async def run(self, stop):
        async with websockets.connect(self.stack.ws_url) as ws:
            await ws.send(json.dumps({"type": "hello", "tenant": "demo", "project": "SUP",
                                      "kind": "customer", "token": self.token}))
            await expect(ws, "welcome")
            await ws.send(json.dumps({"type": "conversation.start", "id": f"scale-{self.n}",
                                      "text": f"Scaling conversation {self.n}"}))
            self.issue = (await expect(ws, "conversation.started", id=f"scale-{self.n}"))["issue"]
            k = 0
            while not stop.is_set():
                await self.send_one(ws, f"s{self.n}-m{k}", f"conversation {self.n} message {k}")
                k += 1
                await asyncio.sleep(0.05)

    async def send_one(self, ws, message_id, text):
        for attempt in range(12):
            if attempt:
                self.resends += 1
                await asyncio.sleep(0.5)
            await ws.send(json.dumps({"type": "message", "id": message_id,
                                      "issue": self.issue, "text": text}))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(),
                                                              deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if frame.get("id") != message_id:
                    continue
                if frame.get("type") == "ack":
                    self.acked.append(text)
                    return
                if frame.get("type") == "error":
                    break
        self.failed.append(message_id)


def test_jira_scaled_to_3_while_messages_flow_then_a_replica_killed_loses_nothing(stack):
    tokens = [stack.customer_token(f"scale{n}@example.com", f"Scale {n}") for n in range(3)]
    senders = [Sender(stack, n, token) for n, token in enumerate(tokens)]
    # Jira answering each call in 100 ms keeps requests in flight when a replica dies.
    stack.sandbox("latency", {"ms": 100})
    timeline = {}

    def acked():
        return sum(len(s.acked) for s in senders)

    def control():
        wait_for(lambda: acked() >= 6, timeout=60, what="messages flowing")
        started = time.monotonic()
        stack.compose("up", "-d", "--no-build", "--no-recreate", "--scale", "jira=3")
        wait_for(lambda: len(stack.jira_workers()) == 3 and
                 stack.stats()["services"]["jira"]["replicas"] == 3,
                 timeout=120, what="/stats to show 3 jira replicas")
        timeline["scaled_s"] = round(time.monotonic() - started, 1)
        # every replica takes its share of the traffic
        wait_for(lambda: all(w["requests_done"] > 0 for w in stack.jira_workers()),
                 timeout=60, what="all 3 replicas to handle messages")
        # kill the replica holding a request when one is seen (the broker re-dispatches it)
        victim, deadline = None, time.monotonic() + 10
        while victim is None and time.monotonic() < deadline:
            busy = [w for w in stack.jira_workers() if w["inflight"] > 0]
            victim = busy[0] if busy else None
        victim = victim or stack.jira_workers()[-1]
        timeline["victim_busy"] = victim["inflight"] > 0
        hostname = victim["instance"].split("-")[1]
        [container] = [c for c in stack.containers("jira") if c["hostname"] == hostname]
        before_kill = acked()
        stack.podman("kill", container["name"])
        timeline["killed"] = container["name"]
        wait_for(lambda: victim["peer"] not in [w["peer"] for w in stack.jira_workers()],
                 timeout=30, what="the broker to drop the killed replica")
        wait_for(lambda: acked() >= before_kill + 9, timeout=90,
                 what="messages after the kill")
        time.sleep(2)
        timeline["replicas_after_kill"] = stack.stats()["services"]["jira"]["replicas"]

    async def scenario():
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stop)) for s in senders]
        try:
            await asyncio.to_thread(control)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    try:
        asyncio.run(scenario())
    finally:
        stack.sandbox("latency", {"ms": 0})
    jira = stack.stats()["services"]["jira"]
    print(f"scale test: {timeline}; messages acked {acked()}, resent "
          f"{sum(s.resends for s in senders)}, broker redispatches {jira['redispatches']}")
    assert not [s.failed for s in senders if s.failed]
    for s in senders:
        assert len(s.acked) >= 5
        assert stack.comments(s.issue) == s.acked, f"{s.issue}: not exactly once, in order"


def test_stop_drains_every_process_and_down_leaves_nothing(stack):
    running = [c for c in stack.containers() if c["state"] == "running"]
    assert len(running) >= 9, running  # 3 jira replicas (one may be back after its kill)
    started = time.monotonic()
    stack.compose("stop")
    took = time.monotonic() - started
    after = {c["name"]: c for c in stack.containers(all_states=True)}
    unclean = {c["name"]: after[c["name"]]["exit_code"] for c in running
               if after[c["name"]]["exit_code"] != 0}
    assert not unclean, f"exit status after SIGTERM: {unclean}"
    assert took < 60, f"stop took {took:.1f} s"

    stack.compose("down", "-v", "--remove-orphans")
    assert stack.containers(all_states=True) == []
    label = f"label=com.docker.compose.project={stack.project}"
    assert stack.podman("volume", "ls", "-q", "--filter", label).strip() == ""
    assert stack.podman("network", "ls", "-q", "--filter", label).strip() == ""
