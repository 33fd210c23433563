"""The presence worker against real redis-server and dynalite (behind the SigV4-checking
proxy), read back with boto3 and a raw Redis client: write-behind coalescing, expiry of sockets
whose gateway died, Redis outages, bad requests."""
import json
import subprocess
import time

import boto3
import msgpack
import pytest

from conftest import BIN, wait_for
from peers import ERROR, REPLY, REQUEST, RawPeer


class PresenceClient:
    """Speaks to the presence service through the broker like a gateway would."""

    def __init__(self, endpoint):
        self.peer = RawPeer(endpoint)
        self.next_id = 0

    def call(self, type_, body, timeout_ms=5000):
        self.next_id += 1
        self.peer.send(REQUEST, {"id": self.next_id, "service": "presence", "type": type_,
                                 "timeout_ms": timeout_ms}, msgpack.packb(body))
        deadline = time.monotonic() + timeout_ms / 1000 + 2
        while time.monotonic() < deadline:
            answer = self.peer.recv(timeout_ms=500)
            if answer and answer[0] in (REPLY, ERROR) and answer[1].get("id") == self.next_id:
                command, header, payload = answer
                if command == REPLY:
                    return msgpack.unpackb(payload)
                return {"error": header["code"], "message": header.get("message", "")}
        raise AssertionError(f"no answer to {type_}")

    def close(self):
        self.peer.close()


@pytest.fixture
def stack(cluster_factory, redis_server, dynamo_proxy):
    """Broker + one presence replica on real Redis and (proxied) dynalite; 2 s flushes."""
    env = dict(redis_server.env, **dynamo_proxy.env, PARLEY_PRESENCE_FLUSH_MS=2000,
               PARLEY_PRESENCE_GRACE_MS=3000, PARLEY_PRESENCE_FLUSHER_LEASE_MS=3000)
    c = cluster_factory(**env)
    c.start_broker()
    c.presence = []
    c.start_presence = lambda: _start_presence(c)
    c.start_presence()
    c.redis = redis_server
    c.dynamo_proxy = dynamo_proxy
    c.client = PresenceClient(c.endpoint)
    yield c
    c.client.close()


def _start_presence(c):
    before = c.replicas("presence")
    p = c.spawn("presence", "parley-presence")
    c.presence.append(p)
    wait_for(lambda: c.replicas("presence") == before + 1, what="presence ready")
    return p


def dynamo(proxy):
    return boto3.client("dynamodb", endpoint_url=proxy.url, region_name=proxy.region,
                        aws_access_key_id=proxy.access_key, aws_secret_access_key=proxy.secret_key)


def rows(proxy, prefix):
    client = dynamo(proxy)
    items, start = [], None
    while True:
        kwargs = {"TableName": "parley"}
        if start:
            kwargs["ExclusiveStartKey"] = start
        try:
            page = client.scan(**kwargs)
        except client.exceptions.ResourceNotFoundException:
            return []  # the presence worker creates the table as it starts
        items += [i for i in page["Items"] if i["pk"]["S"].startswith(prefix)]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def counters(cluster):
    return cluster.stats()["services"]["presence"]["workers"][0]["counters"]


