"""Request dispatch through the broker: load spreading, worker death, missing services, full
queues. Every assertion is about what a client sees."""
import time

from conftest import wait_for


def test_requests_spread_over_three_echo_replicas(cluster):
    cluster.start_echo(3)
    report = cluster.probe("--requests", 3000, "--concurrency", 60)
    assert report["replies"] == 3000
    assert report["duplicates"] == 0 and report["errors"] == {}
    assert len(report["instances"]) == 3
    for instance, count in report["instances"].items():
        assert count >= 600, f"{instance} answered only {count} of 3000: {report['instances']}"


def test_kill9_replica_with_requests_in_flight_every_request_answered_exactly_once(cluster):
    victim, *_ = cluster.start_echo(3, PARLEY_WORKER_CAPACITY=8)
    # 600 requests of 100 ms each, 48 in flight: the victim holds up to 8 when it dies.
    probe = cluster.probe_async("--requests", 600, "--concurrency", 48, "--delay-ms", 100,
                                "--timeout-ms", 20000)
    wait_for(lambda: cluster.stats()["services"]["echo"]["replies"] >= 100, what="traffic")
    victim.kill9()
    out, err = probe.communicate(timeout=120)
    assert probe.returncode == 0, err.decode()
    import json
    report = json.loads(out.decode().splitlines()[-1])
    assert report["sent"] == 600
    assert report["replies"] == 600, report
    assert report["duplicates"] == 0 and report["errors"] == {}
    echo = cluster.stats()["services"]["echo"]
    assert echo["redispatches"] >= 1, echo
    assert echo["replicas"] == 2


def test_request_for_missing_service_gets_a_clear_error(cluster_factory):
    c = cluster_factory(PARLEY_BROKER_NO_REPLICA_GRACE_MS=0)
    c.start_broker()
    time.sleep(0.05)
    started = time.monotonic()
    report = c.probe("--requests", 5, "--service", "no-such-service", "--timeout-ms", 10000)
    assert report["errors"] == {"no_service": 5}
    assert time.monotonic() - started < 5, "the error must come at once, not at the deadline"
    assert c.stats()["broker"]["no_service"] == 5


def test_service_whose_replicas_all_left_fails_fast_after_grace(cluster_factory):
    c = cluster_factory(PARLEY_BROKER_NO_REPLICA_GRACE_MS=300)
    c.start_broker()
    (worker,) = c.start_echo(1)
    worker.stop()
    wait_for(lambda: c.replicas("echo") == 0, what="replica gone")
    time.sleep(0.4)
    report = c.probe("--requests", 3, "--timeout-ms", 10000)
    assert report["errors"] == {"no_service": 3}


def test_full_queue_answers_overloaded(cluster_factory):
    c = cluster_factory(PARLEY_BROKER_QUEUE_MAX=5)
    c.start_broker()
    c.start_echo(1, PARLEY_WORKER_CAPACITY=1)
    report = c.probe("--requests", 40, "--concurrency", 40, "--delay-ms", 200,
                     "--timeout-ms", 20000)
    # one in flight + five queued are served; the rest are refused at once
    assert report["replies"] == 6, report
    assert report["errors"] == {"overloaded": 34}
    echo = c.stats()["services"]["echo"]
    assert echo["overloaded"] == 34 and echo["queue"] == 0


def test_request_past_its_deadline_gets_timeout_and_late_reply_is_dropped(cluster):
    cluster.start_echo(1)
    report = cluster.probe("--requests", 3, "--concurrency", 3, "--delay-ms", 1500,
                           "--timeout-ms", 300)
    assert report["errors"] == {"timeout": 3}
    assert report["duplicates"] == 0
    wait_for(lambda: cluster.stats()["broker"]["late_replies"] == 3, what="late replies")
    echo = cluster.stats()["services"]["echo"]
    assert echo["timeouts"] == 3 and echo["inflight"] == 0


def test_worker_error_reaches_client_with_its_code(cluster):
    cluster.start_echo(1)
    report = cluster.probe("--requests", 4, "--fail-code", "jira_unavailable")
    assert report["errors"] == {"jira_unavailable": 4}


def _ordered_run(cluster, keys, per_key, kill=None):
    """Sends per_key requests for each key (interleaved, each with a random delay) through a raw
    client, all at once; returns {key: [sequence numbers in the order answered]}."""
    import random

    import msgpack

    from peers import HEARTBEAT, REPLY, REQUEST, RawPeer
    rng = random.Random(7)
    peer = RawPeer(cluster.endpoint)
    sent = {}
    try:
        request_id = 0
        for n in range(per_key):
            for key in keys:
                request_id += 1
                sent[request_id] = (key, n)
                body = {"data": f"{key}:{n}".encode(), "delay_ms": rng.randint(0, 40)}
                peer.send(REQUEST, {"id": request_id, "service": "echo", "type": "echo.request",
                                    "timeout_ms": 30000, "order_key": key},
                          msgpack.packb(body))
        answered = {key: [] for key in keys}
        deadline = time.monotonic() + 60
        killed = False
        while sum(map(len, answered.values())) < len(sent) and time.monotonic() < deadline:
            if kill and not killed and sum(map(len, answered.values())) >= len(sent) // 3:
                kill()
                killed = True
            answer = peer.recv(timeout_ms=1000)
            if answer and answer[0] != HEARTBEAT:
                command, header, _ = answer
                assert command == REPLY, header
                key, n = sent[header["id"]]
                answered[key].append(n)
        return answered
    finally:
        peer.close()


def test_requests_with_one_order_key_run_one_at_a_time_in_order(cluster):
    cluster.start_echo(3)
    keys = [f"conv-{k}" for k in range(6)]
    answered = _ordered_run(cluster, keys, per_key=25)
    for key in keys:
        assert answered[key] == list(range(25)), key
    # different keys still ran side by side on every replica
    assert all(w["requests_done"] > 0 for w in cluster.stats()["services"]["echo"]["workers"])


def test_order_survives_a_replica_killed_mid_run(cluster):
    victim, *_ = cluster.start_echo(3, PARLEY_WORKER_CAPACITY=4)
    keys = [f"conv-{k}" for k in range(6)]
    answered = _ordered_run(cluster, keys, per_key=20, kill=victim.kill9)
    for key in keys:
        assert answered[key] == list(range(20)), key
    assert cluster.stats()["services"]["echo"]["redispatches"] >= 1
