"""The gateway's part of `make bench` (scripts/bench.sh runs it; it also runs alone with
/usr/bin/python3 bench/gateway_bench.py): three servers doing the same room fan-out, driven
one after the other by the same C load generator (parley-wsload) on this machine.

  parley     parley-gateway -> parley-broker -> parley-gateway, with authentication (JWTs
             checked by the jira worker), the JSON client protocol, presence, acks and
             persisted events; rooms are conversations of one customer and one agent
  node_ws    a Node.js relay on the `ws` library with its native bufferutil, no compression
             (bench/relay/relay_node.js)
  bare_lws   a bare single-threaded libwebsockets relay (bench/relay/relay_lws.c): the
             ceiling for a websocket relay on this machine

For each: resident memory per idle socket (the server's RSS growth over IDLE sockets, each
taken through its hello/join; Parley's are authenticated customers), then ROOMS rooms and a
fixed 20,000 msg/s step (p50/p99, and the CPU time the server's processes used per message
delivered: all of Parley's, gateway, broker, presence and the sink; the relay's), then a
search for the highest rate whose p99 stays under 50 ms with nothing lost; the search runs
REPEAT times on the same connections and the median is reported.

Parley's rooms are set up by the real jira worker against the Jira sandbox (1,000 customers,
1,000 Jira issues); then the worker is stopped and `parley-bench jira-sink` answers
conversation.message in its place (the same reply and persisted event, nothing written):
Jira Cloud takes a few comments a second per tenant, and the jira worker's own rate is
measured by scripts/bench-jira.sh. Everything else is what runs in production.

Prints `name: value` lines (see README "Benchmarks"). Settings (environment):
PARLEY_BENCH_GW_ROOMS (1000), PARLEY_BENCH_GW_IDLE (19000), PARLEY_BENCH_GW_REPEAT (3),
PARLEY_BENCH_GW_STEP_S (3), PARLEY_BENCH_GW_SERVERS (parley,node_ws,bare_lws); for profiling,
PARLEY_BENCH_GW_FIXED_RATE (20000) and PARLEY_BENCH_GW_NO_SEARCH=1 (the fixed step only)."""
import base64
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from sandboxes import JiraSandbox  # noqa: E402

BIN = os.environ.get("PARLEY_BIN", os.path.join(ROOT, "build", "bin"))
LOGS = os.path.join(ROOT, "build", "bench", "gateway")
ROOMS = int(os.environ.get("PARLEY_BENCH_GW_ROOMS", "1000"))
IDLE = int(os.environ.get("PARLEY_BENCH_GW_IDLE", "19000"))
REPEAT = int(os.environ.get("PARLEY_BENCH_GW_REPEAT", "3"))
STEP_S = os.environ.get("PARLEY_BENCH_GW_STEP_S", "3")
SERVERS = os.environ.get("PARLEY_BENCH_GW_SERVERS", "parley,node_ws,bare_lws").split(",")
FIXED_RATE = int(os.environ.get("PARLEY_BENCH_GW_FIXED_RATE", "20000"))  # printed as *_at_20k
P99_MS = 50
TENANT_PROJECT = "SUP"
PROJECT_KEY = base64.b64encode(os.urandom(24)).decode()
AGENT = "bench-agent"


def say(*words):
    print("bench-gateway:", *words, file=sys.stderr, flush=True)


def free_ports(count):
    held = [socket.socket() for _ in range(count)]
    for s in held:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in held]
    for s in held:
        s.close()
    return ports


