"""The broker can die and come back: workers and clients reconnect and serve again, and the
requests a client held are answered, once each."""
import json
import time

from conftest import wait_for


def test_after_broker_restart_workers_and_clients_reconnect_and_serve(cluster):
    cluster.start_echo(2)
    probe = cluster.probe_async("--requests", 400, "--concurrency", 20, "--delay-ms", 25,
                                "--timeout-ms", 30000)
    wait_for(lambda: cluster.stats()["services"]["echo"]["replies"] >= 50, what="traffic")
    cluster.broker.kill9()
    time.sleep(1.0)
    cluster.start_broker()
    wait_for(lambda: cluster.replicas("echo") == 2, timeout=20, what="workers back")
    out, err = probe.communicate(timeout=120)
    assert probe.returncode == 0, err.decode()
    report = json.loads(out.decode().splitlines()[-1])
    assert report["replies"] == 400, report
    assert report["duplicates"] == 0 and report["errors"] == {}
    # and a fresh client works too
    assert cluster.probe("--requests", 100, "--concurrency", 10)["replies"] == 100


def test_worker_started_before_broker_connects_when_it_comes(cluster_factory):
    c = cluster_factory()
    c.start_echo(1, wait=False)
    time.sleep(0.5)
    c.start_broker()
    wait_for(lambda: c.replicas("echo") == 1, timeout=20, what="late worker")
    assert c.probe("--requests", 10)["replies"] == 10
