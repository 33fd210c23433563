"""The Jira sandbox (sandboxes/jira) behaves as Jira Cloud's OpenAPI spec and Atlassian's docs
say: the endpoints Parley's jira worker uses, request validation with Jira's error shapes,
Basic and Connect JWT authentication, the signed Connect lifecycle and webhooks, fault
injection, request records that never hold a body, and hostile input that leaves it serving.

One sandbox process serves the whole module (a fresh one costs ~0.4 s); the jira_sandbox
fixture resets it to its command-line state before each test."""
import base64
import http.client
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from sandboxes import JIRA_SCRIPT, PYTHON, JiraSandbox, connect_qsh

MAX_ATTACHMENT = 65536


def adf_doc(*paragraphs):
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]}
                        for p in paragraphs]}


@pytest.fixture(scope="module")
def _sandbox_process(tmp_path_factory):
    server = JiraSandbox(str(tmp_path_factory.mktemp("jira")),
                         extra_args=["--max-attachment-bytes", str(MAX_ATTACHMENT)])
    server.start()
    yield server
    assert server.stop() == 0, server.text()[-3000:]


@pytest.fixture
def jira_sandbox(_sandbox_process):
    """The module's sandbox, reset to its command-line state (project SUP, one API user)."""
    _sandbox_process.reset(everything=True)
    yield _sandbox_process
    assert _sandbox_process.running, _sandbox_process.text()[-3000:]


def create_issue(jira, summary="Chat with a customer", **fields):
    body = {"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Support"},
                       "summary": summary, **fields}}
    resp = jira.rest("POST", "/rest/api/3/issue", body)
    assert resp.status == 201, resp
    return resp.json


def add_comment(jira, key, text, query="", **extra):
    return jira.rest("POST", f"/rest/api/3/issue/{key}/comment{query}",
                     {"body": adf_doc(text), **extra}, **({"app": extra.pop("app")}
                                                          if "app" in extra else {}))


# --- a tiny Connect app, as Parley's gateway will be one