def wait_port(port, what, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench-gateway: {what} did not listen on {port} (logs in {LOGS})")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def stat_cpu_seconds(text):
    """utime + stime of a /proc/.../stat line, in seconds."""
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return stat_cpu_seconds(stat.read())


def thread_cpu_seconds(watch):
    """{(label, tid): (thread name, CPU seconds)} for every thread of the (label, pid) pairs;
    a process's first thread is called "main"."""
    threads = {}
    for label, pid in watch:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                    text = stat.read()
            except FileNotFoundError:
                continue
            name = "main" if tid == str(pid) else text[text.index("(") + 1:text.rindex(")")]
            threads[(label, tid)] = (name, stat_cpu_seconds(text))
    return threads


class Processes:
    """Child processes, stopped in reverse order (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, env=None, stdin=subprocess.DEVNULL, stdout=None):
        log = open(os.path.join(LOGS, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, env=dict(os.environ, **(env or {})), cwd=ROOT,
                                stdin=stdin, stdout=stdout or log, stderr=log)
        proc.name = name
        self.procs.append(proc)
        return proc

    def stop(self, proc, grace_s=10):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self):
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def wsload_argv(mode, port, protocol, extra):
    return [os.path.join(BIN, "parley-wsload"), mode, "--host", "127.0.0.1", "--port",
            str(port), "--path", "/ws", "--protocol", protocol, *extra]


def run_idle(procs, name, server_pid, port, protocol, extra):
    """RSS growth per socket of server_pid over IDLE idle sockets."""
    time.sleep(1)
    before = rss_bytes(server_pid)
    load = procs.start(f"wsload-idle-{name}",
                       wsload_argv("idle", port, protocol, ["--sockets", str(IDLE), *extra]),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = load.stdout.readline().decode()
    match = re.search(r"idle_ready sockets=(\d+) failed=(\d+) seconds=([\d.]+)", line)
    if not match:
        load.kill()
        raise SystemExit(f"bench-gateway: {name}: idle run said {line!r} (see {LOGS})")
    ready = int(match.group(1))
    time.sleep(2)  # let the server settle (presence calls, pings)
    after = rss_bytes(server_pid)
    load.stdin.close()
    load.wait(60)
    procs.procs.remove(load)
    say(f"{name}: {ready} idle sockets in {match.group(3)} s, RSS {before >> 20} -> "
        f"{after >> 20} MiB")
    return (after - before) / max(ready, 1), ready


def parse_steps(text):
    steps = []
    for line in text.splitlines():
        if line.startswith("step "):
            steps.append({k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)})
    return steps


def run_fanout(procs, name, port, protocol, extra, before_go=None, watch=()):
    """Sets up ROOMS rooms, runs the fixed step, then REPEAT searches. Returns the steps
    (dicts), the search results and the CPU of the processes in watch ((label, pid) pairs,
    read after before_go ran, so that it may add to them): percent of one core over the
    whole run per label, under "us_per_msg_fixed" the CPU microseconds all of them used per
    message received during the fixed step, and under "us_per_msg_fixed_threads" the same
    per thread ("label/thread=us ...")."""
    search = [] if os.environ.get("PARLEY_BENCH_GW_NO_SEARCH") else ["--search"]
    argv = wsload_argv("fanout", port, protocol,
                       ["--rooms", str(ROOMS), "--step-s", STEP_S, "--rates", str(FIXED_RATE),
                        *search, "--search-start", "10000", "--p99-ms", str(P99_MS),
                        "--repeat", str(REPEAT), *extra])
    if before_go:
        argv.append("--wait-after-setup")
    load = procs.start(f"wsload-fanout-{name}", argv, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
    line = load.stdout.readline().decode()
    if not line.startswith("setup_done"):
        load.kill()
        raise SystemExit(f"bench-gateway: {name}: setup said {line!r} (see {LOGS})")
    say(f"{name}: {line.strip()}")
    if before_go:
        before_go()
        load.stdin.write(b"go\n")
        load.stdin.flush()
    cpu_before = {label: cpu_seconds(pid) for label, pid in watch}
    threads_before = thread_cpu_seconds(watch)
    started = time.monotonic()
    first = load.stdout.readline().decode()  # the fixed step's line, when it is over
    fixed = parse_steps(first)
    fixed_cpu_s = sum(cpu_seconds(pid) - cpu_before[label] for label, pid in watch
                      if os.path.exists(f"/proc/{pid}"))
    threads_after = thread_cpu_seconds(watch)
    out = first + load.stdout.read().decode()
    elapsed = time.monotonic() - started
    cpu = {label: 100 * (cpu_seconds(pid) - cpu_before[label]) / elapsed
           for label, pid in watch if os.path.exists(f"/proc/{pid}")}
    if fixed and fixed[0].get("received"):
        cpu["us_per_msg_fixed"] = fixed_cpu_s * 1e6 / fixed[0]["received"]
        per_thread = []
        for key, (thread, seconds) in sorted(threads_after.items()):
            if key in threads_before:
                us = (seconds - threads_before[key][1]) * 1e6 / fixed[0]["received"]
                if us >= 0.5:  # idle threads (ZeroMQ's reaper, timers) left out
                    per_thread.append(f"{key[0]}/{thread}={us:.1f}")
        cpu["us_per_msg_fixed_threads"] = " ".join(per_thread)
    load.wait(60)
    procs.procs.remove(load)
    with open(os.path.join(LOGS, f"wsload-fanout-{name}.out"), "w") as saved:
        saved.write(line + out)
    steps = parse_steps(out)
    best = [{k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", l)}
            for l in out.splitlines() if l.startswith("search_best")]
    if not steps or (not best and not os.environ.get("PARLEY_BENCH_GW_NO_SEARCH")):
        raise SystemExit(f"bench-gateway: {name}: no results (see {LOGS})")
    return steps, best, cpu


def parley(procs, figures):
    ports = dict(zip(["req", "ein", "eout", "stats", "redis", "dynamo", "gateway"],
                     free_ports(7)))
    env = {
        "PARLEY_BROKER_ENDPOINT": f"tcp://127.0.0.1:{ports['req']}",
        "PARLEY_BROKER_EVENTS_IN": f"tcp://127.0.0.1:{ports['ein']}",
        "PARLEY_BROKER_EVENTS_OUT": f"tcp://127.0.0.1:{ports['eout']}",
        "PARLEY_BROKER_STATS_ADDRESS": f"127.0.0.1:{ports['stats']}",
        "PARLEY_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "PARLEY_DYNAMO_ENDPOINT": f"http://127.0.0.1:{ports['dynamo']}",
        "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "PARLEY_SECRETS_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PARLEY_LOG_LEVEL": "warn",
    }
    os.environ.update(env)
    procs.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(ports["redis"]),
                          "--save", "", "--appendonly", "no"])
    procs.start("dynalite", [os.path.join(ROOT, "node_modules", ".bin", "dynalite"), "--host",
                             "127.0.0.1", "--port", str(ports["dynamo"]), "--createTableMs", "0"])
    sandbox = JiraSandbox(LOGS).start()
    broker = procs.start("broker", [os.path.join(BIN, "parley-broker")])
    wait_port(ports["redis"], "redis")
    wait_port(ports["dynamo"], "dynalite")
    subprocess.run([os.path.join(BIN, "parleyctl"), "init"], check=True,
                   stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{ports['gateway']}"
    jira_env = {"PARLEY_APP_BASE_URL": base, "PARLEY_JIRA_ALLOW_HTTP": "1",
                "PARLEY_CONNECT_INSTALL_KEYS_URL":
                f"{sandbox.url}/_sandbox/connect-install-keys",
                "PARLEY_WORKER_CAPACITY": "2000", "PARLEY_JIRA_TENANT_CONCURRENCY": "32"}
    jira = procs.start("jira", [os.path.join(BIN, "parley-jira")], env=jira_env)
    presence = procs.start("presence", [os.path.join(BIN, "parley-presence")])
    gateway = procs.start("gateway", [os.path.join(BIN, "parley-gateway")], env={
        "PARLEY_GATEWAY_PORT": str(ports["gateway"]), "PARLEY_APP_BASE_URL": base,
        "PARLEY_GATEWAY_MAX_CONNECTIONS": "19990", "PARLEY_GATEWAY_RATE_PER_S": "1000",
        "PARLEY_GATEWAY_RATE_BURST": "1000", "PARLEY_GATEWAY_REQUEST_TIMEOUT_MS": "60000",
        "PARLEY_GATEWAY_OUTBOX_MAX": "4096"})
    wait_port(ports["gateway"], "the gateway")
    install = sandbox.install(f"{base}/atlassian-connect.json")
    tenant, shared = install["clientKey"], install["sharedSecret"]
    ctl_env = dict(os.environ, SIGNING=PROJECT_KEY)
    for args in (["project", "set", "--tenant", tenant, "--project", TENANT_PROJECT,
                  "--issue-type", "Support", "--secret-key-env", "SIGNING", "--visibility",
                  "always"],
                 ["agent", "set", "--tenant", tenant, "--account", AGENT, "--projects",
                  TENANT_PROJECT]):
        subprocess.run([os.path.join(BIN, "parleyctl"), *args], env=ctl_env, check=True,
                       stdout=subprocess.DEVNULL)
    auth = ["--tenant", tenant, "--project", TENANT_PROJECT, "--project-key", PROJECT_KEY,
            "--tenant-secret", shared, "--agent", AGENT]

    per_socket, ready = run_idle(procs, "parley", gateway.pid, ports["gateway"], "parley", auth)
    figures["idle_socket_bytes"] = round(per_socket)
    figures["idle_sockets"] = ready
    time.sleep(5)  # presence closes the idle sockets meanwhile: not the fan-out's cost

    def replicas():
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ports['stats']}/stats",
                                                 timeout=2))
        return stats["services"].get("jira", {}).get("replicas", 0)

    def wait_replicas(count):
        deadline = time.monotonic() + 20
        while replicas() != count:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench-gateway: jira replicas never became {count}")
            time.sleep(0.1)

    def swap_to_sink():
        procs.stop(jira)
        wait_replicas(0)
        sink = procs.start("jira-sink", [os.path.join(BIN, "parley-bench"), "jira-sink"],
                           env={"PARLEY_WORKER_CAPACITY": "4096"})
        wait_replicas(1)
        watch.append(("sink", sink.pid))

    watch = [("gateway", gateway.pid), ("presence", presence.pid), ("broker", broker.pid)]
    steps, best, cpu = run_fanout(procs, "parley", ports["gateway"], "parley", auth,
                                  before_go=swap_to_sink, watch=watch)
    sandbox.stop()
    return steps, best, cpu


def relay(procs, name, argv):
    port = free_ports(1)[0]
    server = procs.start(name, [*argv, "--port", str(port)], stdout=subprocess.PIPE)
    line = server.stdout.readline().decode()
    if "listening" not in line:
        raise SystemExit(f"bench-gateway: {name} said {line!r}")
    say(f"{name}: {line.strip()}")
    per_socket, _ = run_idle(procs, name, server.pid, port, "relay", [])
    steps, best, cpu = run_fanout(procs, name, port, "relay", [], watch=[(name, server.pid)])
    procs.stop(server)
    return per_socket, steps, best, cpu


def summarize(name, prefix, steps, best, cpu, figures):
    fixed = [s for s in steps if int(s["rate"]) == FIXED_RATE][:1]
    rates = [b["rate"] for b in best]
    if rates:  # none when PARLEY_BENCH_GW_NO_SEARCH (profiling runs: the fixed step only)
        figures[f"{prefix}_msgs_per_s"] = round(statistics.median(rates))
        figures[f"{prefix}_msgs_per_s_rounds"] = " ".join(str(round(r)) for r in rates)
    if fixed:
        figures[f"{prefix}_p50_ms_at_20k"] = round(fixed[0]["p50_ms"], 2)
        figures[f"{prefix}_p99_ms_at_20k"] = round(fixed[0]["p99_ms"], 2)
        figures[f"{prefix}_wsload_cpu_pct_at_20k"] = round(fixed[0].get("cpu_pct", 0))
    top = max(steps, key=lambda s: s["rate"] if s.get("lost", 0) == 0 else 0)
    figures[f"{prefix}_wsload_cpu_pct_at_best"] = round(top.get("cpu_pct", 0))
    for label, value in cpu.items():
        if label == "us_per_msg_fixed":
            figures[f"{prefix}_cpu_us_per_msg_at_20k"] = round(value, 1)
        elif label == "us_per_msg_fixed_threads":
            figures[f"{prefix}_cpu_us_per_msg_at_20k_by_thread"] = value
        else:
            figures[f"{prefix}_cpu_{label}_pct"] = round(value)


def main():
    # every server and the load generator hold up to IDLE sockets: the hard limit for all
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < IDLE + 500:
        say(f"the open-file limit ({hard}) is below {IDLE} sockets + 500; set "
            "PARLEY_BENCH_GW_IDLE lower")
    os.makedirs(LOGS, exist_ok=True)
    for old in os.listdir(LOGS):
        os.remove(os.path.join(LOGS, old))
    figures = {}
    procs = Processes()
    try:
        if "parley" in SERVERS:
            steps, best, cpu = parley(procs, figures)
            summarize("parley", "fanout", steps, best, cpu, figures)
            procs.stop_all()
        if "node_ws" in SERVERS:
            per_socket, steps, best, cpu = relay(
                procs, "node_ws", ["node", os.path.join(ROOT, "bench", "relay", "relay_node.js")])
            figures["node_ws_idle_socket_bytes"] = round(per_socket)
            summarize("node_ws", "node_ws", steps, best, cpu, figures)
        if "bare_lws" in SERVERS:
            per_socket, steps, best, cpu = relay(
                procs, "bare_lws", [os.path.join(BIN, "parley-relay-lws")])
            figures["bare_lws_idle_socket_bytes"] = round(per_socket)
            summarize("bare_lws", "bare_lws", steps, best, cpu, figures)
    finally:
        procs.stop_all()
    if "fanout_msgs_per_s" in figures and "node_ws_msgs_per_s" in figures:
        figures["fanout_vs_node_ws"] = round(
            figures["fanout_msgs_per_s"] / figures["node_ws_msgs_per_s"], 3)
    if "fanout_msgs_per_s" in figures and "bare_lws_msgs_per_s" in figures:
        figures["fanout_vs_bare_lws"] = round(
            figures["fanout_msgs_per_s"] / figures["bare_lws_msgs_per_s"], 3)
    figures["fanout_rooms"] = ROOMS
    for name, value in figures.items():
        print(f"{name}: {value}", flush=True)


if __name__ == "__main__":
    main()
