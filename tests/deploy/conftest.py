"""Fixtures for the deploy tests: the docker-compose stack (deploy/docker-compose.yml) that
`scripts/compose.sh test` brought up on podman, seeded with the demo tenant. The tests reach it
as an operator would: through the published ports on 127.0.0.1 (gateway, broker stats, and the
Jira sandbox's, which only the local stack publishes) and through docker-compose and podman
commands; never through a container's own address. compose.sh exports what they need (project
name, ports, DOCKER_HOST, COMPOSE_FILE, podman's configuration); without it they fail at once
and say how to run them."""
import asyncio
import json
import os
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NEEDED = ("COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "DOCKER_HOST", "CONTAINERS_CONF",
          "PARLEY_COMPOSE_GATEWAY_PORT", "PARLEY_COMPOSE_STATS_PORT", "PARLEY_COMPOSE_JIRA_PORT")


def run(argv, timeout=120, check=True):
    """Runs a command in the repository; returns its stdout. Raises AssertionError with its
    output when it fails and check is set."""
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert not check or done.returncode == 0, \
        f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def wait_for(predicate, timeout=30.0, what="condition", interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Stack:
    """The running compose project."""

    def __init__(self):
        missing = [name for name in NEEDED if not os.environ.get(name)]
        if missing:
            pytest.fail(f"run these through `scripts/compose.sh test` (missing {missing})")
        self.project = os.environ["COMPOSE_PROJECT_NAME"]
        self.base = f"http://127.0.0.1:{os.environ['PARLEY_COMPOSE_GATEWAY_PORT']}"
        self.ws_url = f"ws://127.0.0.1:{os.environ['PARLEY_COMPOSE_GATEWAY_PORT']}/ws"
        self.stats_url = f"http://127.0.0.1:{os.environ['PARLEY_COMPOSE_STATS_PORT']}"
        self.jira_url = f"http://127.0.0.1:{os.environ['PARLEY_COMPOSE_JIRA_PORT']}"

    # --- docker-compose and podman

    def compose(self, *args, timeout=180):
        return run(["docker-compose", *args], timeout=timeout)

    def podman(self, *args, timeout=60, check=True):
        return run(["podman", *args], timeout=timeout, check=check)

    def containers(self, service=None, all_states=False):
        """This project's containers (of one service): [{name, id, state, hostname}]."""
        argv = ["ps", "--format", "json", "--filter",
                f"label=com.docker.compose.project={self.project}"]
        if service:
            argv += ["--filter", f"label=com.docker.compose.service={service}"]
        if all_states:
            argv.append("--all")
        listed = json.loads(self.podman(*argv) or "[]")
        result = []
        for c in listed:
            inspect = json.loads(self.podman("inspect", c["Id"]))[0]
            result.append({"name": c["Names"][0], "id": c["Id"], "state": c["State"],
                           "hostname": inspect["Config"]["Hostname"],
                           "exit_code": inspect["State"]["ExitCode"]})
        return result

    def ctl(self, *args):
        """parleyctl ARGS in the first jira container; its stdout, stripped."""
        return self.compose("exec", "-T", "jira", "parleyctl", *args, timeout=60).strip()

    # --- published ports

    @staticmethod
    def http_json(url, body=None, method=None, timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method or
                                         ("POST" if data is not None else "GET"),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def stats(self):
        return self.http_json(f"{self.stats_url}/stats")

    def jira_workers(self):
        return self.stats()["services"].get("jira", {}).get("workers", [])

    def sandbox(self, path, body=None, method=None):
        """The Jira sandbox's control API: /_sandbox/<path>."""
        return self.http_json(f"{self.jira_url}/_sandbox/{path}", body, method)

    def comments(self, issue):
        found = [i for i in self.sandbox("issues") if i["key"] == issue]
        assert found, f"{issue} is not in the Jira sandbox"
        return [c["text"] for c in found[0]["comments"]]

    def customer_token(self, email, name):
        return self.ctl("token", "customer", "--tenant", "demo", "--project", "SUP",
                        "--email", email, "--name", name, "--ttl-s", "3600")

    def agent_token(self):
        return self.ctl("token", "agent", "--tenant", "demo", "--account", "demo-agent",
                        "--ttl-s", "3600")


@pytest.fixture(scope="session")
def stack():
    return Stack()


async def expect(ws, type_, timeout=20, **match):
    """The next frame of type_ whose fields include match (frames of other types are
    skipped). An error frame answering the same id fails at once."""
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items()):
            return frame
        if frame.get("type") == "error" and type_ != "error" and "id" in match and \
                frame.get("id") == match["id"]:
            raise AssertionError(f"error instead of {type_}: {frame}")