def test_sockets_and_agents_reach_dynamodb_as_redis_holds_them(stack):
    c = stack.client
    agent = {"tenant": "acme", "socket": "a1", "gateway": "g1", "kind": "agent",
             "account": "557058:agent-1", "projects": ["SUP", "HR"]}
    assert c.call("presence.open", agent) == {"updated": 1}
    assert c.call("presence.open", {"tenant": "acme", "socket": "c1", "gateway": "g1",
                                    "kind": "customer"}) == {"updated": 1}
    for _ in range(3):
        answer = c.call("presence.heartbeat", {"tenant": "acme", "gateway": "g1",
                                               "sockets": ["a1", "c1", "ghost"]})
        assert answer == {"updated": 2, "unknown": ["ghost"]}
    redis_last_seen = stack.redis.command("HGET", "sock|acme|c1", "last_seen_ms")

    def flushed():
        sockets = {r["sk"]["S"]: r for r in rows(stack.dynamo_proxy, "SOCKETS#acme#")}
        return ("SOCKET#g1#c1" in sockets and
                sockets["SOCKET#g1#c1"]["last_seen_ms"]["N"] == redis_last_seen.decode())
    wait_for(flushed, timeout=10, what="socket rows written behind")
    online = rows(stack.dynamo_proxy, "ONLINE#acme#")
    assert sorted(r["pk"]["S"] for r in online) == ["ONLINE#acme#HR", "ONLINE#acme#SUP"]
    assert stack.dynamo_proxy.rejected == 0 and stack.dynamo_proxy.accepted > 0

    assert c.call("presence.close", {"tenant": "acme", "socket": "a1", "gateway": "g1"}) == \
        {"updated": 1}
    wait_for(lambda: rows(stack.dynamo_proxy, "ONLINE#acme#") == [], timeout=10,
             what="agent offline rows deleted")
    closed = [r for r in rows(stack.dynamo_proxy, "SOCKETS#acme#")
              if r["sk"]["S"] == "SOCKET#g1#a1"]
    wait_for(lambda: [r for r in rows(stack.dynamo_proxy, "SOCKETS#acme#")
                      if r["sk"]["S"] == "SOCKET#g1#a1"][0]["state"]["S"] == "closed",
             timeout=10, what="closed state written")
    assert closed
    # an update that lands while its flush round is writing is dirty again and written by the
    # next round: the dirty set empties, but up to one flush interval after the row shows it
    wait_for(lambda: stack.redis.command("SCARD", "dirty") == 0, timeout=10,
             what="nothing left dirty")


