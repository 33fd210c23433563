"""Two presence replicas flushing at the same wall-clock moments split the dirty set between
them: within one flush interval no DynamoDB item is written twice, and both replicas do part of
the writing (common/DATA-MODEL.md, "Write-behind, crash-safe and shared").

What was written is read from the SigV4 proxy in front of dynalite, which records the (pk, sk) of
every BatchWriteItem request and when it went on to the store."""
import collections
import json
import subprocess

from conftest import BIN, wait_for

FLUSH_MS = 2000


def presence_workers(cluster):
    return cluster.stats()["services"].get("presence", {}).get("workers", [])


def test_two_replicas_write_no_entry_twice_in_one_flush_interval(cluster_factory, redis_server,
                                                                 dynamo_proxy):
    env = dict(redis_server.env, **dynamo_proxy.env, PARLEY_PRESENCE_FLUSH_MS=FLUSH_MS)
    c = cluster_factory(**env)
    c.start_broker()
    for _ in range(2):
        c.spawn("presence", "parley-presence")
    wait_for(lambda: c.replicas("presence") == 2, what="two presence replicas ready")

    # 1,000 sockets heartbeating every 250 ms: each is dirty again long before the next flush,
    # and again while a flush is still writing.
    sim = subprocess.run([f"{BIN}/presence-sim", "--sockets", "1000", "--agents", "10",
                          "--interval-ms", "250", "--duration-ms", "8000", "--tenant", "share"],
                         env=c.env, capture_output=True, timeout=60)
    assert sim.returncode == 0, sim.stderr.decode()
    report = json.loads(sim.stdout)
    # (the simulator heartbeats before every open is answered, so with two replicas a socket's
    # first heartbeat may overtake its open and be answered "unknown")
    assert report["opened"] == 1000 and report["errors"] == {}, report
    assert report["heartbeats_acked"] >= report["heartbeats_sent"] - 1000, report

    def drained():
        flushing = [k for k in redis_server.command("KEYS", "flushing|*")
                    if redis_server.command("HLEN", k)]
        return (redis_server.command("SCARD", "dirty") == 0 and
                redis_server.command("SCARD", "flushable") == 0 and not flushing)
    wait_for(drained, timeout=3 * FLUSH_MS / 1000 + 5, what="every dirty entry written")

    writes = dynamo_proxy.written_keys()
    by_window = collections.defaultdict(collections.Counter)
    for at, pk, sk in writes:
        by_window[int(at * 1000) // FLUSH_MS][(pk, sk)] += 1
    twice = {window: [(key, n) for key, n in counts.items() if n > 1]
             for window, counts in by_window.items()}
    twice = {window: keys for window, keys in twice.items() if keys}
    # how far into its interval the last write of a flush went: a flush running past the next
    # boundary (an overloaded machine) would make its late writes look like the next round's
    latest_ms = max((at * 1000) % FLUSH_MS for at, _, _ in writes)
    assert not twice, (
        f"entries written more than once in one {FLUSH_MS} ms interval: " +
        "; ".join(f"interval {w}: {len(keys)} entries, e.g. {keys[:3]}"
                  for w, keys in sorted(twice.items())) +
        f" (writes per interval: { {w: sum(n.values()) for w, n in sorted(by_window.items())} }, "
        f"latest write {latest_ms:.0f} ms into its interval)")

    # The test saw real work: every socket and agent row, over several intervals.
    written = {(pk, sk) for _, pk, sk in writes}
    assert sum(1 for pk, _ in written if pk.startswith("SOCKETS#share#")) == 1000
    assert sum(1 for pk, _ in written if pk == "ONLINE#share#SUP") == 10
    assert len(by_window) >= 4, sorted(by_window)

    # Both replicas wrote (their counters ride in their heartbeats to the broker).
    def both_wrote():
        workers = presence_workers(c)
        return len(workers) == 2 and all(w["counters"]["rows_written"] > 0 for w in workers)
    try:
        wait_for(both_wrote, timeout=5, what="rows written by both replicas")
    except AssertionError:
        raise AssertionError(f"rows_written per replica: "
                             f"{[w['counters']['rows_written'] for w in presence_workers(c)]}")
    # and what they counted as written is what reached the store, no more, no less
    wait_for(lambda: sum(w["counters"]["rows_written"] for w in presence_workers(c)) ==
             len(writes), timeout=5, what=f"rows_written adding up to the {len(writes)} writes")
