"""Fixtures for integration tests: real Parley processes on loopback ports chosen here.

Each test gets a `Cluster` that starts the broker and workers (by default the sanitizer builds
from PARLEY_BIN), waits until they are up, and on teardown stops them with SIGTERM, checks that
each exited cleanly and that no sanitizer report appeared in its log. Nothing here mocks Parley:
the tests talk to it over ZeroMQ and HTTP like any peer would.

The store fixtures at the end (redis_server, dynalite, dynamo_proxy) run the real servers Parley's
store clients talk to; see stores.py.
"""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from stores import Dynalite, RedisServer, SigV4Proxy

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, os.environ.get("PARLEY_BIN", "build/bin"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def free_port():
    return free_ports(1)[0]


def free_ports(count):
    """count distinct free ports: every socket stays bound until all are chosen, so the kernel
    cannot hand out the same port twice (it did: a broker then failed to bind its HTTP port)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def backtrace(pid):
    """Every thread's stack of a live process (gdb), to explain a hang in a failure message."""
    try:
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                             capture_output=True, timeout=30)
        return "\n".join(l for l in out.stdout.decode("utf-8", "replace").splitlines()
                         if l.startswith(("#", "Thread")))
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(no backtrace: {e})"


class Process:
    """One child process with its log file."""

    def __init__(self, name, argv, env, log_dir):
        self.name = name
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.expected_exit = {0}

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.expected_exit = {-signal.SIGKILL}

    def stop(self, timeout=20):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                stacks = backtrace(self.proc.pid)
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not stop within {timeout}s of SIGTERM; "
                                     f"its threads were at:\n{stacks}\nlog:\n{self.text()[-2000:]}")
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Cluster:
    def __init__(self, log_dir, **broker_env):
        self.log_dir = log_dir
        names = ("router", "events_in", "events_out", "http")
        self.ports = dict(zip(names, free_ports(len(names))))
        self.env = dict(os.environ)
        self.env.update({
            "PARLEY_BROKER_ENDPOINT": f"tcp://127.0.0.1:{self.ports['router']}",
            "PARLEY_BROKER_EVENTS_IN": f"tcp://127.0.0.1:{self.ports['events_in']}",
            "PARLEY_BROKER_EVENTS_OUT": f"tcp://127.0.0.1:{self.ports['events_out']}",
            "PARLEY_BROKER_STATS_ADDRESS": f"127.0.0.1:{self.ports['http']}",
            "PARLEY_HEARTBEAT_MS": "250",
        })
        self.env.update({k: str(v) for k, v in broker_env.items()})
        self.processes = []
        self.broker = None
        self.workers = []
        self.counter = 0

    @property
    def endpoint(self):
        return self.env["PARLEY_BROKER_ENDPOINT"]

    def spawn(self, name, binary, *args, **env):
        full_env = dict(self.env)
        full_env.update({k: str(v) for k, v in env.items()})
        self.counter += 1
        p = Process(f"{self.counter:02d}-{name}", [os.path.join(BIN, binary), *args], full_env,
                    self.log_dir)
        self.processes.append(p)
        return p

    def start_broker(self, **env):
        self.broker = self.spawn("broker", "parley-broker", **env)
        wait_for(lambda: self.http_ok("/healthz"), what="broker /healthz")
        return self.broker

    def start_echo(self, count=1, wait=True, **env):
        before = self.replicas("echo") if wait else 0
        started = [self.spawn("echo", "parley-echo", **env) for _ in range(count)]
        self.workers.extend(started)
        if wait:
            wait_for(lambda: self.replicas("echo") >= before + count, what="echo replicas ready")
        return started

    def http(self, path):
        url = f"http://127.0.0.1:{self.ports['http']}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()

    def http_ok(self, path):
        try:
            return self.http(path)[0] == 200
        except OSError:
            return False

    def stats(self):
        return json.loads(self.http("/stats")[1])

    def metrics(self):
        samples = {}
        for line in self.http("/metrics")[1].splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def replicas(self, service):
        try:
            return self.stats()["services"].get(service, {}).get("replicas", 0)
        except OSError:
            return 0

    def probe(self, *args, timeout=120, **env):
        full_env = dict(self.env)
        full_env.update({k: str(v) for k, v in env.items()})
        out = subprocess.run([os.path.join(BIN, "parley-probe"), *map(str, args)], env=full_env,
                             capture_output=True, timeout=timeout)
        check_sanitizers("probe", out.stderr.decode("utf-8", "replace"))
        assert out.returncode == 0, out.stderr.decode()
        return json.loads(out.stdout.decode().strip().splitlines()[-1])

    def probe_async(self, *args, **env):
        full_env = dict(self.env)
        full_env.update({k: str(v) for k, v in env.items()})
        return subprocess.Popen([os.path.join(BIN, "parley-probe"), *map(str, args)],
                                env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop_all(self):
        problems = []
        for p in reversed(self.processes):
            try:
                code = p.stop()
            except AssertionError as e:
                problems.append(str(e))
                continue
            if code not in p.expected_exit:
                problems.append(f"{p.name} exited with {code}:\n{p.text()[-3000:]}")
            try:
                check_sanitizers(p.name, p.text())
            except AssertionError as e:
                problems.append(str(e))
        assert not problems, "\n\n".join(problems)


def check_sanitizers(name, text):
    for mark in SANITIZER_MARKS:
        assert mark not in text, f"{name}: sanitizer report:\n{text[-5000:]}"


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_http_up(base, what="gateway", timeout=15.0):
    """Waits until GET base/healthz answers 200."""
    def up():
        try:
            return urllib.request.urlopen(f"{base}/healthz", timeout=1).status == 200
        except OSError:
            return False
    wait_for(up, timeout=timeout, what=what)


@pytest.fixture
def cluster_factory(tmp_path):
    clusters = []

    def make(**broker_env):
        c = Cluster(str(tmp_path), **broker_env)
        clusters.append(c)
        return c

    yield make
    for c in clusters:
        c.stop_all()


@pytest.fixture
def cluster(cluster_factory):
    c = cluster_factory()
    c.start_broker()
    return c


# --- Store servers (stores.py): Redis, dynalite and the SigV4-checking proxy in front of it.
# Each is function-scoped, listens on its own 127.0.0.1 port and is stopped on teardown even
# when the test fails.

@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(str(tmp_path)).start()
    yield server
    server.stop()


@pytest.fixture
def dynalite_factory(tmp_path):
    """Starts dynalite servers on demand: make() in memory, make(path=DIR) on LevelDB in DIR
    (data survives restart())."""
    servers = []

    def make(path=None):
        server = Dynalite(str(tmp_path), path=path)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def dynalite(dynalite_factory):
    return dynalite_factory()


@pytest.fixture
def dynamo_proxy(dynalite):
    """A SigV4Proxy in front of the dynalite fixture: credentials AKIDEXAMPLE/secret, region
    eu-west-1, service dynamodb. Point clients at dynamo_proxy.url (or use dynamo_proxy.env)."""
    proxy = SigV4Proxy(dynalite.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def jira_sandbox(tmp_path):
    """The Jira sandbox (sandboxes/jira) on a free loopback port."""
    from sandboxes import JiraSandbox
    sandbox = JiraSandbox(str(tmp_path)).start()
    yield sandbox
    sandbox.stop()
