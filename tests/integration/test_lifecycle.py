"""Graceful stop on SIGTERM and --help on every binary."""
import json
import os
import subprocess

from conftest import BIN, wait_for


def test_every_binary_prints_its_configuration_with_help():
    for binary in ("parley-broker", "parley-echo"):
        out = subprocess.run([os.path.join(BIN, binary), "--help"], capture_output=True,
                             timeout=10)
        assert out.returncode == 0
        text = out.stdout.decode()
        assert "PARLEY_BROKER_ENDPOINT" in text and "PARLEY_HEARTBEAT_MS" in text
    bad = subprocess.run([os.path.join(BIN, "parley-broker"), "--bogus"], capture_output=True,
                         timeout=10)
    assert bad.returncode == 2 and b"unknown argument" in bad.stderr
    env = dict(os.environ, PARLEY_HEARTBEAT_MS="nope")
    bad = subprocess.run([os.path.join(BIN, "parley-broker")], capture_output=True, env=env,
                         timeout=10)
    assert bad.returncode == 2 and b"PARLEY_HEARTBEAT_MS must be an integer" in bad.stderr


def test_sigterm_worker_finishes_what_it_holds_then_leaves(cluster):
    (worker,) = cluster.start_echo(1)
    probe = cluster.probe_async("--requests", 8, "--concurrency", 8, "--delay-ms", 800,
                                "--timeout-ms", 20000)
    wait_for(lambda: cluster.stats()["services"]["echo"]["inflight"] == 8, what="in flight")
    assert worker.stop() == 0
    out, _ = probe.communicate(timeout=60)
    report = json.loads(out.decode().splitlines()[-1])
    assert report["replies"] == 8 and report["duplicates"] == 0
    assert "event=stopped outstanding=0" in worker.text()
    assert cluster.replicas("echo") == 0
    assert cluster.stats()["services"]["echo"]["redispatches"] == 0


def test_draining_worker_gets_no_new_requests(cluster):
    first, second = cluster.start_echo(2)
    probe = cluster.probe_async("--requests", 4, "--concurrency", 4, "--delay-ms", 1000,
                                "--timeout-ms", 20000)
    wait_for(lambda: cluster.stats()["services"]["echo"]["inflight"] == 4, what="in flight")
    first.stop()
    report = cluster.probe("--requests", 50, "--concurrency", 5)
    assert list(report["instances"]) == [w["instance"] for w in
                                         cluster.stats()["services"]["echo"]["workers"]]
    probe.communicate(timeout=60)


def test_sigterm_broker_exits_cleanly_and_workers_notice(cluster):
    (worker,) = cluster.start_echo(1)
    assert cluster.broker.stop() == 0
    assert "event=broker_stopped" in cluster.broker.text()
    wait_for(lambda: "reason=broker_said_disconnect" in worker.text(), what="worker told")
