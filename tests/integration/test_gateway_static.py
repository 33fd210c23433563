"""The gateway's static files (gateway/gateway_static.c) on the port of its websockets: the
widget, the demo page and the agent console with the right types and bytes, HEAD, ETag
revalidation, 404s, traversal attempts refused (sent over a raw socket, so that no client
library tidies the path first) while the gateway goes on serving, other methods refused, the
routes of the gateway untouched; and `parleyctl token`, whose tokens a real hello accepts."""
import asyncio
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import jwt
import pytest
import websockets

from conftest import BIN, ROOT, free_port, wait_http_up
from test_gateway_ws import PROJECT_KEY, chat, expect  # noqa: F401 (chat is a fixture)
from test_jira_worker import TENANT as TOKEN_TENANT
from test_parleyctl import KEY

STATIC = os.path.join(ROOT, "gateway", "static")
FILES = {"widget.js": "text/javascript; charset=utf-8",
         "demo.html": "text/html; charset=utf-8",
         "agent.html": "text/html; charset=utf-8",
         "agent.js": "text/javascript; charset=utf-8"}


def start_gateway(cluster, static_dir):
    port = free_port()
    gateway = cluster.spawn("gateway", "parley-gateway", PARLEY_GATEWAY_PORT=port,
                            PARLEY_GATEWAY_STATIC_DIR=static_dir)

    wait_http_up(f"http://127.0.0.1:{port}", what="gateway")
    return gateway, port


