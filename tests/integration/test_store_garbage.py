"""Corrupt or unexpected replies from Redis or DynamoDB give errors, not crashes or hangs.

common/redis_client and common/dynamo (driven by tests/tools/store_probe, sanitizer build) are
pointed at a GarbageServer that answers every request with one kind of garbage; each run must
end soon with a non-zero exit, a JSON error line and no sanitizer report. Then a running
parley-presence is given a garbage Redis: its requests get `degraded`, it stays up, and it
serves normally again once the same address relays to a real Redis."""
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, check_sanitizers, wait_for
from stores import GarbageServer
from test_presence import PresenceClient

KINDS = [k for k in GarbageServer.KINDS if k != "relay"]
REDIS_TIMEOUT_MS = 300
DYNAMO_TIMEOUT_MS = 500
DYNAMO_RETRY_MAX = 2
# Transport failures are retried (DYNAMO_RETRY_MAX attempts), a 5xx too, but not past the
# time limit of one attempt in all (a reply that trickles in uses it up: one attempt); a 200
# that is not a JSON object is a protocol error and is not retried.
DYNAMO_EXPECTED = {"http_not_json": ("protocol", 1), "http_json_array": ("protocol", 1),
                   "http_500_garbage": ("server", DYNAMO_RETRY_MAX), "trickle": ("transport", 1)}
TIME_LIMIT_S = 5.0


@pytest.fixture
def garbage():
    server = GarbageServer().start()
    yield server
    server.stop()


def store_probe(*args, **env):
    """Runs store-probe; returns (exit code, its last stdout line as JSON or None, seconds)."""
    full_env = dict(os.environ)
    full_env.update({k: str(v) for k, v in env.items()})
    started = time.monotonic()
    out = subprocess.run([os.path.join(BIN, "store-probe"), *args], env=full_env,
                         capture_output=True, timeout=60)
    elapsed = time.monotonic() - started
    stderr = out.stderr.decode("utf-8", "replace")
    check_sanitizers("store-probe", stderr)
    lines = out.stdout.decode("utf-8", "replace").strip().splitlines()
    assert lines, f"no result line; exit {out.returncode}, stderr:\n{stderr[-3000:]}"
    return out.returncode, json.loads(lines[-1]), elapsed


@pytest.mark.parametrize("kind", KINDS)
def test_redis_client_answers_garbage_with_an_error(garbage, kind):
    garbage.kind = kind
    code, result, elapsed = store_probe(
        "redis", "PING", PARLEY_REDIS_URL=garbage.redis_url,
        PARLEY_REDIS_TIMEOUT_MS=REDIS_TIMEOUT_MS, PARLEY_REDIS_CONNECT_TIMEOUT_MS=1000)
    assert code == 1 and result["ok"] is False, result
    assert f"127.0.0.1:{garbage.port}" in result["error"], result
    assert elapsed < TIME_LIMIT_S, f"{kind}: took {elapsed:.1f}s ({result})"
    assert garbage.connections >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_dynamo_client_answers_garbage_with_an_error(garbage, kind):
    garbage.kind = kind
    key = json.dumps({"pk": {"S": "TENANT#acme"}, "sk": {"S": "META"}})
    code, result, elapsed = store_probe(
        "dynamo", "get", "parley", key, PARLEY_DYNAMO_ENDPOINT=garbage.url,
        PARLEY_DYNAMO_RETRY_MAX=DYNAMO_RETRY_MAX, PARLEY_DYNAMO_RETRY_BASE_MS=10,
        PARLEY_DYNAMO_TIMEOUT_MS=DYNAMO_TIMEOUT_MS, PARLEY_DYNAMO_CONNECT_TIMEOUT_MS=1000)
    assert code == 1 and result["ok"] is False, result
    status, attempts = DYNAMO_EXPECTED.get(kind, ("transport", DYNAMO_RETRY_MAX))
    assert (result["status"], result["attempts"]) == (status, attempts), result
    assert elapsed < TIME_LIMIT_S, f"{kind}: took {elapsed:.1f}s ({result})"
    assert garbage.connections >= 1


def test_presence_on_a_garbage_redis_answers_degraded_stays_up_and_recovers(
        cluster_factory, redis_server, dynamo_proxy):
    with GarbageServer("resp_huge_array", relay_to=("127.0.0.1", redis_server.port)) as fake:
        # every request must reach the hostile server (no backoff after its failures)
        env = dict(dynamo_proxy.env, PARLEY_REDIS_URL=fake.redis_url,
                   PARLEY_REDIS_TIMEOUT_MS=REDIS_TIMEOUT_MS, PARLEY_PRESENCE_FLUSH_MS=500,
                   PARLEY_REDIS_BACKOFF_MAX_MS=0)
        c = cluster_factory(**env)
        c.start_broker()
        presence = c.spawn("presence", "parley-presence")
        wait_for(lambda: c.replicas("presence") == 1, what="presence ready")
        client = PresenceClient(c.endpoint)
        try:
            n = 0
            for kind in KINDS:
                fake.kind = kind
                for type_, body in (
                        ("presence.open", {"tenant": "acme", "socket": f"s{n}", "gateway": "g",
                                           "kind": "customer"}),
                        ("presence.heartbeat", {"tenant": "acme", "gateway": "g",
                                                "sockets": [f"s{n}"]}),
                        ("presence.close", {"tenant": "acme", "socket": f"s{n}",
                                            "gateway": "g"})):
                    n += 1
                    started = time.monotonic()
                    answer = client.call(type_, body, timeout_ms=4000)
                    assert answer.get("error") == "degraded", (kind, type_, answer)
                    assert time.monotonic() - started < 3, (kind, type_, "answered late")
                assert presence.alive(), f"presence died on {kind}:\n{presence.text()[-3000:]}"
            assert c.replicas("presence") == 1
            # the same address now leads to a real Redis: served again, no restart needed
            fake.kind = "relay"
            assert client.call("presence.open", {"tenant": "acme", "socket": "ok",
                                                 "gateway": "g", "kind": "customer"}) == \
                {"updated": 1}
            assert redis_server.command("HGET", "sock|acme|ok", "state") == b"open"
            # every degraded answer was counted (the counters ride in the next heartbeat)
            wait_for(lambda: c.stats()["services"]["presence"]["workers"][0]["counters"]
                     ["redis_errors"] >= 3 * len(KINDS), timeout=5, what="redis_errors counted")
        finally:
            client.close()
        assert presence.alive()
