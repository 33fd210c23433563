"""The compose files as operators get them: `docker-compose config` validates them with no
settings at all; only the gateway's port and the broker's stats port are published, on
127.0.0.1 by default; every service has a healthcheck, a restart policy and a stop grace
period, every worker deploy.replicas; and deploy/parley.env documents every variable the
processes read (their configuration tables, in C)."""
import os
import re
import subprocess

import yaml

from conftest import ROOT

COMPOSE = os.path.join(ROOT, "deploy", "docker-compose.yml")
WORKERS = ("jira", "presence", "echo")


def bare_config():
    """`docker-compose -f deploy/docker-compose.yml config` with none of compose.sh's
    settings in the environment: what an operator's first command sees."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "PARLEY_", "JIRA_SANDBOX_"))}
    done = subprocess.run(["docker-compose", "-f", COMPOSE, "config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_file_validates_and_publishes_only_gateway_and_stats_on_loopback():
    services = bare_config()["services"]
    assert {"redis", "dynamodb", "s3", "jira-sandbox", "broker", "gateway", "jira",
            "presence"} <= set(services)
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"gateway", "broker"}, published
    for name, ports in published.items():
        assert len(ports) == 1, ports
        port = ports[0]
        host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
        assert host_ip == "127.0.0.1", (name, port)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
        assert service.get("stop_grace_period"), name
    for name in WORKERS:
        assert services[name]["deploy"]["replicas"] >= 1, name
        assert "ports" not in services[name]
    images = {s["image"] for s in services.values()}
    assert all(s["build"]["args"]["BASE"] == "debian:bookworm-slim" for s in services.values())
    assert len(images) == 4, images  # parley, stores, jira sandbox, redis


def test_env_file_documents_every_variable_the_processes_read():
    names = set()
    for folder in ("common", "broker", "gateway", "workers", "parleyctl"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if f.endswith(".c"):
                    text = open(os.path.join(dirpath, f), encoding="utf-8").read()
                    names |= set(re.findall(r'CONFIG_[A-Z]+_OPTION\(\s*"([A-Z0-9_]+)"', text))
    assert len(names) > 50, names
    lines = open(os.path.join(ROOT, "deploy", "parley.env"), encoding="utf-8").read() \
        .splitlines()
    documented = {}
    for n, line in enumerate(lines):
        m = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=", line) or \
            re.match(r"^# \[[^\]]+\] ([A-Z][A-Z0-9_]+): ", line)
        if m:
            documented.setdefault(m.group(1), n)
    missing = sorted(names - set(documented))
    assert not missing, f"deploy/parley.env does not mention {missing}"
    for name in names:
        n = documented[name]
        # a comment right above it (several variables may share one)
        above = [line for line in lines[max(0, n - 6):n + 1] if line.startswith("# [")]
        assert above, f"{name} has no comment in deploy/parley.env"