def raw(port, request, timeout=5):
    """Sends request bytes as they are and returns everything the gateway answers until it
    closes (requests here say Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        out = b""
        while True:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            out += data
    return out


def raw_get(port, path, method="GET"):
    return raw(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
               .encode("latin-1"))


@pytest.fixture
def site(cluster, tmp_path):
    """A gateway serving a copy of gateway/static next to things it must never serve: a secret
    beside the directory, a symlink from inside to it, a hidden file, a file of a type that is
    not served, and one over the size cap."""
    root = tmp_path / "static"
    shutil.copytree(STATIC, root)
    (tmp_path / "secret.js").write_text("SECRET-OUTSIDE")
    os.symlink(tmp_path / "secret.js", root / "leak.js")
    (root / ".hidden.js").write_text("SECRET-HIDDEN")
    (root / "notes.txt").write_text("SECRET-TXT")
    (root / "sub").mkdir()
    (root / "sub" / "style.css").write_text("body{}")
    (root / "big.js").write_bytes(b"/" * (1024 * 1024 + 1))
    (root / "large.js").write_bytes(b"x" * 900_000)
    gateway, port = start_gateway(cluster, str(root))
    return gateway, port, root


def test_every_file_is_served_with_its_type_and_bytes(site):
    gateway, port, root = site
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for name, content_type in FILES.items():
        conn.request("GET", "/" + name)
        answer = conn.getresponse()
        body = answer.read()
        assert answer.status == 200, name
        assert answer.getheader("Content-Type") == content_type, name
        assert body == open(os.path.join(STATIC, name), "rb").read(), name
        assert int(answer.getheader("Content-Length")) == len(body)
        assert answer.getheader("Cache-Control") == "no-cache"
        assert answer.getheader("ETag") and answer.getheader("Last-Modified")
        assert answer.getheader("X-Content-Type-Options") == "nosniff"
    # / is the demo page; a subdirectory and CSS; a large file on the same keep-alive socket
    for path, name, content_type in (("/", "demo.html", "text/html; charset=utf-8"),
                                     ("/sub/style.css", "sub/style.css", "text/css; charset=utf-8"),
                                     ("/large.js", "large.js", "text/javascript; charset=utf-8")):
        conn.request("GET", path)
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("Content-Type") == content_type
        assert answer.read() == (root / name).read_bytes()
    # the pages load the scripts next to them, and put no message text in markup
    demo = (root / "demo.html").read_text()
    assert '<script src="widget.js">' in demo
    assert '<script src="agent.js">' in (root / "agent.html").read_text()
    for script in ("widget.js", "agent.js"):
        assert "innerHTML" not in (root / script).read_text()


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_scripts_are_valid_javascript():
    for script in ("widget.js", "agent.js"):
        done = subprocess.run(["node", "--check", os.path.join(STATIC, script)],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


def test_head_and_revalidation(site):
    _, port, _ = site
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("HEAD", "/widget.js")
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b""
    size = os.path.getsize(os.path.join(STATIC, "widget.js"))
    assert int(head.getheader("Content-Length")) == size
    assert head.getheader("Content-Type") == FILES["widget.js"]
    etag = head.getheader("ETag")
    conn.request("GET", "/widget.js", headers={"If-None-Match": etag})
    cached = conn.getresponse()
    assert cached.status == 304 and cached.read() == b""
    assert cached.getheader("ETag") == etag
    conn.request("GET", "/widget.js", headers={"If-None-Match": '"something-else"'})
    fresh = conn.getresponse()
    assert fresh.status == 200 and len(fresh.read()) == size
    conn.request("HEAD", "/missing.js")
    missing = conn.getresponse()
    assert missing.status == 404 and missing.read() == b""
    # the same connection still answers after HEAD and 304
    conn.request("GET", "/healthz")
    health = conn.getresponse()
    assert health.status == 200 and health.read() == b"ok\n"


def test_missing_files_and_types_not_served_are_404(site):
    _, port, _ = site
    for path in ("/nope.js", "/notes.txt", "/sub", "/atlassian-connect.jsonx", "/ws"):
        answer = raw_get(port, path)
        assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:80])
        assert b"SECRET" not in answer
    assert raw_get(port, "/big.js").startswith(b"HTTP/1.1 403")


def test_traversal_is_refused_and_the_gateway_keeps_serving(site):
    gateway, port, _ = site
    attempts = ["/../secret.js", "/../../../../etc/passwd", "/%2e%2e/secret.js",
                "/%2E%2E/%2e%2e/etc/passwd", "/sub/..%2f..%2fsecret.js", "/..%2fsecret.js",
                "/%252e%252e/secret.js", "/sub/%2e%2e/%2e%2e/secret.js", "//etc/passwd",
                "/etc/passwd", "/.hidden.js", "/leak.js",
                "/widget.js%00.png", "/demo.html\\..\\..\\secret.js", "/sub/", "/%2fetc/passwd",
                "/" + "a/" * 200 + "widget.js"]
    for path in attempts:
        answer = raw_get(port, path)
        assert b"SECRET" not in answer and b"root:" not in answer, path
        assert not answer.startswith(b"HTTP/1.1 2"), (path, answer[:80])
        assert gateway.alive(), path
    # absolute-form and junk request targets
    for target in ("http://127.0.0.1/../secret.js", "secret.js", "*"):
        answer = raw_get(port, target)
        assert b"SECRET" not in answer and not answer.startswith(b"HTTP/1.1 2"), target
    assert "static_outside_root" in gateway.text()  # the symlink out was noticed
    assert raw_get(port, "/widget.js").startswith(b"HTTP/1.1 200")
    assert raw_get(port, "/healthz").startswith(b"HTTP/1.1 200")


def test_other_methods_are_refused_and_routes_still_work(site):
    gateway, port, _ = site
    post = raw(port, b"POST /widget.js HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Connection: close\r\n\r\nhello")
    assert post.startswith(b"HTTP/1.1 405"), post[:80]
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        answer = raw_get(port, "/demo.html", method)
        assert not answer.startswith(b"HTTP/1.1 2") and b"<html" not in answer, method
    assert raw(port, b"POST /nope.js HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
               ).startswith(b"HTTP/1.1 404")
    assert raw(port, b"GET /connect/installed HTTP/1.1\r\nConnection: close\r\n\r\n"
               ).startswith(b"HTTP/1.1 405")
    descriptor = json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{port}/atlassian-connect.json", timeout=5).read())
    assert descriptor["key"] == "parley-chat"
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read() == b"ok\n"

    async def ws():
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as sock:
            await sock.send(json.dumps({"type": "nonsense"}))
            return json.loads(await asyncio.wait_for(sock.recv(), 5))
    assert asyncio.run(ws())["code"] == "unauthenticated"
    assert gateway.alive()


def test_static_files_off_or_missing(cluster, tmp_path):
    for static_dir in ("", str(tmp_path / "does-not-exist")):
        gateway, port = start_gateway(cluster, static_dir)
        assert raw_get(port, "/widget.js").startswith(b"HTTP/1.1 404")
        assert raw_get(port, "/healthz").startswith(b"HTTP/1.1 200")
        if static_dir:
            assert "static_files_off" in gateway.text()
        gateway.stop()


# --- parleyctl token


def token_ctl(stack, *args, **env):
    full = dict(os.environ, **stack.proxy.env, PARLEY_SECRETS_KEY=KEY, **env)
    return subprocess.run([os.path.join(BIN, "parleyctl"), "token", *args], env=full,
                          capture_output=True, text=True, timeout=30)


def test_parleyctl_tokens_open_a_chat(chat):  # noqa: F811 (the fixture)
    customer = token_ctl(chat, "customer", "--tenant", chat.tenant, "--project", "SUP",
                         "--email", "grace@example.com", "--name", "Grace Hopper",
                         "--ttl-s", "600")
    assert customer.returncode == 0, customer.stderr
    customer_token = customer.stdout.strip()
    claims = jwt.decode(customer_token, PROJECT_KEY, algorithms=["HS256"])
    assert claims["email"] == "grace@example.com" and claims["displayName"] == "Grace Hopper"
    assert claims["exp"] - claims["iat"] == 600 and abs(claims["iat"] - time.time()) < 60

    agent = token_ctl(chat, "agent", "--tenant", chat.tenant, "--account", "agent-1")
    assert agent.returncode == 0, agent.stderr
    agent_token = agent.stdout.strip()
    claims = jwt.decode(agent_token, chat.shared, algorithms=["HS256"])
    assert claims["iss"] == chat.tenant and claims["sub"] == "agent-1"
    assert claims["exp"] - claims["iat"] == 3600

    async def conversation():
        async with websockets.connect(chat.ws_url) as widget, \
                websockets.connect(chat.ws_url) as console:
            await console.send(json.dumps({"type": "hello", "tenant": chat.tenant,
                                           "kind": "agent", "token": agent_token}))
            assert (await expect(console, "welcome"))["account"] == "agent-1"
            await widget.send(json.dumps({"type": "hello", "tenant": chat.tenant,
                                          "project": "SUP", "kind": "customer",
                                          "token": customer_token}))
            assert (await expect(widget, "welcome"))["kind"] == "customer"
            await widget.send(json.dumps({"type": "conversation.start", "id": "w-1",
                                          "text": "Where is my parcel?"}))
            issue = (await expect(widget, "conversation.started", id="w-1"))["issue"]
            await expect(console, "conversation.new", issue=issue)
            await console.send(json.dumps({"type": "join", "issue": issue,
                                           "after_comment": "0"}))
            await expect(console, "joined", issue=issue)
            await expect(console, "resumed", issue=issue)
            await widget.send(json.dumps({"type": "message", "id": "m-1", "issue": issue,
                                          "text": "Order 42"}))
            assert (await expect(console, "message", id="m-1"))["text"] == "Order 42"
            await expect(widget, "ack", id="m-1")
            await console.send(json.dumps({"type": "message", "id": "a-1", "issue": issue,
                                           "text": "On its way"}))
            assert (await expect(widget, "message", id="a-1"))["text"] == "On its way"
            await expect(console, "ack", id="a-1")
            return issue
    issue = asyncio.run(conversation())
    texts = [c["text"] for c in chat.sandbox.issue(issue)["comments"]]
    assert texts == ["Order 42", "On its way"]


def test_parleyctl_token_refusals(chat):  # noqa: F811 (the fixture)
    api_token_tenant = token_ctl(chat, "agent", "--tenant", TOKEN_TENANT, "--account", "agent-1")
    assert api_token_tenant.returncode == 1 and "Connect" in api_token_tenant.stderr
    stranger = token_ctl(chat, "agent", "--tenant", chat.tenant, "--account", "nobody")
    assert stranger.returncode == 1 and "no agent" in stranger.stderr
    done = subprocess.run([os.path.join(BIN, "parleyctl"), "project", "set", "--tenant",
                           chat.tenant, "--project", "NOKEY", "--issue-type", "Support"],
                          env=dict(os.environ, **chat.proxy.env, PARLEY_SECRETS_KEY=KEY),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    no_key = token_ctl(chat, "customer", "--tenant", chat.tenant, "--project", "NOKEY",
                       "--email", "a@example.com")
    assert no_key.returncode == 1 and "no secret key" in no_key.stderr
    missing = token_ctl(chat, "customer", "--tenant", chat.tenant, "--project", "NOPE",
                        "--email", "a@example.com")
    assert missing.returncode == 1 and "no project" in missing.stderr
    for args in (("customer", "--tenant", chat.tenant, "--project", "SUP", "--email",
                  "a@example.com", "--ttl-s", "7200"),         # longer than the worker allows
                 ("customer", "--tenant", chat.tenant, "--project", "SUP", "--email", "nope"),
                 ("agent", "--tenant", chat.tenant, "--account", "agent-1", "--ttl-s", "0"),
                 ("agent", "--tenant", chat.tenant),
                 ("admin", "--tenant", chat.tenant)):
        refused = token_ctl(chat, *args)
        assert refused.returncode == 2 and refused.stdout == "", (args, refused.stderr)
        assert refused.stderr.startswith("parleyctl: "), refused.stderr