def test_heartbeats_are_coalesced_into_one_write_per_socket_per_flush(stack):
    # 1,000 sockets heartbeating every second for 8 s, flushes every 2 s: at most one write per
    # socket per flush boundary crossed (5), not one per heartbeat (9).
    out = subprocess.run([f"{BIN}/presence-sim", "--sockets", "1000", "--agents", "10",
                          "--duration-ms", "8000", "--tenant", "sim"], env=stack.env,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    report = json.loads(out.stdout)
    assert report["opened"] == 1000 and report["heartbeats_acked"] == report["heartbeats_sent"]
    try:
        wait_for(lambda: stack.redis.command("SCARD", "dirty") == 0 and
                 counters(stack)["dirty_entries"] == 0, timeout=10, what="everything flushed")
    except AssertionError:
        raise AssertionError(f"dirty={stack.redis.command('SCARD', 'dirty')} "
                             f"counters={counters(stack)}")
    time.sleep(1.5)  # the counters ride in the next heartbeat
    c = counters(stack)
    entries = 1000 + 10
    assert c["rows_written"] <= entries * 6, c
    assert c["updates_received"] >= 1000 * 8
    assert c["flush_errors"] == 0
    # boto3 reads every socket with the last seen Redis holds
    sockets = rows(stack.dynamo_proxy, "SOCKETS#sim#")
    assert len(sockets) == 1000
    sample = sockets[0]
    socket_id = sample["sk"]["S"].split("#")[-1]
    assert sample["last_seen_ms"]["N"] == \
        stack.redis.command("HGET", f"sock|sim|{socket_id}", "last_seen_ms").decode()


def test_sockets_of_a_dead_gateway_expire_and_their_agent_goes_offline(stack):
    c = stack.client
    c.call("presence.open", {"tenant": "acme", "socket": "a9", "gateway": "dead-gw",
                             "kind": "agent", "account": "agent-9", "projects": ["SUP"]})
    assert stack.redis.command("ZSCORE", "online|acme|SUP", "agent-9") is not None
    # nobody heartbeats: after the 3 s grace the sweeper closes it
    wait_for(lambda: stack.redis.command("ZSCORE", "online|acme|SUP", "agent-9") is None,
             timeout=15, what="agent offline after grace")
    assert stack.redis.command("HGET", "sock|acme|a9", "state") == b"closed"
    wait_for(lambda: counters(stack)["sockets_expired"] >= 1, what="expiry counted")


def test_bad_requests_get_clear_errors(stack):
    c = stack.client
    assert c.call("presence.open", {"tenant": "acme"})["error"] == "bad_request"
    assert c.call("presence.open", {"tenant": "acme", "socket": "x|y", "gateway": "g",
                                    "kind": "customer"})["error"] == "bad_request"
    assert c.call("presence.open", {"tenant": "acme", "socket": "s", "gateway": "g",
                                    "kind": "robot"})["error"] == "bad_request"
    assert c.call("presence.open", {"tenant": "acme", "socket": "s", "gateway": "g",
                                    "kind": "agent"})["error"] == "bad_request"
    assert c.call("presence.heartbeat", {"tenant": "acme", "gateway": "g",
                                         "sockets": []})["error"] == "bad_request"
    assert c.call("presence.heartbeat", {"tenant": "acme", "gateway": "g",
                                         "sockets": ["s"] * 600})["error"] == "bad_request"
    assert c.call("presence.nope", {})["error"] == "unknown_type"
    assert c.call("presence.open", {"tenant": "acme", "socket": "ok", "gateway": "g",
                                    "kind": "customer"}) == {"updated": 1}


def test_redis_outage_answers_degraded_and_recovers(stack):
    c = stack.client
    stack.redis.stop()
    answer = c.call("presence.open", {"tenant": "acme", "socket": "r1", "gateway": "g",
                                      "kind": "customer"})
    assert answer["error"] == "degraded"
    stack.redis.start()
    # within Redis's backoff (at most 2 s) presence answers again
    wait_for(lambda: c.call("presence.open", {"tenant": "acme", "socket": "r1", "gateway": "g",
                                              "kind": "customer"}) == {"updated": 1},
             timeout=10, what="presence answers again")


def test_a_hung_redis_costs_a_timeout_per_backoff_not_one_per_request(stack):
    """Redis stops answering (SIGSTOP: the kernel still accepts connections): presence says
    `degraded` and keeps answering at once. The first request pays Redis's timeout (twice: a
    fresh connection is tried too); those within the backoff that follows fail without
    waiting, where each used to hold the worker, and every request queued behind it, for two
    timeouts. Once Redis answers again, so does presence."""
    c = stack.client
    beat = {"tenant": "acme", "gateway": "g", "sockets": ["h1"]}
    assert c.call("presence.open", {"tenant": "acme", "socket": "h1", "gateway": "g",
                                    "kind": "customer"}) == {"updated": 1}
    stack.redis.freeze()
    try:
        waits = []
        for _ in range(10):
            started = time.monotonic()
            assert c.call("presence.heartbeat", beat, timeout_ms=10000)["error"] == "degraded"
            waits.append(round(time.monotonic() - started, 2))
        # Redis's timeout is 1 s: ten requests that each waited for it twice took 20 s
        assert sum(1 for w in waits if w > 0.5) <= 4, waits
    finally:
        stack.redis.thaw()
    wait_for(lambda: c.call("presence.heartbeat", beat) == {"updated": 1},
             timeout=10, what="presence answers again")


def _final_states_match(stack, tenant, count):
    """Every socket's row in DynamoDB carries the last seen and state Redis holds."""
    sockets = {r["sk"]["S"].split("#")[-1]: r for r in rows(stack.dynamo_proxy,
                                                            f"SOCKETS#{tenant}#")}
    if len(sockets) != count:
        return False
    for socket_id, row in sockets.items():
        state = stack.redis.command("HMGET", f"sock|{tenant}|{socket_id}", "last_seen_ms",
                                    "state")
        if [row["last_seen_ms"]["N"].encode(), row["state"]["S"].encode()] != state:
            return False
    return True


def test_kill9_of_presence_in_the_middle_of_a_flush_loses_nothing(stack):
    sim = subprocess.run([f"{BIN}/presence-sim", "--sockets", "300", "--duration-ms", "1500",
                          "--tenant", "k9"], env=stack.env, capture_output=True, timeout=60)
    assert sim.returncode == 0
    # the next BatchWriteItem hangs in DynamoDB: the flusher is mid-flush when it dies
    stack.dynamo_proxy.delay_next(5.0, count=20, operation="BatchWriteItem")
    wait_for(lambda: any(r.operation == "BatchWriteItem" and r.outcome == "delayed"
                         for r in stack.dynamo_proxy.records) or
             int(stack.redis.command("HLEN", "flushing|" + counters_instance(stack)) or 0) > 0,
             timeout=10, what="a flush in progress")
    victim = stack.presence[0]
    victim.kill9()
    held = stack.redis.command("HLEN", "flushing|" + counters_instance(stack))
    stack.dynamo_proxy.clear_faults()
    stack.start_presence()  # a new replica takes the dead one's entries back after the lease
    wait_for(lambda: _final_states_match(stack, "k9", 300), timeout=30,
             what="every socket's final state in DynamoDB")
    assert stack.redis.command("SCARD", "dirty") == 0
    assert held is not None


def counters_instance(stack):
    workers = stack.stats()["services"]["presence"]["workers"]
    return workers[0]["instance"] if workers else ""


def test_dynamodb_outage_of_20s_ends_with_every_final_state_written(cluster_factory,
                                                                    redis_server,
                                                                    dynalite_factory, tmp_path):
    from stores import SigV4Proxy
    dynalite = dynalite_factory(path=str(tmp_path / "leveldb"))
    proxy = SigV4Proxy(dynalite.url).start()
    try:
        env = dict(redis_server.env, **proxy.env, PARLEY_PRESENCE_FLUSH_MS=2000,
                   PARLEY_PRESENCE_GRACE_MS=60000)
        c = cluster_factory(**env)
        c.start_broker()
        c.presence = []
        _start_presence(c)
        c.redis, c.dynamo_proxy = redis_server, proxy
        sim = subprocess.Popen([f"{BIN}/presence-sim", "--sockets", "200", "--duration-ms",
                                "26000", "--tenant", "out"], env=c.env, stdout=subprocess.PIPE)
        time.sleep(3)
        dynalite.stop()
        time.sleep(20)
        dynalite.start()
        assert sim.wait(timeout=60) == 0
        wait_for(lambda: _final_states_match(c, "out", 200), timeout=40,
                 what="final states after the outage")
        assert counters(c)["flush_errors"] > 0  # the outage was seen, and survived
    finally:
        proxy.stop()


def test_first_agent_online_and_last_agent_offline_are_announced_on_the_project_topic(stack):
    """(Schedules and visibility modes: test_presence_availability.py.)"""
    import zmq
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(stack.env["PARLEY_BROKER_EVENTS_OUT"])
    sub.setsockopt(zmq.SUBSCRIBE, b"project.acme.")
    time.sleep(0.5)  # the subscription travels to the publishers
    c = stack.client

    def open_agent(socket, account):
        c.call("presence.open", {"tenant": "acme", "socket": socket, "gateway": "g",
                                 "kind": "agent", "account": account, "projects": ["SUP"]})

    def next_event():
        assert sub.poll(5000), "no event"
        topic, header, payload = sub.recv_multipart()
        return topic, msgpack.unpackb(header)["type"], msgpack.unpackb(payload)

    open_agent("e1", "agent-1")
    assert next_event() == (b"project.acme.SUP", "presence.availability",
                            {"tenant": "acme", "project": "SUP", "available": True,
                             "agents_online": 1, "visibility": "when_online", "visible": True})
    open_agent("e2", "agent-2")  # not the first: no event
    c.call("presence.close", {"tenant": "acme", "socket": "e1", "gateway": "g"})
    assert not sub.poll(500), "an agent is still online: no event"
    c.call("presence.close", {"tenant": "acme", "socket": "e2", "gateway": "g"})
    assert next_event()[2]["available"] is False
    sub.close()
