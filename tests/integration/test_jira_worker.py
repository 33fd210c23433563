"""The jira worker through the broker (a test client speaking the internal protocol, as a
gateway would) against the Jira sandbox, with real Redis and dynalite: identities, a
conversation per issue, a comment per message in send order and exactly once (3 replicas,
429s, 500s, lost answers, a replica killed), transcripts read back from Jira, and contract
checks of every request the worker sent against the official OpenAPI document."""
import os
import random
import subprocess
import time

import pytest

from conftest import BIN, wait_for
from peers import ServiceClient
from sandboxes import DEFAULT_API_USER, JiraSandbox
from test_parleyctl import KEY

TENANT = "acme"


def ctl(proxy, *args, **env):
    full = dict(os.environ, **proxy.env, PARLEY_SECRETS_KEY=KEY, **env)
    done = subprocess.run([os.path.join(BIN, "parleyctl"), *args], env=full,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


class JiraStack:
    def __init__(self, cluster_factory, redis_server, proxy, sandbox):
        self.sandbox = sandbox
        self.redis = redis_server
        self.proxy = proxy
        ctl(proxy, "init")
        ctl(proxy, "tenant", "set", "--id", TENANT, "--base-url", sandbox.url, "--auth", "token",
            "--api-user", DEFAULT_API_USER[0], "--api-token-env", "TOKEN",
            TOKEN=DEFAULT_API_USER[1])
        ctl(proxy, "project", "set", "--tenant", TENANT, "--project", "SUP", "--issue-type",
            "Support", "--secret-key-env", "SIGNING", "--visibility", "always",
            SIGNING="widget-key")
        self.cluster = cluster_factory(**redis_server.env, **proxy.env, PARLEY_SECRETS_KEY=KEY,
                                       PARLEY_JIRA_ALLOW_HTTP=1, PARLEY_JIRA_RETRY_BASE_MS=50,
                                       PARLEY_JIRA_RETRY_MAX_MS=400)
        self.cluster.start_broker()
        self.replicas = []
        self.client = ServiceClient(self.cluster.endpoint)

    def start_jira(self, count=1, **env):
        before = self.cluster.replicas("jira")
        for _ in range(count):
            self.replicas.append(self.cluster.spawn("jira", "parley-jira", **env))
        wait_for(lambda: self.cluster.replicas("jira") == before + count, what="jira ready")

    def call(self, type_, body, **kw):
        return self.client.call("jira", type_, body, **kw)

    def customer(self, email="ada@example.com", name="Ada Lovelace"):
        answer = self.call("jira.identity", {"tenant": TENANT, "email": email,
                                             "display_name": name})
        assert "account" in answer, answer
        return answer["account"]

    def start_conversation(self, conversation, customer, text="Hello, my order is late"):
        answer = self.call("conversation.start", {
            "tenant": TENANT, "project": "SUP", "conversation": conversation,
            "customer": customer, "first_message": text})
        assert "issue" in answer, answer
        return answer

    def counters(self):
        total = {}
        for worker in self.cluster.stats()["services"]["jira"]["workers"]:
            for name, value in worker["counters"].items():
                total[name] = total.get(name, 0) + value
        return total


@pytest.fixture
def jira(cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    stack = JiraStack(cluster_factory, redis_server, dynamo_proxy, jira_sandbox)
    yield stack
    stack.client.close()


def message(issue, n, text, author_kind="customer", author="someone", conversation="c"):
    return {"tenant": TENANT, "issue": issue, "message": f"{conversation}-m{n}",
            "author_kind": author_kind, "author": author, "text": text}


def comments_text(sandbox, key):
    return [c["text"] for c in sandbox.issue(key)["comments"]]


def test_identity_conversation_messages_and_transcript(jira):
    jira.start_jira(1)
    account = jira.customer()
    assert jira.customer() == account  # the mapping is kept: the same account again
    user = jira.sandbox.user_by_email("ada@example.com")
    assert user and user["accountId"] == account

    started = jira.start_conversation("conv-1", account, "Hello!\nMy order #42 is late")
    assert started["created"] is True
    again = jira.start_conversation("conv-1", account)
    assert again == dict(started, created=False)  # the same issue, not a second one
    key = started["issue"]
    issue = jira.sandbox.issue(key)
    assert issue["summary"] == "Hello!" and issue["reporter"] == account

    texts = ["Hello!\nMy order #42 is late", "It was due Monday", "Ünïcödé ✓ and emoji 🎉",
             "line one\nline two\n\nsecond paragraph"]
    for n, text in enumerate(texts):
        answer = jira.call("conversation.message", message(key, n, text, author=account))
        assert answer["duplicate"] is False and answer["issue"] == key, answer
    resent = jira.call("conversation.message", message(key, 1, texts[1], author=account))
    assert resent["duplicate"] is True  # the same message id: no second comment
    assert comments_text(jira.sandbox, key) == texts

    agent = jira.call("conversation.message", message(key, 9, "We are on it", "agent",
                                                      "agent-7"))
    transcript = jira.call("conversation.transcript", {"tenant": TENANT, "issue": key})
    import json
    messages = json.loads(transcript["messages"])
    assert [m["text"] for m in messages] == texts + ["We are on it"]
    assert messages[-1]["author_kind"] == "agent" and messages[-1]["author"] == "agent-7"
    assert messages[0]["message"] == "c-m0" and transcript["more"] is False
    later = jira.call("conversation.transcript", {"tenant": TENANT, "issue": key,
                                                  "after_comment": messages[1]["comment"]})
    assert [m["text"] for m in json.loads(later["messages"])] == texts[2:] + ["We are on it"]
    assert agent["comment"] == messages[-1]["comment"]
    # a part: the oldest `limit` after the comment (read back from the newest), then `more`
    part = jira.call("conversation.transcript", {"tenant": TENANT, "issue": key, "limit": 2,
                                                 "after_comment": messages[0]["comment"]})
    assert [m["text"] for m in json.loads(part["messages"])] == texts[1:3] and part["more"]
    rest = jira.call("conversation.transcript", {"tenant": TENANT, "issue": key, "limit": 2,
                                                 "after_comment": messages[2]["comment"]})
    assert [m["text"] for m in json.loads(rest["messages"])] == texts[3:] + ["We are on it"]
    assert rest["more"] is False
    first = jira.call("conversation.transcript", {"tenant": TENANT, "issue": key, "limit": 2})
    assert [m["text"] for m in json.loads(first["messages"])] == texts[:2] and first["more"]


def _send_conversations(jira, conversations, per_conversation, rng):
    """Sends every message of every conversation at once, interleaved, each conversation's in
    order under its order key. Returns {issue: [texts in send order]} and the answers."""
    account = jira.customer()
    issues = {}
    for c in range(conversations):
        issues[jira.start_conversation(f"load-{c}", account)["issue"]] = []
    ids = []
    order = [(key, n) for n in range(per_conversation) for key in issues]
    for key, n in order:
        text = f"{key} message {n} " + "x" * rng.randint(0, 40)
        issues[key].append(text)
        ids.append(jira.client.send("jira", "conversation.message",
                                    message(key, n, text, conversation=key),
                                    timeout_ms=60000, order_key=f"{TENANT}.{key}"))
    return issues, ids


def test_200_messages_over_10_conversations_with_3_replicas_land_in_order(jira):
    jira.start_jira(3)
    issues, ids = _send_conversations(jira, 10, 20, random.Random(1))
    answers = jira.client.collect(ids, timeout_s=120)
    assert all("comment" in a for a in answers.values()), \
        [a for a in answers.values() if "comment" not in a][:5]
    total = 0
    for key, texts in issues.items():
        assert comments_text(jira.sandbox, key) == texts, key
        total += len(texts)
    assert total == 200
    spread = [w["requests_done"] for w in jira.cluster.stats()["services"]["jira"]["workers"]]
    assert len(spread) == 3 and all(n > 0 for n in spread), spread
    _assert_contract(jira.sandbox)


def test_exactly_once_in_order_through_429s_500s_lost_answers_and_a_replica_killed(jira):
    jira.start_jira(3)
    jira.sandbox.add_faults(
        {"match": {"method": "POST", "path_regex": "/comment$"}, "action": "status",
         "status": 429, "retry_after_s": 1, "times": -1, "probability": 0.08},
        {"match": {"method": "POST", "path_regex": "/comment$"}, "action": "status",
         "status": 500, "times": -1, "probability": 0.08},
        {"match": {"method": "POST", "path_regex": "/comment$"}, "action": "status",
         "status": 503, "after": True, "times": -1, "probability": 0.05},
        {"match": {"method": "GET", "path_regex": "/comment"}, "action": "status",
         "status": 500, "times": -1, "probability": 0.1})
    issues, ids = _send_conversations(jira, 10, 20, random.Random(2))
    wait_for(lambda: jira.counters().get("messages_written", 0) +
             jira.counters().get("duplicates", 0) >= 40, timeout=60, what="traffic")
    jira.replicas[0].kill9()
    answers = jira.client.collect(ids, timeout_s=240)
    failed = [a for a in answers.values() if "comment" not in a]
    assert not failed, failed[:5]
    for key, texts in issues.items():
        assert comments_text(jira.sandbox, key) == texts, key  # in order, none twice
    stats = jira.cluster.stats()["services"]["jira"]
    counters = jira.counters()
    assert counters["jira_throttled"] > 0 and counters["jira_errors_5xx"] > 0, counters
    assert counters["lookups"] > 0, counters  # lost answers were looked up, not rewritten
    assert stats["redispatches"] >= 1 or counters.get("duplicates", 0) >= 0
    jira.sandbox.clear_faults()
    _assert_contract(jira.sandbox)


def test_bad_requests_and_unknown_things_get_clear_errors(jira):
    jira.start_jira(1)
    assert jira.call("conversation.message", {"tenant": TENANT})["error"] == "bad_request"
    bad_kind = dict(message("SUP-1", 0, "hi"), author_kind="robot")
    assert jira.call("conversation.message", bad_kind)["error"] == "bad_request"
    empty = message("SUP-1", 0, "")
    assert jira.call("conversation.message", empty)["error"] == "bad_request"
    nope = jira.call("conversation.message", message("SUP-999", 0, "hello"))
    assert nope["error"] == "not_found", nope
    other = jira.call("conversation.message", dict(message("SUP-1", 0, "hi"), tenant="nobody"))
    assert other["error"] == "unknown_tenant"
    assert jira.call("jira.identity", {"tenant": TENANT, "email": "not-an-email"})["error"] == \
        "bad_request"
    jira.sandbox.add_faults({"match": {"path_regex": "/comment"}, "action": "status",
                             "status": 503, "times": -1})
    account = jira.customer("bob@example.com")
    key = jira.start_conversation("conv-x", account)["issue"]
    gave_up = jira.call("conversation.message", message(key, 0, "hello"), timeout_ms=3000)
    assert gave_up["error"] in ("jira_unavailable", "timeout"), gave_up
    jira.sandbox.clear_faults()
    # the same message again, once Jira is back: written once
    assert jira.call("conversation.message", message(key, 0, "hello"))["comment"]
    assert comments_text(jira.sandbox, key) == ["hello"]
    assert jira.replicas[0].alive()


def _assert_contract(sandbox):
    """Every request the worker sent validated against the official OpenAPI document: the
    sandbox checked each on arrival (400 otherwise), and each recorded JSON body is checked
    again here against the spec's request schema; every reply validated against the
    response schema for its status."""
    records = sandbox.requests(bodies=True)
    invalid = [r for r in records["records"] if r.get("valid") is False]
    assert not invalid, invalid[:5]
    # and every answer the sandbox gave validated against the spec's response schemas
    bad_answers = [r for r in records["records"] if r.get("response_errors")]
    assert not bad_answers, bad_answers[:5]
    spec = JiraSandbox.spec()
    bodies = records["bodies"]
    checked = 0
    for item in bodies:
        matched = spec.match(item["path"])
        if not matched:  # e.g. the service desk API, which the platform document lacks
            continue
        template = matched[0]
        op = spec.operation(template, item["method"].lower())
        if op is None or item.get("body") is None:
            continue
        assert not spec.validate_request_body(op, "application/json", item["body"]), item["path"]
        checked += 1
    assert checked > 0


def test_message_text_is_kept_only_in_jira(jira):
    """The data promise: after conversations, messages, a transcript and an agent's reply, no
    message text is in Redis, in DynamoDB or in any process's log; it is in Jira."""
    import boto3
    jira.start_jira(2)
    secrets = [f"secret-text-{n}-{random.getrandbits(48):x}" for n in range(6)]
    account = jira.customer("carol@example.com")
    key = jira.start_conversation("promise-1", account, f"{secrets[0]} first message")["issue"]
    for n, text in enumerate(secrets[1:4]):
        assert "comment" in jira.call("conversation.message", message(key, n, text))
    assert "comment" in jira.call("conversation.message", message(key, 9, secrets[4], "agent",
                                                                  "agent-1"))
    jira.call("conversation.transcript", {"tenant": TENANT, "issue": key})
    assert all(s in " ".join(comments_text(jira.sandbox, key)) for s in secrets[1:5])
    assert secrets[0] in jira.sandbox.issue(key)["summary"]

    found = []
    # Redis: every key and every value
    for name in jira.redis.command("KEYS", "*"):
        kind = jira.redis.command("TYPE", name)
        value = {"string": ("GET",), "hash": ("HGETALL",), "set": ("SMEMBERS",),
                 "zset": ("ZRANGE", "0", "-1"), "list": ("LRANGE", "0", "-1")}.get(kind)
        dump = repr(name) + (repr(jira.redis.command(value[0], name, *value[1:])) if value
                             else "")
        found += [f"redis {name!r}" for s in secrets if s in dump]
    # DynamoDB: the whole table, read by boto3
    proxy = jira.proxy
    table = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=proxy.region,
                         aws_access_key_id=proxy.access_key,
                         aws_secret_access_key=proxy.secret_key)
    items = table.scan(TableName="parley")["Items"]
    assert items
    found += ["dynamodb" for item in items for s in secrets if s in repr(item)]
    # every log: our processes and the sandbox's
    logs = [p.text() for p in jira.cluster.processes] + [jira.sandbox.text()]
    found += ["log" for text in logs for s in secrets if s in text]
    assert not found, found


def test_conversation_start_makes_one_issue_when_jiras_answer_is_lost(jira):
    jira.start_jira(1)
    account = jira.customer("dora@example.com")
    # Jira creates the issue, then the answer is lost (500 after the write)
    jira.sandbox.add_faults({"match": {"method": "POST", "path_regex": "/rest/api/3/issue$"},
                             "action": "status", "status": 500, "after": True, "times": 1})
    started = jira.start_conversation("lost-answer", account, "Where is my parcel?")
    assert started["created"] is True
    issues = [i for i in jira.sandbox.issues() if i["summary"] == "Where is my parcel?"]
    assert [i["key"] for i in issues] == [started["issue"]]  # found by JQL, not made twice
    again = jira.start_conversation("lost-answer", account)
    assert again["issue"] == started["issue"] and again["created"] is False
    _assert_contract(jira.sandbox)


def test_one_tenants_slow_jira_does_not_hold_up_another(jira, tmp_path):
    """Tenant slow's Jira answers in 1 s; its calls queue behind a cap of 2 while tenant
    fast's messages go straight through on the same replica."""
    slow_jira = JiraSandbox(str(tmp_path), latency_ms=1000).start()
    try:
        ctl(jira.proxy, "tenant", "set", "--id", "slow", "--base-url", slow_jira.url,
            "--auth", "token", "--api-user", DEFAULT_API_USER[0], "--api-token-env", "TOKEN",
            TOKEN=DEFAULT_API_USER[1])
        jira.start_jira(1, PARLEY_JIRA_TENANT_CONCURRENCY=2, PARLEY_WORKER_CAPACITY=64)
        account = jira.customer()
        fast_key = jira.start_conversation("fast-1", account)["issue"]
        slow_ids = [jira.client.send("jira", "jira.identity",
                                     {"tenant": "slow", "email": f"s{n}@example.com"},
                                     timeout_ms=30000) for n in range(6)]
        time.sleep(0.2)  # the slow tenant's calls are out and queued
        started = time.monotonic()
        fast = [jira.call("conversation.message", message(fast_key, n, f"fast {n}"))
                for n in range(5)]
        fast_s = time.monotonic() - started
        assert all("comment" in a for a in fast), fast
        assert fast_s < 1.0, f"the fast tenant waited {fast_s:.2f} s behind the slow one"
        slow = jira.client.collect(slow_ids, timeout_s=60)
        assert all("account" in a for a in slow.values()), slow
        assert jira.counters()["jira_waiting"] == 0
    finally:
        slow_jira.stop()


def test_a_hung_dynamodb_costs_one_time_limit_and_the_worker_stays_up(jira):
    """DynamoDB stops answering (every reply held back 10 s). A conversation.start that needs
    it fails after about one attempt's time limit (PARLEY_DYNAMO_TIMEOUT_MS, 300 ms here),
    not after PARLEY_DYNAMO_RETRY_MAX of them, and those within the backoff that follows fail
    at once: the worker, which waits for DynamoDB on its one loop, stays within the broker's
    liveness (3 heartbeats of 250 ms in these tests), so the broker never counts it dead nor
    re-dispatches what it holds. When DynamoDB answers again, so does the worker."""
    jira.start_jira(1, PARLEY_DYNAMO_TIMEOUT_MS=300)
    account = jira.customer()

    def start(conversation):
        return jira.call("conversation.start", {
            "tenant": TENANT, "project": "SUP", "conversation": conversation,
            "customer": account, "first_message": "Is anyone there?"}, timeout_ms=30000)

    jira.proxy.delay_next(10.0, count=1000)
    try:
        waits = []
        for n in range(5):
            started = time.monotonic()
            answer = start(f"hung-{n}")
            waits.append(round(time.monotonic() - started, 2))
            assert "error" in answer and answer["error"] != "timeout", answer
        # five attempts of 300 ms each per call, and the retry delays between: about 9 s
        assert sum(waits) < 3, waits
    finally:
        jira.proxy.clear_faults()
    assert jira.cluster.stats()["services"]["jira"]["redispatches"] == 0
    assert jira.cluster.replicas("jira") == 1
    wait_for(lambda: "issue" in start("after-the-hang"), timeout=15,
             what="conversation.start works again")
