"""The numbers on /stats and /metrics equal the traffic that was sent."""
from conftest import wait_for


def test_stats_and_metrics_equal_the_traffic_sent(cluster):
    cluster.start_echo(2)
    ok = cluster.probe("--requests", 1234, "--concurrency", 30)
    failed = cluster.probe("--requests", 56, "--concurrency", 7, "--fail-code", "boom")
    events = cluster.probe("--requests", 0, "--events", 25)
    assert ok["replies"] == 1234 and failed["errors"] == {"boom": 56}
    assert events["events_received"] == 25

    stats = cluster.stats()
    echo = stats["services"]["echo"]
    assert echo["requests"] == 1234 + 56
    assert echo["replies"] == 1234
    assert echo["errors"] == 56
    assert echo["replicas"] == 2 and echo["queue"] == 0 and echo["inflight"] == 0
    assert echo["redispatches"] == 0 and echo["timeouts"] == 0
    assert 0 < echo["latency_us"]["p50"] <= echo["latency_us"]["p95"] <= echo["latency_us"]["p99"]
    assert stats["events"]["forwarded"] == 25 + events["pings_received"]

    # worker counters ride in heartbeats: wait for the next one
    def worker_counters_add_up():
        workers = cluster.stats()["services"]["echo"]["workers"]
        return sum(w["counters"].get("requests", 0) for w in workers) == 1290
    wait_for(worker_counters_add_up, what="worker heartbeat counters")

    m = cluster.metrics()
    assert m['parley_service_requests_total{service="echo"}'] == 1290
    assert m['parley_service_replies_total{service="echo"}'] == 1234
    assert m['parley_service_errors_total{service="echo"}'] == 56
    assert m['parley_service_replicas{service="echo"}'] == 2
    assert m['parley_service_latency_seconds_count{service="echo"}'] == 1290
    assert m["parley_events_forwarded_total"] == 25 + events["pings_received"]
    replies = sum(v for k, v in m.items()
                  if k.startswith("parley_peer_counter{") and 'counter="replies"' in k
                  and 'role="echo"' in k)
    assert replies == 1234


def test_healthz_and_content_types(cluster):
    status, body = cluster.http("/healthz")
    assert (status, body) == (200, "ok\n")
    import urllib.request
    url = f"http://127.0.0.1:{cluster.ports['http']}"
    with urllib.request.urlopen(url + "/metrics") as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    with urllib.request.urlopen(url + "/stats") as r:
        assert r.headers["Content-Type"] == "application/json"
