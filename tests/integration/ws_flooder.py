"""A hostile websocket client for test_gateway_hostile.py, run as its own process so that
its floods do not starve the test's honest clients of their event loop.

Reads a JSON config on stdin: url, tenant, customer_token (a customer of project SUP, for
the garbage senders and the slow reader), agent_token, duration_s, scenario ("garbage" or
"slow_reader"; one process each, so that neither starves the other). For duration_s:
  - garbage: two authenticated sockets sending malformed JSON, JSON of the wrong shape and
    types, unknown frame types, binary frames and a second hello, as fast as they can, while
    reading the error frames they get (counted by code);
  - huge: one socket sending a 2 MB text frame (expected: closed with 1009);
  - slow reader: a customer who starts a conversation and then never reads (tiny receive
    buffer, a one-frame queue), while six agent sockets in that conversation send it 32 KB
    messages, four a second each (loopback TCP buffers take up to 4 MB here before the
    gateway's queue for it grows). Expected: the gateway cuts the slow reader off (with 1008
    when the close frame still fits, else by dropping the connection: 1006).
Prints one JSON report on stdout: errors (code -> count), huge_close and garbage_sent, or
slow_close."""
import asyncio
import json
import socket
import sys
import time
from urllib.parse import urlsplit

import websockets

GARBAGE = [
    "this is not json",
    "[1, 2, 3]",
    '{"type": 5}',
    '{"no_type": true}',
    '{"type": "message", "id": [1], "issue": {}, "text": 7}',
    '{"type": "message", "id": "x", "issue": "SUP-1"}',
    '{"type": "conversation.start", "id": "", "text": null}',
    '{"type": "join", "issue": 42}',
    '{"type": "read", "issue": "SUP-1", "comment": {"$gt": 0}}',
    '{"type": "nope"}',
    '{"type": "hello", "tenant": "x", "kind": "agent", "token": "again"}',
    '{"type": "message", "type": "message"}',
    "{" * 5000,
    '"\\ud800"',
    b"\x00\x01binary\xff",
]


async def hello(ws, config, kind):
    frame = {"type": "hello", "tenant": config["tenant"], "kind": kind,
             "token": config[f"{kind}_token"]}
    if kind == "customer":
        frame["project"] = "SUP"
    await ws.send(json.dumps(frame))
    while True:
        answer = json.loads(await ws.recv())
        if answer["type"] == "welcome":
            return answer
        if answer["type"] == "error":
            raise RuntimeError(f"hello refused: {answer}")


async def garbage(config, errors, sent, until):
    async with websockets.connect(config["url"], max_size=None) as ws:
        await hello(ws, config, "customer")

        async def read():
            try:
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame.get("type") == "error":
                        errors[frame["code"]] = errors.get(frame["code"], 0) + 1
            except websockets.ConnectionClosed:
                pass
        reader = asyncio.create_task(read())
        n = 0
        try:
            while time.monotonic() < until:
                await ws.send(GARBAGE[n % len(GARBAGE)])
                n += 1
                sent[0] += 1
                await asyncio.sleep(0)  # lets the reader keep up: a flooder, not a slow reader
        except websockets.ConnectionClosed as closed:
            errors[f"closed_{closed.code}"] = errors.get(f"closed_{closed.code}", 0) + 1
        await asyncio.sleep(1)
        reader.cancel()


async def huge(config):
    async with websockets.connect(config["url"], max_size=None) as ws:
        await hello(ws, config, "customer")
        try:
            await ws.send("x" * (2 << 20))
            while True:
                await asyncio.wait_for(ws.recv(), 15)
        except websockets.ConnectionClosed as closed:
            return closed.code
    return None


async def slow_reader(config, until):
    url = urlsplit(config["url"])
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((url.hostname, url.port))
    reader = await websockets.connect(config["url"], sock=raw, max_queue=1, read_limit=1024,
                                      max_size=None)
    await hello(reader, config, "customer")
    await reader.send(json.dumps({"type": "conversation.start", "id": "slow-reader",
                                  "text": "I will not read what you send"}))
    while True:
        frame = json.loads(await reader.recv())
        if frame["type"] == "conversation.started":
            issue = frame["issue"]
            break
    # from here on the slow reader reads nothing until the end
    agents = [await websockets.connect(config["url"], max_size=None) for _ in range(6)]

    async def flood(ws):
        await hello(ws, config, "agent")
        await ws.send(json.dumps({"type": "join", "issue": issue}))

        async def drain():
            try:
                async for _ in ws:
                    pass
            except websockets.ConnectionClosed:
                pass
        drainer = asyncio.create_task(drain())
        n = 0
        while time.monotonic() < until:
            n += 1
            await ws.send(json.dumps({"type": "message", "id": f"flood-{id(ws)}-{n}",
                                      "issue": issue, "text": "z" * 32000}))
            await asyncio.sleep(0.25)
        drainer.cancel()
        await ws.close()
    await asyncio.gather(*(flood(ws) for ws in agents))
    try:
        while True:
            await asyncio.wait_for(reader.recv(), 10)
    except websockets.ConnectionClosed as closed:
        return closed.code
    except asyncio.TimeoutError:
        return None


async def main():
    config = json.load(sys.stdin)
    until = time.monotonic() + config["duration_s"]
    errors, sent = {}, [0]
    if config["scenario"] == "slow_reader":
        print(json.dumps({"slow_close": await slow_reader(config, until)}), flush=True)
        return
    results = await asyncio.gather(garbage(config, errors, sent, until),
                                   garbage(config, errors, sent, until), huge(config))
    print(json.dumps({"errors": errors, "huge_close": results[2], "garbage_sent": sent[0]}),
          flush=True)


if __name__ == "__main__":
    asyncio.run(main())
