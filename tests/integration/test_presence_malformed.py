"""Malformed presence.open / heartbeat / close / availability payloads, sent through the broker by a raw peer:
random bytes, every truncation of a valid payload, and hand-made MessagePack that lies about
its lengths, nests deeply, has wrong types or trailing bytes. Each gets ERROR bad_request, every
one is counted, and the worker stays up and keeps serving."""
import random
import time

import msgpack
import pytest

from conftest import wait_for
from peers import ERROR, REPLY, REQUEST, RawPeer

VALID = {
    "presence.open": {"tenant": "acme", "socket": "s-1", "gateway": "gw-1", "kind": "agent",
                      "account": "557058:agent-1", "projects": ["SUP", "HR"]},
    "presence.heartbeat": {"tenant": "acme", "gateway": "gw-1", "sockets": ["s-1", "s-2", "s-3"]},
    "presence.close": {"tenant": "acme", "socket": "s-1", "gateway": "gw-1"},
    "presence.availability": {"tenant": "acme", "project": "SUP", "zone": "Europe/Berlin"},
}


def crafted(type_):
    """Hand-made payloads that are not a valid type_ request, each with what it tries."""
    valid = VALID[type_]
    packed = msgpack.packb(valid)
    list_field = "projects" if type_ == "presence.open" else "sockets"  # close has none
    cases = {
        "empty": b"",
        "nil": b"\xc0",
        "array instead of map": msgpack.packb(list(valid.values())),
        "map of 2^32-1 pairs": b"\xdf\xff\xff\xff\xff",
        "map16 claiming 65535 pairs": b"\xde\xff\xff" + packed[1:],
        "str32 key of 4 GiB": b"\x81\xdb\xff\xff\xff\xff" + b"tenant",
        "bin key": b"\x81\xc4\x06tenant\xa4acme",
        "integer key": b"\x81\x01\xa4acme",
        "reserved byte 0xc1": b"\x81\xa6tenant\xc1",
        "ext value of 4 GiB": b"\x81\xa1x\xc9\xff\xff\xff\xff\x01",
        "deeply nested unknown field": b"\x81\xa1x" + b"\x91" * 5000 + b"\xc0",
        "array32 of 2^32-1 in an unknown field": b"\x81\xa1x\xdd\xff\xff\xff\xff",
        "trailing byte": packed + b"\x00",
        "two documents": packed + packed,
        "duplicated field": b"\x82\xa6tenant\xa4acme\xa6tenant\xa4acme",
        "tenant is an integer": msgpack.packb(dict(valid, tenant=7)),
        "tenant is binary": msgpack.packb(dict(valid, tenant=b"acme")),
        "tenant is empty": msgpack.packb(dict(valid, tenant="")),
        "tenant of 64 characters": msgpack.packb(dict(valid, tenant="t" * 64)),
        "tenant with a NUL": msgpack.packb(dict(valid, tenant="ac\0me")),
        "tenant with a newline": msgpack.packb(dict(valid, tenant="ac\nme")),
        "tenant not ASCII": msgpack.packb(dict(valid, tenant="acmé")),
        "tenant with a key separator": msgpack.packb(dict(valid, tenant="a|b")),
        "tenant is a map": msgpack.packb(dict(valid, tenant={"a": 1})),
        "tenant missing": msgpack.packb({k: v for k, v in valid.items() if k != "tenant"}),
    }
    if list_field in valid:
        cases.update({
            f"{list_field} is a string": msgpack.packb(dict(valid, **{list_field: "s-1"})),
            f"{list_field} holds an integer": msgpack.packb(dict(valid, **{list_field: ["a", 2]})),
            f"{list_field} array32 claiming 2^32-1":
                msgpack.packb(dict(valid, **{list_field: []})).replace(
                    b"\x90", b"\xdd\xff\xff\xff\xff"),
            f"{list_field} past its limit":
                msgpack.packb(dict(valid, **{list_field: ["x"] * 513})),
        })
    for other, body in VALID.items():  # another request's payload: fields missing
        if other != type_ and not set(VALID[type_]) <= set(body):
            cases[f"payload of {other}"] = msgpack.packb(body)
    if type_ == "presence.heartbeat":
        cases["sockets empty"] = msgpack.packb(dict(valid, sockets=[]))
        cases["socket with a list separator"] = msgpack.packb(dict(valid, sockets=["a,b"]))
    if type_ == "presence.open":
        cases["kind unknown"] = msgpack.packb(dict(valid, kind="robot"))
        cases["agent without account"] = msgpack.packb(
            {k: v for k, v in valid.items() if k != "account"})
        cases["project with a list separator"] = msgpack.packb(dict(valid, projects=["a,b"]))
        cases["projects past their limit"] = msgpack.packb(dict(valid, projects=["P"] * 33))
    if type_ == "presence.availability":
        for zone in ("Mars/Olympus", "../../../etc/passwd", "/etc/localtime", "localtime",
                     "right/UTC", "Europe//Berlin", ".hidden/zone", "posixrules"):
            cases[f"zone {zone}"] = msgpack.packb(dict(valid, zone=zone))
    return cases


