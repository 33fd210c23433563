#!/usr/bin/python3
"""check_relays.py - a quick self-check of the benchmark's two baseline websocket relays,
parley-relay-lws (relay_lws.c) and relay_node.js, against the room relay protocol they share
(see the top of either file).

For each relay: start it on a free port (by --port, and once by RELAY_PORT), then check that
the join is answered; a frame reaches the other members of its room verbatim, never its sender
nor another room (a large one too, which lws receives in pieces); a member's close leaves the
room working for the rest, and an emptied room can be joined again; a bad first frame (not
JSON, another type, no room, a room name too long) and a binary frame are closed with 1008 and
1003; pings are answered; a member that does not read is closed with 1008 while its room keeps
working; SIGTERM exits 0.

Usage: /usr/bin/python3 bench/relay/check_relays.py [lws|node]...   (both by default)
Needs build/bin/parley-relay-lws (`make build/bin/parley-relay-lws`; PARLEY_BIN=dir to use
another build) and the npm packages (`make deps`). Exit status 0 when every check passed.
"""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PARLEY_BIN", os.path.join(ROOT, "build", "bin"))
RELAYS = {
    "lws": [os.path.join(BIN, "parley-relay-lws")],
    "node": ["node", os.path.join(ROOT, "bench", "relay", "relay_node.js")],
}
QUIET_S = 0.3  # how long "nothing arrives" is watched for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """One relay process; its stdout's first line must be `listening port=N ...`."""

    def __init__(self, name, by_env=False):
        self.port = free_port()
        argv = list(RELAYS[name])
        env = dict(os.environ)
        if by_env:
            env["RELAY_PORT"] = str(self.port)
        else:
            argv += ["--port", str(self.port)]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
        self.line = self.process.stdout.readline().strip()
        fields = dict(f.split("=", 1) for f in self.line.split()[1:] if "=" in f)
        assert self.line.startswith("listening ") and fields.get("port") == str(self.port), \
            f"{name}: unexpected first line {self.line!r}"
        self.fields = fields
        self.url = f"ws://127.0.0.1:{self.port}/ws"

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.process.stdout.close()


async def connect(relay, **kwargs):
    return await websockets.connect(relay.url, compression=None, max_size=2**20, **kwargs)


async def join(relay, room, **kwargs):
    ws = await connect(relay, **kwargs)
    await ws.send('{"type":"join","room":"%s"}' % room)
    answer = await asyncio.wait_for(ws.recv(), 5)
    assert answer == '{"type":"joined","room":"%s"}' % room, f"join answered {answer!r}"
    return ws


async def expect(ws, frame, what):
    got = await asyncio.wait_for(ws.recv(), 5)
    assert got == frame, f"{what}: got {got[:80]!r}, expected {frame[:80]!r}"


async def expect_nothing(ws, what):
    try:
        got = await asyncio.wait_for(ws.recv(), QUIET_S)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"{what}: unexpected frame {got[:80]!r}")


async def expect_close(ws, code, what):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed:
        pass
    assert ws.close_code == code, f"{what}: closed with {ws.close_code}, expected {code}"


async def check_relay(relay):
    a1 = await join(relay, "a")
    a2 = await join(relay, "a")
    b1 = await join(relay, "b")

    frame = '{"type":"say","text":"h\\u00e9llo \u00e9t\u00e9 \U0001F600","n":1}  '
    await a1.send(frame)
    await expect(a2, frame, "a1 -> a2")
    await expect_nothing(a1, "no echo to a1")
    await expect_nothing(b1, "nothing to room b")
    await a2.send("not even json")
    await expect(a1, "not even json", "a2 -> a1, any text")

    big = "x" * 40000 + "end"
    await a1.send(big)
    await expect(a2, big, "40 KB frame a1 -> a2")

    pong = await a1.ping()
    await asyncio.wait_for(pong, 5)

    await a2.close()
    await a1.send('{"after":"a2 left"}')
    await expect_nothing(a1, "no echo after a2 left")
    await asyncio.wait_for(await a1.ping(), 5)
    a3 = await join(relay, "a")
    await a1.send("to a3")
    await expect(a3, "to a3", "a1 -> a3 after a2 left")
    await expect_nothing(b1, "still nothing to room b")
    await a1.close()
    await a3.close()
    a4 = await join(relay, "a")  # the emptied room was freed; joining creates it again
    a5 = await join(relay, "a")
    await a5.send("fresh")
    await expect(a4, "fresh", "room a again")
    await a4.close()
    await a5.close()

    for bad in ['{"type":"hello"}', "hello", '{"type":"join"}', '{"type":"join","room":""}',
                '{"type":"join","room":"%s"}' % ("r" * 65)]:
        c = await connect(relay)
        await c.send(bad)
        await expect_close(c, 1008, f"bad first frame {bad[:30]!r}")
    c = await join(relay, "b")
    await c.send(b"\x01\x02")
    await expect_close(c, 1003, "binary frame")
    await b1.send("b still works")  # b1 alone in b: no one to send to, nothing back
    await expect_nothing(b1, "b1 alone")

    await b1.close()  # left open, it would hold up asyncio.run's shutdown

    await check_slow_consumer(relay)


async def check_slow_consumer(relay):
    """A member that does not read is closed with 1008; the sender is not held up."""
    sender = await join(relay, "slow")
    slow = await join(relay, "slow", max_queue=1)
    other = await join(relay, "slow")
    payload = "y" * 1024
    count = 20000  # 20 MB: more than the kernel's socket buffers and the relay's cap together
    started = time.monotonic()
    for i in range(count):
        await sender.send(payload)
        if i % 500 == 499:  # the reading member keeps up
            for _ in range(500):
                await asyncio.wait_for(other.recv(), 10)
    assert time.monotonic() - started < 30, "the sender was held up"
    received = 0
    try:
        while True:
            await asyncio.wait_for(slow.recv(), 10)
            received += 1
    except websockets.ConnectionClosed:
        pass
    except asyncio.TimeoutError:
        raise AssertionError(f"the slow member was not closed ({received} frames read)")
    assert slow.close_code == 1008, f"slow member closed with {slow.close_code}, expected 1008"
    assert received < count, "the slow member got everything"
    await sender.send("after")
    await expect(other, "after", "room works after the slow member left")
    await sender.close()
    await other.close()


def main():
    names = sys.argv[1:] or list(RELAYS)
    failed = 0
    for name in names:
        relay = None
        try:
            relay = Relay(name, by_env=True)
            assert relay.stop() == 0, f"{name}: RELAY_PORT run did not exit 0 on SIGTERM"
            relay = Relay(name)
            if name == "node":
                assert relay.fields.get("bufferutil") == "yes", f"bufferutil not loaded: {relay.line!r}"
            asyncio.run(check_relay(relay))
            status = relay.stop()
            relay = None
            assert status == 0, f"{name}: exit status {status} on SIGTERM"
            print(f"{name}: ok")
        except Exception as e:  # one line per failed relay, then the next
            failed += 1
            print(f"{name}: FAILED: {type(e).__name__}: {e}")
        finally:
            if relay:
                relay.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