class ConnectApp:
    """An Atlassian Connect app on 127.0.0.1 with baseUrl <server>/app: serves its descriptor,
    records every lifecycle callback and webhook (headers and JSON body), and answers 500 to
    the next `fail_webhooks` webhooks."""

    def __init__(self):
        self.key = "parley-test-" + uuid.uuid4().hex[:8]
        self.received = []
        self.fail_webhooks = 0
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                body = json.dumps(app.descriptor()).encode()
                self.send_response(200 if self.path == "/atlassian-connect.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                app.received.append({"path": self.path, "headers": dict(self.headers),
                                     "body": json.loads(raw)})
                status = 204
                if self.path.startswith("/app/webhooks") and app.fail_webhooks > 0:
                    app.fail_webhooks -= 1
                    status = 500
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/app"

    @property
    def descriptor_url(self):
        return f"http://127.0.0.1:{self.port}/atlassian-connect.json"

    def descriptor(self):
        return {"key": self.key, "name": "Parley (test)", "baseUrl": self.base_url,
                "authentication": {"type": "jwt"}, "apiVersion": 1,
                "lifecycle": {"installed": "/installed", "uninstalled": "/uninstalled"},
                "scopes": ["READ", "WRITE"],
                "modules": {"webhooks": [{"event": "comment_created",
                                          "url": "/webhooks/comment"}]}}

    def got(self, path_prefix):
        return [r for r in self.received if r["path"].startswith(path_prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def connect_app():
    app = ConnectApp()
    yield app
    app.close()


def verify_lifecycle_jwt(jira, request, app, event):
    """Checks a lifecycle callback's RS256 JWT the way an app must; returns its claims."""
    token = request["headers"]["Authorization"].split(" ", 1)[1]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"]
    pem = jira.install_key_pem(header["kid"])
    claims = jwt.decode(token, pem, algorithms=["RS256"], audience=app.base_url)
    assert claims["iss"] == request["body"]["clientKey"]
    assert claims["qsh"] == connect_qsh("POST", f"/app/{event}", "", "/app")
    assert claims["iat"] <= time.time() + 1 < claims["exp"]
    return claims


# --- the process itself

def test_prints_listening_line_and_exits_zero_on_sigterm(tmp_path):
    proc = subprocess.Popen([PYTHON, JIRA_SCRIPT, "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("listening http://127.0.0.1:") and line.endswith("\n")
        port = int(line.strip().rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b"ok"
        conn.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert out == b"", "exactly one line on stdout"
    assert b"path=/healthz status=200" in err

    missing = subprocess.run([PYTHON, JIRA_SCRIPT, "--spec", str(tmp_path / "none.json")],
                             capture_output=True, timeout=10)
    assert missing.returncode == 2 and b"spec_missing" in missing.stderr


# --- issues and comments

def test_issue_and_comments_round_trip_in_creation_order(jira_sandbox):
    issue = create_issue(jira_sandbox)
    assert issue["key"] == "SUP-" + issue["key"].split("-")[1] and issue["id"].isdigit()
    ids = []
    for n in range(5):
        resp = add_comment(jira_sandbox, issue["key"], f"message {n}", "?expand=properties",
                           properties=[{"key": "parley.message", "value": {"id": f"m{n}"}}])
        assert resp.status == 201, resp
        assert resp.json["properties"] == [{"key": "parley.message", "value": {"id": f"m{n}"}}]
        assert resp.json["jsdPublic"] is True
        assert resp.json["created"].endswith("+0000") and "." in resp.json["created"]
        ids.append(int(resp.json["id"]))
    assert ids == sorted(ids) and len(set(ids)) == 5

    page = jira_sandbox.rest("GET", f"/rest/api/3/issue/{issue['key']}/comment").json
    assert page["total"] == 5 and page["startAt"] == 0 and page["maxResults"] == 50
    assert [c["body"]["content"][0]["content"][0]["text"] for c in page["comments"]] == \
        [f"message {n}" for n in range(5)]
    assert "properties" not in page["comments"][0]
    page = jira_sandbox.rest("GET", f"/rest/api/3/issue/{issue['id']}/comment?startAt=1&"
                                    "maxResults=2&orderBy=-created&expand=properties").json
    assert [int(c["id"]) for c in page["comments"]] == [ids[3], ids[2]]
    assert page["comments"][0]["properties"][0]["value"] == {"id": "m3"}
    assert jira_sandbox.rest("GET", "/rest/api/3/issue/SUP-1/comment?maxResults=1000"
                             ).json["maxResults"] == 100

    one = jira_sandbox.rest("GET", f"/rest/api/3/issue/{issue['key']}/comment/{ids[1]}"
                                   "?expand=renderedBody")
    assert one.status == 200 and one.json["renderedBody"] == "<p>message 1</p>"
    assert jira_sandbox.rest("GET", f"/rest/api/3/issue/{issue['key']}/comment/999").status \
        == 404
    assert jira_sandbox.rest("POST", "/rest/api/3/issue/SUP-999/comment",
                             {"body": adf_doc("x")}).status == 404

    got = jira_sandbox.rest("GET", f"/rest/api/3/issue/{issue['key']}?fields=summary,status")
    assert got.status == 200 and set(got.json["fields"]) == {"summary", "status"}
    view = jira_sandbox.issue(issue["key"])
    assert [c["text"] for c in view["comments"]] == [f"message {n}" for n in range(5)]
    assert view["comments"][0]["properties"] == {"parley.message": {"id": "m0"}}


def test_overview_page_lists_comments_with_html_escaped(jira_sandbox):
    issue = create_issue(jira_sandbox, summary="<b>bold</b> & co")
    add_comment(jira_sandbox, issue["key"], "<script>alert(1)</script>")
    page = jira_sandbox.request("GET", "/_sandbox/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    text = page.raw.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text


def test_create_issue_refuses_what_jira_refuses(jira_sandbox):
    def errors(fields):
        resp = jira_sandbox.rest("POST", "/rest/api/3/issue", {"fields": fields})
        assert resp.status == 400, resp
        assert set(resp.json) == {"errorMessages", "errors"}
        return resp.json["errors"]

    good = {"project": {"key": "SUP"}, "issuetype": {"name": "Support"}, "summary": "Hi"}
    assert errors({**good, "project": {"key": "NOPE"}}) == \
        {"project": "valid project is required"}
    assert "issuetype" in errors({**good, "issuetype": {"name": "Bug"}})
    assert "summary" in errors({**good, "summary": "x" * 256})
    assert "newline" in errors({**good, "summary": "two\nlines"})["summary"]
    assert "summary" in errors({k: v for k, v in good.items() if k != "summary"})
    assert "reporter" in errors({**good, "reporter": {"id": "nobody"}})
    assert "description" in errors({**good, "description": "plain text"})
    assert "customfield_1" in errors({**good, "customfield_1": "x"})

    customer = jira_sandbox.rest("POST", "/rest/servicedeskapi/customer",
                                 {"email": "c@example.test", "displayName": "C"}).json
    issue = create_issue(jira_sandbox, reporter={"id": customer["accountId"]},
                         description=adf_doc("details"), labels=["chat"])
    got = jira_sandbox.rest("GET", f"/rest/api/3/issue/{issue['key']}").json
    assert got["fields"]["reporter"]["accountId"] == customer["accountId"]
    assert got["fields"]["issuetype"]["name"] == "Support"
    by_id = create_issue(jira_sandbox, project={"id": got["fields"]["project"]["id"]},
                         issuetype={"id": got["fields"]["issuetype"]["id"]})
    assert int(by_id["id"]) > int(issue["id"])


def test_schema_and_adf_failures_answer_400_in_jira_shape(jira_sandbox):
    issue = create_issue(jira_sandbox)
    path = f"/rest/api/3/issue/{issue['key']}/comment"
    resp = jira_sandbox.rest("POST", path, {"body": adf_doc("hi"),
                                            "visibility": {"type": "user", "value": "x"}})
    assert resp.status == 400
    assert resp.json == {"errorMessages": ['$.visibility.type: must be one of '
                                           '["group", "role"]'], "errors": {}}
    resp = jira_sandbox.rest("POST", "/rest/api/3/issue", {"fields": ["not", "an", "object"]})
    assert resp.json["errorMessages"] == ["$.fields: must be of type object"]
    resp = jira_sandbox.rest("POST", path, {"body": adf_doc("hi"),
                                            "properties": [{"key": "k", "extra": 1}]})
    assert resp.json["errorMessages"] == ["$.properties[0]: unexpected property 'extra'"]
    resp = jira_sandbox.rest("GET", path + "?maxResults=ten")
    assert resp.status == 400
    assert resp.json["errorMessages"] == ["query parameter 'maxResults': must be an integer"]
    assert jira_sandbox.rest("GET", path + "?orderBy=sideways").status == 400

    secret = "customer words " + uuid.uuid4().hex
    resp = jira_sandbox.rest("POST", path, {"body": secret})
    assert resp.status == 400 and resp.json["errors"] == {"comment": "Comment body is not valid!"}
    assert secret not in resp.raw.decode(), "error messages never quote the body"
    for bad in ({"type": "doc", "version": 1, "content": [{"type": "text", "text": "x"}]},
                {"type": "doc", "version": 2, "content": []},
                {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": ""}]}]},
                {"type": "doc", "version": 1, "content": [{"type": "wat"}]}):
        resp = jira_sandbox.rest("POST", path, {"body": bad})
        assert resp.status == 400 and resp.json["errors"] == \
            {"comment": "Comment body is not valid!"}, resp
    resp = jira_sandbox.rest("POST", path, {"body": {"type": "doc", "version": 1,
                                                     "content": []}})
    assert resp.json["errors"] == {"comment": "Comment body can not be empty!"}
    assert jira_sandbox.rest("POST", path, {"body": adf_doc("x" * 32768)}).status == 400
    resp = jira_sandbox.request("POST", path, b'{"body": 1}', {
        "Authorization": jira_sandbox.basic(), "Content-Type": "text/plain"})
    assert resp.status == 415

    records = jira_sandbox.requests()["records"]
    refused = [r for r in records if r["valid"] is False]
    assert refused and all(r["errors"] for r in refused)
    assert secret not in json.dumps(records)
    assert jira_sandbox.issue(issue["key"])["comments"] == []


def test_issue_properties(jira_sandbox):
    issue = create_issue(jira_sandbox)
    base = f"/rest/api/3/issue/{issue['key']}/properties"
    value = {"name": "Ana", "phone": "+34600000000"}
    assert jira_sandbox.rest("PUT", base + "/parley.whatsapp", value).status == 201
    assert jira_sandbox.rest("PUT", base + "/parley.whatsapp", value).status == 200
    got = jira_sandbox.rest("GET", base + "/parley.whatsapp")
    assert got.json == {"key": "parley.whatsapp", "value": value}
    keys = jira_sandbox.rest("GET", base).json["keys"]
    assert [k["key"] for k in keys] == ["parley.whatsapp"]
    assert jira_sandbox.rest("PUT", base + "/big", {"v": "x" * 40000}).status == 400
    assert jira_sandbox.rest("PUT", base + "/" + "k" * 256, 1).status == 400
    assert jira_sandbox.rest("PUT", base + "/scalar", 42).status == 201
    assert jira_sandbox.rest("DELETE", base + "/parley.whatsapp").status == 204
    assert jira_sandbox.rest("GET", base + "/parley.whatsapp").status == 404
    assert jira_sandbox.rest("DELETE", base + "/parley.whatsapp").status == 404
    assert jira_sandbox.rest("GET", "/rest/api/3/issue/SUP-999/properties").status == 404
    with_props = jira_sandbox.rest("GET", f"/rest/api/3/issue/{issue['key']}?properties=*all")
    assert with_props.json["properties"] == {"scalar": 42}


def test_attachments_need_the_xsrf_header_and_respect_the_size_limit(jira_sandbox):
    issue = create_issue(jira_sandbox)
    path = f"/rest/api/3/issue/{issue['key']}/attachments"
    boundary = "parley" + uuid.uuid4().hex

    def multipart(data, filename="hello.txt"):
        return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n").encode() + \
            data + f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = jira_sandbox.rest("POST", path, multipart(b"hi"), headers=headers)
    assert resp.status == 403 and resp.raw == b"XSRF check failed"
    headers["X-Atlassian-Token"] = "no-check"
    resp = jira_sandbox.rest("POST", path, multipart(b"hello\r\n--not-the-boundary"),
                             headers=headers)
    assert resp.status == 200, resp
    [attachment] = resp.json
    assert attachment["filename"] == "hello.txt" and attachment["size"] == 25
    assert not JiraSandbox.validate_response("POST", path, 200, resp.json)
    content = jira_sandbox.rest("GET", f"/rest/api/3/attachment/content/{attachment['id']}")
    assert content.raw == b"hello\r\n--not-the-boundary"
    assert jira_sandbox.rest("POST", path, multipart(b"x" * (MAX_ATTACHMENT + 1)),
                             headers=headers).status == 413
    assert jira_sandbox.rest("POST", path, b"--nope\r\n", headers=headers).status == 400
    assert jira_sandbox.issue(issue["key"])["attachments"][0]["filename"] == "hello.txt"


# --- users and customers

def test_basic_auth(jira_sandbox):
    me = jira_sandbox.rest("GET", "/rest/api/3/myself")
    assert me.status == 200 and me.json["emailAddress"] == "agent@parley.test"
    assert len(me.json["accountId"]) == 24 and int(me.json["accountId"], 16) >= 0
    for auth in ("", jira_sandbox.basic(token="wrong"), jira_sandbox.basic("x@y.z", "t"),
                 "Basic !!!", "Bearer abc"):
        resp = jira_sandbox.rest("GET", "/rest/api/3/myself", auth=auth)
        assert resp.status == 401, (auth, resp)
        assert resp.json["errorMessages"] and "www-authenticate" in resp.headers
    jira_sandbox.add_user("second@parley.test", "Second", api_token="t2")
    resp = jira_sandbox.rest("GET", "/rest/api/3/myself",
                             auth=jira_sandbox.basic("second@parley.test", "t2"))
    assert resp.json["displayName"] == "Second"


def test_customers_and_user_search(jira_sandbox):
    resp = jira_sandbox.rest("POST", "/rest/servicedeskapi/customer",
                             {"email": "ana@example.test", "displayName": "Ana"})
    assert resp.status == 201, resp
    assert not JiraSandbox.check_customer(resp.json)
    account = resp.json["accountId"]
    assert account.startswith("qm:") and uuid.UUID(account[3:])
    again = jira_sandbox.rest("POST", "/rest/servicedeskapi/customer",
                              {"email": "ANA@example.test", "displayName": "Ana"})
    assert again.status == 400 and "already exists" in again.json["errorMessage"]
    strict = jira_sandbox.rest("POST", "/rest/servicedeskapi/customer?strictConflictStatusCode="
                                       "true", {"email": "ana@example.test", "displayName": "A"})
    assert strict.status == 409
    assert jira_sandbox.rest("POST", "/rest/servicedeskapi/customer",
                             {"email": "not-an-email", "displayName": "A"}).status == 400

    found = jira_sandbox.rest("GET", "/rest/api/3/user/search?query=ana%40example").json
    assert [u["accountId"] for u in found] == [account]
    assert found[0]["accountType"] == "customer"
    assert jira_sandbox.rest("GET", "/rest/api/3/user/search?query=nobody").json == []
    assert jira_sandbox.rest("GET", "/rest/api/3/user/search").status == 400
    user = jira_sandbox.rest("GET", f"/rest/api/3/user?accountId={account}")
    assert user.status == 200 and user.json["displayName"] == "Ana"
    assert jira_sandbox.rest("GET", "/rest/api/3/user?accountId=missing").status == 404


# --- Atlassian Connect

def test_connect_install_sends_a_signed_installed_callback(jira_sandbox, connect_app):
    install = jira_sandbox.install(connect_app.descriptor_url)
    assert install["installed"] is True and install["app_status"] == 204
    [installed] = connect_app.got("/app/installed")
    body = installed["body"]
    assert body["eventType"] == "installed" and body["key"] == connect_app.key
    assert body["clientKey"] == install["clientKey"]
    assert body["sharedSecret"] == install["sharedSecret"]
    assert body["baseUrl"] == jira_sandbox.url and body["productType"] == "jira"
    verify_lifecycle_jwt(jira_sandbox, installed, connect_app, "installed")

    again = jira_sandbox.install(connect_app.descriptor_url)
    assert (again["clientKey"], again["sharedSecret"]) == \
        (install["clientKey"], install["sharedSecret"])
    rotated = jira_sandbox.install(connect_app.descriptor_url, rotate_secret=True)
    assert rotated["clientKey"] == install["clientKey"]
    assert rotated["sharedSecret"] != install["sharedSecret"]
    assert jira_sandbox.request("GET", "/_sandbox/connect-install-keys/nope").status == 404
    refused = jira_sandbox.request("POST", "/_sandbox/connect/install",
                                   {"descriptor_url": "http://192.0.2.1/x.json"})
    assert refused.status == 400 and "loopback" in refused.json["error"]


def test_public_url_is_the_base_url_given_out_while_it_listens_on_loopback(tmp_path,
                                                                           connect_app):
    """--public-url (the docker-compose stack, where apps reach the sandbox by service name):
    install hooks and self links carry it; the sandbox still listens, and says so, on
    loopback. A URL with a path is refused."""
    public = "http://jira-sandbox:8020"
    with JiraSandbox(str(tmp_path), extra_args=["--public-url", public + "/"]) as jira:
        install = jira.install(connect_app.descriptor_url)
        assert install["installed"] is True
        [installed] = connect_app.got("/app/installed")
        assert installed["body"]["baseUrl"] == public
        issue = create_issue(jira)
        assert issue["self"] == f"{public}/rest/api/3/issue/{issue['id']}"
    bad = subprocess.run([PYTHON, JIRA_SCRIPT, "--public-url", "http://jira/ctx"],
                         capture_output=True, timeout=10)
    assert bad.returncode == 2 and b"--public-url" in bad.stderr


def test_connect_install_with_a_chosen_client_key(jira_sandbox, connect_app):
    bad = jira_sandbox.request("POST", "/_sandbox/connect/install",
                               {"descriptor_url": connect_app.descriptor_url,
                                "client_key": "no spaces"})
    assert bad.status == 400 and "client_key" in bad.json["error"]
    install = jira_sandbox.install(connect_app.descriptor_url, client_key="demo")
    assert install["installed"] is True and install["clientKey"] == "demo"
    [installed] = connect_app.got("/app/installed")
    assert installed["body"]["clientKey"] == "demo"
    verify_lifecycle_jwt(jira_sandbox, installed, connect_app, "installed")
    assert jira_sandbox.install(connect_app.descriptor_url, client_key="demo")["clientKey"] == \
        "demo"
    other = jira_sandbox.request("POST", "/_sandbox/connect/install",
                                 {"descriptor_url": connect_app.descriptor_url,
                                  "client_key": "other"})
    assert other.status == 400 and "another clientKey" in other.json["error"]


def test_connect_jwt_calls_need_a_valid_token_with_the_right_qsh(jira_sandbox, connect_app):
    install = jira_sandbox.install(connect_app.descriptor_url)
    issue = create_issue(jira_sandbox)
    path = f"/rest/api/3/issue/{issue['key']}/comment?maxResults=10&orderBy=%2Bcreated" \
           "&expand=renderedBody,properties"
    ok = jira_sandbox.rest("GET", path, app=install)
    assert ok.status == 200, ok
    resp = jira_sandbox.rest("POST", f"/rest/api/3/issue/{issue['key']}/comment",
                             {"body": adf_doc("from the app")}, app=install)
    assert resp.status == 201 and resp.json["author"]["accountType"] == "app"
    token = jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself")
    by_query = jira_sandbox.request("GET", f"/rest/api/3/myself?jwt={token}")
    assert by_query.status == 200 and by_query.json["displayName"] == "Parley (test)"

    def refused(token, path="/rest/api/3/myself", method="GET"):
        resp = jira_sandbox.request(method, path, headers={"Authorization": f"JWT {token}"})
        assert resp.status == 401, resp
        return resp.json["errorMessages"][0]

    wrong_qsh = jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself",
                                     qsh=connect_qsh("GET", "/rest/api/3/issue/SUP-1", ""))
    assert "GET&/rest/api/3/myself&" in refused(wrong_qsh)
    assert "qsh" in refused(jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself"),
                            "/rest/api/3/myself?expand=groups")
    assert "qsh" in refused(jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself"),
                            method="POST", path="/rest/api/3/issue")
    assert "expired" in refused(jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself",
                                                     iat=int(time.time()) - 400, exp_s=180))
    assert "signature" in refused(jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself",
                                                       secret="not-the-secret-" + "x" * 32))
    assert "issuer" in refused(jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself",
                                                    iss="someone-else"))
    assert "future" in refused(jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself",
                                                    iat=int(time.time()) + 600))
    assert "malformed" in refused("not.a.jwt")

    records = [r for r in jira_sandbox.requests()["records"] if r["auth"] == "jwt"]
    assert records[0]["tenant"] == install["clientKey"] and records[0]["status"] == 200
    assert all("jwt" not in r["query"] for r in records)

    jira_sandbox.uninstall(connect_app.key)
    [uninstalled] = connect_app.got("/app/uninstalled")
    assert uninstalled["body"]["eventType"] == "uninstalled"
    verify_lifecycle_jwt(jira_sandbox, uninstalled, connect_app, "uninstalled")
    assert "not installed" in refused(jira_sandbox.app_jwt(install, "GET", "/rest/api/3/myself"))


def test_comment_created_webhook_is_signed_and_retried(jira_sandbox, connect_app):
    install = jira_sandbox.install(connect_app.descriptor_url)
    issue = create_issue(jira_sandbox)
    agent = jira_sandbox.add_user("human@parley.test", "Human Agent")
    connect_app.fail_webhooks = 1
    comment = jira_sandbox.comment_as_agent(issue["key"], agent["accountId"], "Hello <there>")
    [delivery] = jira_sandbox.wait_for_webhooks(1)
    assert delivery["attempts"] == 2 and delivery["comment_id"] == comment["id"]
    hooks = connect_app.got("/app/webhooks/comment")
    assert len(hooks) == 2 and hooks[0]["body"] == hooks[1]["body"]
    hook = hooks[-1]
    claims = jwt.decode(hook["headers"]["Authorization"].split(" ", 1)[1],
                        install["sharedSecret"], algorithms=["HS256"])
    assert claims["iss"] == install["clientKey"]
    assert claims["qsh"] == connect_qsh("POST", "/app/webhooks/comment", "", "/app")
    body = hook["body"]
    assert body["webhookEvent"] == "comment_created"
    assert body["comment"]["body"] == "Hello <there>"
    assert body["comment"]["author"]["accountId"] == agent["accountId"]
    assert body["issue"]["key"] == issue["key"]
    assert body["issue"]["fields"]["project"]["key"] == "SUP"
    assert "Hello" not in json.dumps(jira_sandbox.webhooks())

    add_comment(jira_sandbox, issue["key"], "through the REST API")
    assert len(jira_sandbox.wait_for_webhooks(2)) == 2


# --- faults

def test_faults_answer_429_and_5xx_once_then_recover(jira_sandbox):
    issue = create_issue(jira_sandbox)
    path = f"/rest/api/3/issue/{issue['key']}/comment"
    jira_sandbox.add_faults({"match": {"method": "POST", "path_regex": "/comment$"},
                             "action": "status", "status": 429, "retry_after_s": 7},
                            {"match": {"method": "POST"}, "action": "status", "status": 503})
    first = add_comment(jira_sandbox, issue["key"], "one")
    assert first.status == 429 and first.headers["retry-after"] == "7"
    assert first.json["errorMessages"] and first.json["errors"] == {}
    second = add_comment(jira_sandbox, issue["key"], "one")
    assert second.status == 503
    third = add_comment(jira_sandbox, issue["key"], "one")
    assert third.status == 201
    assert [c["text"] for c in jira_sandbox.issue(issue["key"])["comments"]] == ["one"]

    jira_sandbox.add_faults({"match": {"path_regex": "^/rest/api/3/myself$"},
                             "action": "status", "status": 500, "times": -1})
    assert [jira_sandbox.rest("GET", "/rest/api/3/myself").status for _ in range(3)] == \
        [500] * 3
    assert jira_sandbox.faults()[0]["fired"] == 3
    jira_sandbox.clear_faults()
    assert jira_sandbox.rest("GET", path).status == 200
    bad = jira_sandbox.request("POST", "/_sandbox/faults", [{"action": "explode"}])
    assert bad.status == 400


def test_dropped_and_reset_requests_have_no_effect(jira_sandbox):
    issue = create_issue(jira_sandbox)
    for action, errors in (("drop", (http.client.RemoteDisconnected,)),
                           ("reset", (http.client.IncompleteRead, ConnectionResetError))):
        jira_sandbox.add_faults({"match": {"method": "POST"}, "action": action})
        with pytest.raises(errors):
            add_comment(jira_sandbox, issue["key"], f"lost by {action}")
    assert jira_sandbox.issue(issue["key"])["comments"] == []
    records = jira_sandbox.requests()["records"][-2:]
    assert [r["fault"]["action"] for r in records] == ["drop", "reset"]
    assert add_comment(jira_sandbox, issue["key"], "kept").status == 201


def test_after_faults_perform_the_write_then_lose_the_reply(jira_sandbox):
    issue = create_issue(jira_sandbox)
    jira_sandbox.add_faults({"match": {"method": "POST"}, "action": "status", "status": 500,
                             "after": True},
                            {"match": {"method": "POST"}, "action": "drop", "after": True})
    assert add_comment(jira_sandbox, issue["key"], "written once").status == 500
    with pytest.raises(http.client.RemoteDisconnected):
        add_comment(jira_sandbox, issue["key"], "written twice")
    assert [c["text"] for c in jira_sandbox.issue(issue["key"])["comments"]] == \
        ["written once", "written twice"]


def test_delay_fault_and_base_latency(jira_sandbox):
    jira_sandbox.add_faults({"match": {"path_regex": "myself"}, "action": "delay",
                             "delay_ms": 300})
    started = time.monotonic()
    assert jira_sandbox.rest("GET", "/rest/api/3/myself").status == 200
    assert time.monotonic() - started >= 0.3
    jira_sandbox.set_latency(150)
    started = time.monotonic()
    assert jira_sandbox.rest("GET", "/rest/api/3/myself").status == 200
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    jira_sandbox.issues()
    assert time.monotonic() - started < 0.15, "latency applies to /rest/ only"


# --- records and the spec

def test_records_never_hold_bodies_but_the_body_list_does(jira_sandbox, _sandbox_process):
    issue = create_issue(jira_sandbox)
    seq = jira_sandbox.requests()["records"][-1]["seq"]
    secret = "my card number is " + uuid.uuid4().hex
    assert add_comment(jira_sandbox, issue["key"], secret).status == 201
    assert jira_sandbox.rest("POST", f"/rest/api/3/issue/{issue['key']}/comment",
                             {"body": secret}).status == 400
    newer = jira_sandbox.requests(since=seq)
    assert [r["operation"] for r in newer["records"]] == ["addComment", "addComment"]
    assert newer["records"][0]["auth"] == "basic" and newer["records"][0]["valid"] is True
    assert secret not in json.dumps(newer)
    with_bodies = jira_sandbox.requests(since=seq, bodies=True)
    assert [b["body"]["body"] for b in with_bodies["bodies"]][-1] == secret
    assert with_bodies["bodies"][0]["body"]["body"] == adf_doc(secret)
    time.sleep(0.05)
    assert secret not in _sandbox_process.text(), "the log never holds a body"
    jira_sandbox.clear_requests()
    assert jira_sandbox.requests()["records"] == []


def test_replies_validate_against_the_spec_response_schemas(jira_sandbox, connect_app):
    install = jira_sandbox.install(connect_app.descriptor_url)
    issue = create_issue(jira_sandbox)
    key = issue["key"]
    add_comment(jira_sandbox, key, "hello", "?expand=renderedBody,properties",
                properties=[{"key": "p", "value": [1, None]}],
                visibility={"type": "role", "value": "Administrators", "identifier": None})
    jira_sandbox.rest("PUT", f"/rest/api/3/issue/{key}/properties/x", {"a": 1})
    calls = [("POST", "/rest/api/3/issue", {"fields": {"project": {"key": "SUP"},
                                                       "issuetype": {"name": "Task"},
                                                       "summary": "again"}}),
             ("GET", f"/rest/api/3/issue/{key}", None),
             ("GET", f"/rest/api/3/issue/{key}?properties=*all&fields=*all", None),
             ("GET", f"/rest/api/3/issue/{key}/comment?expand=renderedBody,properties", None),
             ("GET", f"/rest/api/3/issue/{key}/properties", None),
             ("GET", f"/rest/api/3/issue/{key}/properties/x", None),
             ("GET", "/rest/api/3/myself", None),
             ("GET", "/rest/api/3/user/search?query=agent", None),
             ("POST", "/rest/api/3/issue", {"fields": {"summary": "no project"}}),
             ("GET", "/rest/api/3/issue/NOPE-1/comment", None)]
    for method, path, body in calls:
        resp = jira_sandbox.rest(method, path, body)
        assert not JiraSandbox.validate_response(method, path, resp.status, resp.json), \
            (method, path, resp)
    me = jira_sandbox.rest("GET", "/rest/api/3/myself", app=install)
    assert not JiraSandbox.validate_response("GET", "/rest/api/3/myself", 200, me.json)
    records = jira_sandbox.requests()["records"]
    assert all(r.get("response_errors", []) == [] for r in records), \
        [r for r in records if r.get("response_errors")]
    # the validator does catch a bad reply
    assert JiraSandbox.validate_response("POST", "/rest/api/3/issue", 201,
                                         {"id": 1, "key": "SUP-1", "extra": True})


def test_unknown_paths_methods_and_operations(jira_sandbox):
    resp = jira_sandbox.rest("GET", "/rest/api/3/nothing/here")
    assert resp.status == 404 and set(resp.json) == {"errorMessages", "errors"}
    resp = jira_sandbox.rest("PATCH", "/rest/api/3/myself")
    assert resp.status == 405 and "GET" in resp.headers["allow"]
    resp = jira_sandbox.rest("GET", "/rest/api/3/project/search")
    assert resp.status == 501 and "searchProjects" in resp.json["errorMessages"][0]
    assert jira_sandbox.request("GET", "/elsewhere").status == 404
    assert jira_sandbox.request("GET", "/_sandbox/nothing").status == 404


def test_reset_keeps_installs_and_users_unless_told(jira_sandbox, connect_app):
    jira_sandbox.install(connect_app.descriptor_url)
    jira_sandbox.add_user("kept@parley.test")
    issue = create_issue(jira_sandbox)
    jira_sandbox.reset()
    assert jira_sandbox.issues() == [] and jira_sandbox.installations()
    assert jira_sandbox.user_by_email("kept@parley.test")
    assert int(create_issue(jira_sandbox)["id"]) > int(issue["id"]), "ids are never reused"
    jira_sandbox.reset(everything=True)
    assert jira_sandbox.installations() == []
    assert jira_sandbox.user_by_email("kept@parley.test") is None
    assert jira_sandbox.user_by_email("agent@parley.test"), "command-line users stay"


# --- hostile input

def raw_exchange(port, data, timeout_s=5.0):
    """Sends raw bytes, returns what comes back before the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before reading all of it: read the answer
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def test_hostile_input_leaves_the_server_serving(jira_sandbox):
    port = jira_sandbox.port
    auth = jira_sandbox.basic().encode()
    issue = create_issue(jira_sandbox)
    comment_path = f"/rest/api/3/issue/{issue['key']}/comment".encode()
    cases = [
        (os.urandom(4096), None),
        (b"\x00\xff\r\n\r\n", b"400"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n", b"431"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
         b"431"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000)
                                          for i in range(60)) + b"\r\n", b"431"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nAuthorization: " + auth +
         b"\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"body\":", b"400"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nAuthorization: " + auth +
         b"\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n\"\xff\xfe\"", b"400"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nAuthorization: " + auth +
         b"\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\nNaN", b"400"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nAuthorization: " + auth +
         b"\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n" +
         b"[" * 100000 + b"]" * 100000, b"400"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         b"400"),
        (b"POST " + comment_path + b" HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort", None),
        (b"GET /rest/api/3/myself?" + b"&".join([b"a=1"] * 1500) + b" HTTP/1.1\r\n\r\n",
         b"400"),
        (b"GET /rest/api/3/issue/%ff%fe HTTP/1.1\r\nAuthorization: " + auth + b"\r\n\r\n",
         b"404"),
    ]
    for data, expected_status in cases:
        out = raw_exchange(port, data)
        if expected_status is not None:
            assert out.split(b"\r\n", 1)[0].split(b" ")[1:2] == [expected_status], \
                (data[:80], out[:200])
        assert jira_sandbox.answers()
    body = json.dumps({"body": adf_doc("chunked hello")}).encode()
    chunked = b"POST " + comment_path + b" HTTP/1.1\r\nAuthorization: " + auth + \
        b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n" \
        b"Connection: close\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    assert raw_exchange(port, chunked).startswith(b"HTTP/1.1 201")
    assert [c["text"] for c in jira_sandbox.issue(issue["key"])["comments"]] == \
        ["chunked hello"]
    assert jira_sandbox.request("GET", "/healthz").raw == b"ok"


def test_keep_alive_and_slow_clients(tmp_path):
    with JiraSandbox(str(tmp_path), extra_args=["--read-timeout-s", "1"]) as jira:
        conn = http.client.HTTPConnection("127.0.0.1", jira.port, timeout=5)
        for _ in range(3):
            conn.request("GET", "/rest/api/3/myself", headers={"Authorization": jira.basic()})
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("Content-Length")
            resp.read()
        conn.close()
        assert jira.requests()["records"][-1]["status"] == 200

        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", jira.port), timeout=5) as s:
            s.sendall(b"GET /rest/api/3/myself HTTP/1.1\r\n")
            closed = False
            while time.monotonic() - started < 4:
                try:
                    s.sendall(b"X: y\r\n")
                    s.settimeout(0.3)
                    if s.recv(1024) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
        assert closed and time.monotonic() - started < 3, "a trickling client is cut off"
        assert jira.answers()


def test_basic_auth_header_value_helper_matches_rfc7617():
    value = JiraSandbox("/tmp").basic("a@b.c", "t:k")
    assert base64.b64decode(value.split()[1]) == b"a@b.c:t:k"