def malformed_payloads(seed=20261129):
    """(type, what, payload) for every malformed request of the test."""
    rng = random.Random(seed)
    out = []
    for type_, body in VALID.items():
        packed = msgpack.packb(body)
        out += [(type_, f"truncated to {n} of {len(packed)} bytes", packed[:n])
                for n in range(len(packed))]
        for i in range(25):
            out.append((type_, f"random #{i}", rng.randbytes(rng.randint(1, 300))))
        for i in range(40):  # a valid payload with bytes changed, kept if it no longer decodes
            data = bytearray(packed)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                msgpack.unpackb(bytes(data), raw=True, strict_map_key=False)
            except (ValueError, TypeError, msgpack.UnpackException):
                out.append((type_, f"mutated #{i}: {bytes(data)!r}", bytes(data)))
        out += [(type_, what, payload) for what, payload in crafted(type_).items()]
    return out


def send_all(peer, requests, first_id, window=64, timeout_s=30):
    """Sends (type, payload) requests to the presence service, at most window unanswered at a
    time. Returns {id: (command, header, payload)} for every answer."""
    answers, pending, next_index = {}, set(), 0
    deadline = time.monotonic() + timeout_s
    while (next_index < len(requests) or pending) and time.monotonic() < deadline:
        while next_index < len(requests) and len(pending) < window:
            type_, payload = requests[next_index]
            request_id = first_id + next_index
            peer.send(REQUEST, {"id": request_id, "service": "presence", "type": type_,
                                "timeout_ms": 10000}, payload)
            pending.add(request_id)
            next_index += 1
        answer = peer.recv(timeout_ms=500)
        if answer and answer[1].get("id") in pending:
            pending.discard(answer[1]["id"])
            answers[answer[1]["id"]] = answer
    return answers


@pytest.fixture
def presence(cluster_factory, redis_server, dynamo_proxy):
    c = cluster_factory(**redis_server.env, **dynamo_proxy.env)
    c.start_broker()
    c.worker = c.spawn("presence", "parley-presence")
    wait_for(lambda: c.replicas("presence") == 1, what="presence ready")
    return c


def test_malformed_presence_payloads_get_bad_request_and_the_worker_keeps_serving(presence):
    c = presence
    cases = malformed_payloads()
    assert len(cases) > 300
    peer = RawPeer(c.endpoint)
    try:
        answers = send_all(peer, [(type_, payload) for type_, _, payload in cases], first_id=1)
        wrong = []
        for index, (type_, what, payload) in enumerate(cases):
            answer = answers.get(1 + index)
            if answer is None or answer[0] != ERROR or answer[1].get("code") != "bad_request":
                wrong.append(f"{type_} {what}: {answer}")
        assert not wrong, f"{len(wrong)} of {len(cases)} not answered bad_request:\n" + \
            "\n".join(wrong[:20])
        assert all(answers[1 + i][1].get("message") for i in range(len(cases)))

        assert c.worker.alive(), c.worker.text()[-3000:]
        assert c.replicas("presence") == 1
        # the same worker still serves valid requests, one after the other
        expected = [{"updated": 1}, {"updated": 1, "unknown": ["s-2", "s-3"]}, {"updated": 1},
                    {"tenant": "acme", "project": "SUP", "available": False, "agents_online": 0,
                     "visibility": "when_online", "visible": False}]
        for n, (type_, body) in enumerate(VALID.items()):
            answer = send_all(peer, [(type_, msgpack.packb(body))], first_id=100000 + n)
            command, header, payload = answer[100000 + n]
            assert command == REPLY, (type_, header)
            assert msgpack.unpackb(payload, raw=False) == expected[n], type_
        wait_for(lambda: c.stats()["services"]["presence"]["workers"][0]["counters"]
                 ["bad_requests"] == len(cases), timeout=5,
                 what=f"{len(cases)} bad requests counted")
    finally:
        peer.close()
