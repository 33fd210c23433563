"""Hostile input to the jira worker and the gateway's Jira routes: malformed payloads for every
jira request type (random bytes, every truncation, wrong types, lying lengths) each get ERROR
bad_request; HTTP junk to the gateway gets 4xx; forged or missing Connect JWTs get 401; and
both processes keep serving."""
import random
import socket
import urllib.error
import urllib.request

import msgpack
import pytest

from conftest import free_port, wait_for
from test_jira_worker import TENANT, JiraStack

VALID = {
    "jira.identity": {"tenant": TENANT, "email": "x@example.com", "display_name": "X"},
    "conversation.start": {"tenant": TENANT, "project": "SUP", "conversation": "c-1",
                           "customer": "qm:1", "first_message": "hello"},
    "conversation.message": {"tenant": TENANT, "issue": "SUP-1", "message": "m-1",
                             "author_kind": "customer", "author": "qm:1", "text": "hi"},
    "conversation.transcript": {"tenant": TENANT, "issue": "SUP-1"},
    "jira.inbound": {"route": "webhook", "method": "POST", "path": "/jira/webhook/comment",
                     "body": b"{}"},
}


def malformed(seed=7):
    rng = random.Random(seed)
    out = []
    for type_, body in VALID.items():
        packed = msgpack.packb(body)
        out += [(type_, packed[:n]) for n in range(len(packed))]
        out += [(type_, rng.randbytes(rng.randint(1, 200))) for _ in range(15)]
        out += [(type_, b"\xdf\xff\xff\xff\xff"), (type_, msgpack.packb([1, 2])),
                (type_, packed + b"\x00")]
        for field in body:
            out.append((type_, msgpack.packb(dict(body, **{field: 12345}))))
            if field != "display_name":  # optional
                out.append((type_, msgpack.packb({k: v for k, v in body.items()
                                                  if k != field})))
    # values the decoder accepts but the worker must refuse
    out += [("conversation.message", msgpack.packb(dict(VALID["conversation.message"],
                                                        author_kind="robot"))),
            ("conversation.message", msgpack.packb(dict(VALID["conversation.message"],
                                                        text=""))),
            ("conversation.message", msgpack.packb(dict(VALID["conversation.message"],
                                                        text="bad")).replace(
                b"\xa3bad", b"\xa3\xff\xfe\xfd")),  # a str that is not UTF-8
            ("conversation.message", msgpack.packb(dict(VALID["conversation.message"],
                                                        issue="SUP-1/../../x"))),
            ("jira.identity", msgpack.packb(dict(VALID["jira.identity"], email="no at sign"))),
            ("jira.inbound", msgpack.packb(dict(VALID["jira.inbound"], route="other",
                                                authorization="JWT a.b.c")))]
    return out


@pytest.fixture
def stack(cluster_factory, redis_server, dynamo_proxy, jira_sandbox):
    s = JiraStack(cluster_factory, redis_server, dynamo_proxy, jira_sandbox)
    s.start_jira(1)
    yield s
    s.client.close()


def test_malformed_jira_payloads_get_errors_and_the_worker_keeps_serving(stack):
    cases = malformed()
    ids = [_send_raw(stack.client, type_, payload) for type_, payload in cases]
    answers = stack.client.collect(ids, timeout_s=60)
    wrong = [(cases[i][0], answers[request_id]) for i, request_id in enumerate(ids)
             if answers[request_id].get("error") not in ("bad_request", "unauthorized")]
    assert not wrong, wrong[:10]
    assert stack.replicas[0].alive()
    # still serving real work
    account = stack.customer()
    assert stack.start_conversation("after-junk", account)["issue"]


def _send_raw(client, type_, payload):
    from peers import REQUEST
    client.next_id += 1
    client.peer.send(REQUEST, {"id": client.next_id, "service": "jira", "type": type_,
                               "timeout_ms": 20000}, payload)
    return client.next_id


def test_gateway_http_junk_and_forged_jwts(cluster_factory, redis_server, dynamo_proxy,
                                           jira_sandbox):
    s = JiraStack(cluster_factory, redis_server, dynamo_proxy, jira_sandbox)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    s.start_jira(1, PARLEY_APP_BASE_URL=base)
    gateway = s.cluster.spawn("gateway", "parley-gateway", PARLEY_GATEWAY_PORT=port,
                              PARLEY_APP_BASE_URL=base, PARLEY_GATEWAY_HTTP_BODY_MAX=4096)

    def status(path, data=None, headers=None, method=None):
        request = urllib.request.Request(base + path, data=data, headers=headers or {},
                                         method=method)
        try:
            return urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as e:
            return e.code

    wait_for(lambda: _up(port), what="gateway")
    assert status("/nope") == 404
    assert status("/connect/installed") == 405  # GET
    assert status("/connect/installed", data=b"x" * 10000) == 413
    assert status("/jira/webhook/comment", data=b"{}") == 401  # no JWT
    assert status("/jira/webhook/comment", data=b"{}",
                  headers={"Authorization": "JWT not.a.token"}) == 401
    assert status("/jira/webhook/comment", data=b"{}",
                  headers={"Authorization": "Basic Zm9vOmJhcg=="}) == 401
    assert status("/connect/installed", data=b"{}",
                  headers={"Authorization": "JWT " + "a" * 9000}) == 401
    # raw junk on the socket, and a client that leaves mid-request
    for junk in (b"\x00\x01\x02 garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /connect/installed HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            try:
                sock.recv(4096)
            except OSError:
                pass
    assert status("/healthz") == 200
    assert gateway.alive()
    s.client.close()


def _up(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200
    except OSError:
        return False
