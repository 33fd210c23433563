"""Hostile clients on the gateway while honest ones keep chatting: malformed JSON, frames of
the wrong shape and types, unknown types and binary frames flooded as fast as a client can
send (answered with error frames, then rate-limited), a 2 MB frame (closed with 1009) and a
reader that never reads while its conversation is flooded (cut off), all from a
separate process (ws_flooder.py). Meanwhile a customer and an agent exchange messages with
acks, and every one of them arrives."""
import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
import websockets

from conftest import wait_for
from test_gateway_ws import agent_token, customer_token, expect, start_chat

FLOODER = os.path.join(os.path.dirname(__file__), "ws_flooder.py")


@pytest.fixture
def hostile_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    stack = start_chat(cluster_factory, redis_server, dynamo_proxy, jira_sandbox,
                       PARLEY_GATEWAY_OUTBOX_MAX=64, PARLEY_GATEWAY_RATE_PER_S=50,
                       PARLEY_GATEWAY_RATE_BURST=50)
    yield stack
    stack.client.close()


def gateway_counters(stack):
    for client in stack.cluster.stats()["clients"]["list"]:
        if "rate_limited" in client.get("counters", {}):
            return client["counters"]
    return {}


def test_floods_huge_frames_and_a_slow_reader_while_others_chat(hostile_chat):
    stack = hostile_chat
    config = {"url": stack.ws_url, "tenant": stack.tenant, "customer_token": customer_token(),
              "agent_token": agent_token(stack), "duration_s": 8}

    async def run():
        async with websockets.connect(stack.ws_url) as customer, \
                websockets.connect(stack.ws_url) as agent:
            await customer.send(json.dumps({"type": "hello", "tenant": stack.tenant,
                                            "project": "SUP", "kind": "customer",
                                            "token": customer_token()}))
            await expect(customer, "welcome")
            await agent.send(json.dumps({"type": "hello", "tenant": stack.tenant,
                                         "kind": "agent", "token": agent_token(stack)}))
            await expect(agent, "welcome")
            await customer.send(json.dumps({"type": "conversation.start", "id": "honest",
                                            "text": "honest question"}))
            issue = (await expect(customer, "conversation.started", id="honest"))["issue"]
            await agent.send(json.dumps({"type": "join", "issue": issue}))
            await expect(agent, "joined", issue=issue)

            flooders = []
            for scenario in ("garbage", "slow_reader"):
                flooder = subprocess.Popen([sys.executable, FLOODER], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)
                flooder.stdin.write(json.dumps(dict(config, scenario=scenario)))
                flooder.stdin.close()
                flooders.append(flooder)
            await asyncio.sleep(1.5)  # the floods are under way
            worst, acks = 0.0, set()

            async def until(ws, type_, id_, timeout=10):
                """The frame type_ with id id_; acks met on the way are noted."""
                deadline = time.monotonic() + timeout
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(),
                                                              deadline - time.monotonic()))
                    if frame.get("type") == "ack":
                        acks.add(frame["id"])
                    if frame.get("type") == type_ and frame.get("id") == id_:
                        return frame
            for n in range(12):
                started = time.monotonic()
                await customer.send(json.dumps({"type": "message", "id": f"c{n}",
                                                "issue": issue, "text": f"question {n}"}))
                assert (await until(agent, "message", f"c{n}"))["text"] == f"question {n}"
                await agent.send(json.dumps({"type": "message", "id": f"a{n}", "issue": issue,
                                             "text": f"answer {n}"}))
                assert (await until(customer, "message", f"a{n}"))["text"] == f"answer {n}"
                worst = max(worst, time.monotonic() - started)
                await asyncio.sleep(0.2)
            for n in range(12):
                if f"c{n}" not in acks:
                    await until(customer, "ack", f"c{n}", timeout=30)
            report = {}
            for flooder in flooders:
                out = await asyncio.get_running_loop().run_in_executor(None, flooder.stdout.read)
                assert flooder.wait(30) == 0, out
                report.update(json.loads(out))
            return report, worst
    report, worst = asyncio.run(run())
    errors = report["errors"]
    assert errors.get("bad_frame", 0) > 0 and errors.get("unknown_type", 0) > 0, report
    assert errors.get("rate_limited", 0) > 0, report
    assert report["huge_close"] == 1009, report
    assert report["slow_close"] in (1006, 1008), report
    assert worst < 5.0, f"an honest round trip took {worst:.2f} s under the floods"
    # the gateway's counters ride in its heartbeats to the broker's /stats
    wait_for(lambda: gateway_counters(stack).get("slow_consumers", 0) >= 1,
             what="slow consumer counted")
    seen = gateway_counters(stack)
    assert seen.get("slow_consumers", 0) >= 1 and seen.get("frames_too_large", 0) >= 1, seen
    assert seen.get("rate_limited", 0) >= errors["rate_limited"], seen
