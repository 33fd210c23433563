"""Availability through the presence worker: an agent online AND inside their schedule, the four
widget visibility modes, presence.availability events on project.<tenant>.<project> when it
changes (also at schedule boundaries, with nobody coming or going), and DST transitions at the
presence level. Configuration is seeded with parleyctl into real dynalite (behind the SigV4
proxy); presence reads it through its Redis cache."""
import calendar
import datetime
import os
import subprocess
import time

import msgpack
import pytest
import zmq

from conftest import BIN, wait_for
from test_parleyctl import KEY
from test_presence import PresenceClient


def ctl(proxy, *args):
    env = dict(os.environ, **proxy.env, PARLEY_SECRETS_KEY=KEY, SIGNING="widget-signing-key")
    done = subprocess.run([os.path.join(BIN, "parleyctl"), *args], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def project(proxy, key, visibility, schedule=None):
    args = ["project", "set", "--tenant", "acme", "--project", key, "--issue-type", "Chat",
            "--secret-key-env", "SIGNING", "--visibility", visibility]
    if schedule is not None:
        args += ["--schedule", schedule]
    ctl(proxy, *args)


def agent(proxy, account, projects, schedule=None):
    args = ["agent", "set", "--tenant", "acme", "--account", account, "--projects", projects]
    if schedule is not None:
        args += ["--schedule", schedule]
    ctl(proxy, *args)


class Presence:
    """Broker + one presence replica, a client speaking to it and a subscriber on the
    project topics of tenant acme."""

    def __init__(self, cluster_factory, redis_server, proxy, **env):
        full = dict(redis_server.env, **proxy.env, PARLEY_CONFIG_CACHE_TTL_S=1,
                    PARLEY_PRESENCE_AVAILABILITY_RECHECK_S=2, **env)
        self.cluster = cluster_factory(**full)
        self.cluster.start_broker()
        self.cluster.spawn("presence", "parley-presence")
        wait_for(lambda: self.cluster.replicas("presence") == 1, what="presence ready")
        self.client = PresenceClient(self.cluster.endpoint)
        self.sub = zmq.Context.instance().socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.connect(self.cluster.env["PARLEY_BROKER_EVENTS_OUT"])
        self.sub.setsockopt(zmq.SUBSCRIBE, b"project.acme.")
        time.sleep(0.5)  # the subscription travels to the publishers

    def ask(self, project_key, zone=None):
        body = {"tenant": "acme", "project": project_key}
        if zone:
            body["zone"] = zone
        return self.client.call("presence.availability", body)

    def open_agent(self, socket, account, projects):
        done = self.client.call("presence.open", {
            "tenant": "acme", "socket": socket, "gateway": "g", "kind": "agent",
            "account": account, "projects": projects})
        assert done == {"updated": 1}, done

    def close(self, socket):
        self.client.call("presence.close", {"tenant": "acme", "socket": socket, "gateway": "g"})

    def event(self, timeout_s=5.0):
        assert self.sub.poll(int(timeout_s * 1000)), "no event"
        topic, header, payload = self.sub.recv_multipart()
        assert msgpack.unpackb(header)["type"] == "presence.availability"
        body = msgpack.unpackb(payload)
        assert topic == f"project.acme.{body['project']}".encode()
        return body

    def no_event(self, timeout_s=0.7):
        if self.sub.poll(int(timeout_s * 1000)):
            raise AssertionError(f"unexpected event {self.sub.recv_multipart()}")

    def stop(self):
        self.client.close()
        self.sub.close()


@pytest.fixture
def presence_factory(cluster_factory, redis_server, dynamo_proxy):
    made = []

    def make(**env):
        p = Presence(cluster_factory, redis_server, dynamo_proxy, **env)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def test_available_means_an_agent_online_inside_their_schedule(presence_factory, dynamo_proxy):
    ctl(dynamo_proxy, "init")
    project(dynamo_proxy, "SUP", "when_online")
    agent(dynamo_proxy, "always-on", "SUP", "UTC|mon-sun 00:00-24:00")
    agent(dynamo_proxy, "never-on", "SUP", "UTC|")
    p = presence_factory()

    first = p.ask("SUP")
    assert first == {"tenant": "acme", "project": "SUP", "available": False, "agents_online": 0,
                     "visibility": "when_online", "visible": False}
    assert p.event()["available"] is False  # the first evaluation of a project is news

    p.open_agent("n1", "never-on", ["SUP"])  # online, but outside their schedule
    p.no_event()
    answer = p.ask("SUP")
    assert answer["available"] is False and answer["agents_online"] == 1

    p.open_agent("a1", "always-on", ["SUP"])
    event = p.event()
    assert event["available"] is True and event["visible"] is True
    assert event["agents_online"] == 2

    p.open_agent("a2", "always-on", ["SUP"])  # a second socket of the same agent: no change
    p.no_event()
    p.close("a1")
    p.no_event()  # the agent still has a socket open
    p.close("a2")
    event = p.event()
    assert event["available"] is False and event["visible"] is False
    assert event["agents_online"] == 1

    # an agent Parley has no configuration for counts whenever online
    p.open_agent("u1", "unknown-agent", ["SUP"])
    assert p.event()["available"] is True

    def counters():
        return p.cluster.stats()["services"]["presence"]["workers"][0]["counters"]
    wait_for(lambda: counters().get("availability_events") == 4, what="counters in heartbeats")
    assert counters()["availability_errors"] == 0


def _utc_window_around_now():
    """Weekly hours, every day, from one hour before to two hours after now (UTC wall clock)."""
    hour = time.gmtime().tm_hour
    return f"mon-sun {(hour - 1) % 24:02d}:00-{(hour + 2) % 24:02d}:00"


def test_the_four_visibility_modes(presence_factory, dynamo_proxy):
    ctl(dynamo_proxy, "init")
    window = _utc_window_around_now()
    project(dynamo_proxy, "ALW", "always")
    project(dynamo_proxy, "OPEN", "schedule", f"UTC|{window}")
    project(dynamo_proxy, "SHUT", "schedule", "UTC|")
    project(dynamo_proxy, "LOCAL", "customer_local", f"Europe/London|{window}")
    project(dynamo_proxy, "ONL", "when_online")
    p = presence_factory()

    assert p.ask("ALW")["visible"] is True
    opened = p.ask("OPEN")
    assert opened["visible"] is True and opened["available"] is False
    assert opened["next_change_ms"] > time.time() * 1000  # when the window closes
    assert p.ask("SHUT")["visible"] is False
    assert p.ask("ONL")["visible"] is False
    # customer_local: the same weekly hours, in the customer's own zone
    assert p.ask("LOCAL", zone="UTC")["visible"] is True
    assert p.ask("LOCAL", zone="Etc/GMT+12")["visible"] is False  # 12 hours behind UTC
    assert "visible" not in p.ask("LOCAL")  # depends on the customer: not said without a zone
    refused = p.ask("LOCAL", zone="Mars/Olympus_Mons")
    assert refused["error"] == "bad_request" and "zone" in refused["message"]
    refused = p.ask("LOCAL", zone="../../etc/passwd")
    assert refused["error"] == "bad_request"
    # a project without chat configuration behaves as when_online
    assert p.ask("NOPE")["visibility"] == "when_online"


def _epoch(text):
    return calendar.timegm(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timetuple())


@pytest.mark.parametrize("boundary,schedule,opens", [
    # spring forward: 02:00 EST becomes 03:00 EDT at 07:00 UTC; a fixed -5 h offset would
    # open an hour late, at 08:00 UTC
    ("2026-03-08T07:00:00Z", "America/New_York|sun 03:00-05:00", True),
    # fall back: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:00-01:30 happens twice and is
    # open both times, so it opens again at 06:00 UTC
    ("2026-11-01T06:00:00Z", "America/New_York|sun 01:00-01:30", True),
    # Berlin's last Sunday of March: 02:00 CET becomes 03:00 CEST at 01:00 UTC; a schedule
    # ending at 02:30 (inside the gap) closes at the jump
    ("2026-03-29T01:00:00Z", "Europe/Berlin|sun 00:00-02:30", False),
])
def test_availability_changes_at_a_dst_boundary_with_nobody_coming_or_going(
        presence_factory, dynamo_proxy, boundary, schedule, opens):
    ctl(dynamo_proxy, "init")
    project(dynamo_proxy, "SUP", "when_online")
    agent(dynamo_proxy, "night-shift", "SUP", schedule)
    lead_s = 6
    offset = _epoch(boundary) - int(time.time()) - lead_s
    p = presence_factory(PARLEY_PRESENCE_SCHEDULE_CLOCK_OFFSET_S=offset)
    p.open_agent("s1", "night-shift", ["SUP"])
    assert p.event()["available"] is (not opens)  # the first evaluation, at the arrival
    before = p.ask("SUP")
    assert before["available"] is (not opens)
    # the boundary, told in the real clock: presence schedules its own re-evaluation there
    assert before["next_change_ms"] == (_epoch(boundary) - offset) * 1000
    event = p.event(timeout_s=lead_s + 4)
    assert event["available"] is opens
    assert abs(time.time() - (_epoch(boundary) - offset)) < 2.5


def test_a_project_of_many_agents_reads_their_schedules_in_a_batch(presence_factory,
                                                                   dynamo_proxy):
    """Evaluating a project reads the configuration of its online agents whose cached copy
    is old all at once (one MGET, then BatchGetItem, 100 a request), not with a GetItem each
    that the presence loop would wait for in turn; what it read is what a GetItem gives (the
    schedules decide, agents without an item count as always there)."""
    ctl(dynamo_proxy, "init")
    project(dynamo_proxy, "BIG", "when_online")
    for n in range(40):
        agent(dynamo_proxy, f"closed-{n}", "BIG", "UTC|")
    p = presence_factory()
    for n in range(40):
        p.open_agent(f"c{n}", f"closed-{n}", ["BIG"])
    time.sleep(1.5)  # every cached copy (1 s here) is old
    before = len(dynamo_proxy.operations())
    answer = p.ask("BIG")
    assert answer["available"] is False and answer["agents_online"] == 40, answer
    p.open_agent("x1", "no-item-at-all", ["BIG"])  # no schedule stored: counts as there
    assert p.ask("BIG")["available"] is True
    operations = dynamo_proxy.operations()[before:]
    assert "BatchGetItem" in operations, operations
    # at most the project's own item per evaluation, never one per agent
    assert operations.count("GetItem") <= operations.count("BatchGetItem") + 2, operations
