"""Local sandboxes of outside services, run as child processes for the tests: JiraSandbox runs
sandboxes/jira/jira_sandbox.py (Jira Cloud's REST API as its OpenAPI spec says, plus the
Atlassian Connect lifecycle and webhooks) on a 127.0.0.1 port.

start() returns once the sandbox printed its "listening" line and answers /healthz; the port
it got the first time is kept across stop()/start(), so a test can take Jira away and bring it
back under the same URL. stop() sends SIGTERM (SIGKILL after a grace period) and returns the
exit status. The sandbox's stderr (one line per request, never a body) goes to a log file in
log_dir; text() reads it.

The control API (/_sandbox/...) has a Python method each; rest() calls the Jira API as an API
user (Basic) or as an installed Connect app (a JWT whose qsh this module computes itself, with
an implementation independent of the sandbox's). validate_response() checks a reply against
the spec's response schema with the sandbox's own validator. Meant to be driven from one
thread; nothing here is a test by itself."""
import base64
import ctypes
import hashlib
import http.client
import importlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from urllib.parse import parse_qsl, quote, urlsplit

import jwt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JIRA_DIR = os.path.join(ROOT, "sandboxes", "jira")
JIRA_SCRIPT = os.path.join(JIRA_DIR, "jira_sandbox.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
DEFAULT_API_USER = ("agent@parley.test", "sandbox-token")


def _die_with_parent():
    """Runs in the child before exec: SIGTERM it when the test process dies."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def connect_qsh(method, path, query="", base_path=""):
    """The Connect qsh of a request, computed from the published rules with urllib (not with
    the sandbox's code): see sandboxes/jira/README.md."""
    if base_path and (path == base_path.rstrip("/") or path.startswith(base_path.rstrip("/") +
                                                                        "/")):
        path = path[len(base_path.rstrip("/")):]
    path = "/" + path.lstrip("/") if path else "/"
    path = path[:-1] if len(path) > 1 and path.endswith("/") else path
    path = path.replace("&", "%26")
    groups = {}
    for name, value in parse_qsl(query or "", keep_blank_values=True):
        if name != "jwt":
            groups.setdefault(name, []).append(value)

    def enc(text):
        return quote(text, safe="-_.~")

    canonical_query = "&".join(
        f"{enc(name)}={','.join(enc(v) for v in sorted(values, key=lambda s: s.encode()))}"
        for name, values in sorted(groups.items(), key=lambda kv: enc(kv[0])))
    canonical = f"{method.upper()}&{path}&{canonical_query}"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Response:
    """An HTTP answer: status, headers (lower-case names), raw bytes and the parsed JSON (None
    when not JSON)."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<Response {self.status} {self.raw[:300]!r}>"


class JiraSandbox:
    """The Jira sandbox as a child process on 127.0.0.1."""

    name = "jira-sandbox"

    def __init__(self, log_dir, port=None, projects=None, api_users=(DEFAULT_API_USER,),
                 latency_ms=None, extra_args=()):
        self.log_dir = log_dir
        self.port = port
        self.projects = list(projects or [])
        self.api_users = list(api_users)
        self.latency_ms = latency_ms
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0
        self.log_path = os.path.join(log_dir, f"{self.name}-{os.getpid()}-{id(self)}.log")

    # --- process

    def argv(self):
        argv = [PYTHON, JIRA_SCRIPT, "--port", str(self.port or 0)]
        for project in self.projects:
            argv += ["--project", project]
        for user in self.api_users:
            argv += ["--api-user", ":".join(user)]
        if self.latency_ms is not None:
            argv += ["--latency-ms", str(self.latency_ms)]
        return argv + self.extra_args

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self):
        """What a Parley process needs to reach this Jira in make-run style settings."""
        return {"PARLEY_DEMO_JIRA_URL": self.url}

    def start(self, timeout_s=10.0):
        """Starts the sandbox and waits until it serves. Raises AssertionError (with the log's
        tail) when it exits or stays silent."""
        assert not self.running, f"{self.name} is already running"
        with open(self.log_path, "ab") as log:
            log.write(f"=== start {self.starts + 1}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=log, cwd=ROOT,
                                         preexec_fn=_die_with_parent)
        self.starts += 1
        try:
            line = self._read_line(timeout_s)
            prefix = "listening http://127.0.0.1:"
            assert line.startswith(prefix), f"unexpected first line {line!r}:\n{self.text()}"
            self.port = int(line[len(prefix):])
            deadline = time.monotonic() + timeout_s
            while not self.answers():
                assert time.monotonic() < deadline, f"no answer on {self.url}:\n{self.text()}"
                time.sleep(0.02)
        except BaseException:
            self.kill()
            raise
        return self

    def _read_line(self, timeout_s):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        data, deadline = b"", time.monotonic() + timeout_s
        try:
            while not data.endswith(b"\n"):
                left = deadline - time.monotonic()
                assert left > 0, f"{self.name} printed no listening line:\n{self.text()[-3000:]}"
                if sel.select(left):
                    chunk = os.read(self.proc.stdout.fileno(), 256)
                    assert chunk, f"{self.name} exited while starting:\n{self.text()[-3000:]}"
                    data += chunk
        finally:
            sel.close()
        return data.decode().strip()

    def answers(self):
        try:
            return self.request("GET", "/healthz", timeout_s=0.5).status == 200
        except OSError:
            return False

    def stop(self, timeout_s=5.0):
        """SIGTERM, then SIGKILL after timeout_s. Returns the exit status, or None when it was
        not running."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc.stdout.close()
        self.proc = None
        return code

    def kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
        self.proc = None

    def restart(self, down_s=0.0):
        self.stop()
        if down_s:
            time.sleep(down_s)
        return self.start()

    def text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self if self.running else self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- HTTP

    def request(self, method, path, body=None, headers=None, timeout_s=10.0):
        """One request on a fresh connection. body: bytes, or JSON-able data (sent as JSON).
        Returns a Response; raises OSError / http.client errors for a broken connection."""
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)
        finally:
            conn.close()

    def basic(self, email=None, token=None):
        """An Authorization header value for an API user (the first one by default)."""
        email = email or self.api_users[0][0]
        token = token if token is not None else self.api_users[0][1]
        return "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()

    @staticmethod
    def app_jwt(install, method, path, qsh=None, iat=None, exp_s=180, secret=None, iss=None):
        """An HS256 Connect JWT for an installed app (install: what install() returned) and a
        request path with its query."""
        parts = urlsplit(path)
        now = int(time.time()) if iat is None else iat
        claims = {"iss": iss or install["key"], "iat": now, "exp": now + exp_s,
                  "qsh": qsh or connect_qsh(method, parts.path, parts.query)}
        return jwt.encode(claims, secret or install["sharedSecret"], algorithm="HS256")

    def rest(self, method, path, body=None, headers=None, auth=None, app=None):
        """A Jira REST call: as the first API user (Basic) unless auth is given (a full
        Authorization value, or "" for none) or app is an installation (Connect JWT)."""
        headers = dict(headers or {})
        if app is not None:
            headers["Authorization"] = "JWT " + self.app_jwt(app, method, path)
        elif auth is None:
            headers["Authorization"] = self.basic()
        elif auth:
            headers["Authorization"] = auth
        return self.request(method, path, body, headers)

    def control(self, method, path, body=None):
        """A control API call; returns the parsed JSON, raising AssertionError for non-2xx."""
        resp = self.request(method, "/_sandbox/" + path.lstrip("/"), body)
        assert 200 <= resp.status < 300, f"{method} /_sandbox/{path}: {resp}"
        return resp.json

    # --- control API

    def issues(self):
        """Every issue with its comments (text as plain text) in creation order."""
        return self.control("GET", "issues")

    def issue(self, key):
        return next((i for i in self.issues() if i["key"] == key), None)

    def comment_as_agent(self, key, author_account_id, text, internal=False):
        """A human agent comments in Jira itself (fires comment_created)."""
        return self.control("POST", f"issues/{key}/comments",
                            {"author_account_id": author_account_id, "text": text,
                             "internal": internal})

    def add_user(self, email, display_name=None, kind="agent", api_token=None,
                 account_id=None):
        body = {"email": email, "kind": kind}
        for key, value in (("displayName", display_name), ("api_token", api_token),
                           ("accountId", account_id)):
            if value is not None:
                body[key] = value
        return self.control("POST", "users", body)

    def users(self):
        return self.control("GET", "users")

    def user_by_email(self, email):
        return next((u for u in self.users() if u["email"] == email), None)

    def add_project(self, key, issue_types=("Task",), name=None):
        return self.control("POST", "projects", {"key": key, "issue_types": list(issue_types),
                                                 "name": name})

    def add_faults(self, *rules):
        """Installs fault rules (see the README); returns all installed rules."""
        return self.control("POST", "faults", list(rules))

    def faults(self):
        return self.control("GET", "faults")

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def set_latency(self, ms):
        return self.control("POST", "latency", {"ms": ms})

    def requests(self, since=0, bodies=False):
        """{"records": [...], "bodies": [...] (when bodies)}: what the sandbox was asked."""
        return self.control("GET", f"requests?since={since}" + ("&bodies=1" if bodies else ""))

    def clear_requests(self):
        return self.control("DELETE", "requests")

    def reset(self, everything=False):
        return self.control("POST", "reset", {"all": everything})

    def install(self, descriptor_url, rotate_secret=False, client_key=None):
        """Installs a Connect app (as client_key when given, else a UUID); returns the
        installation (key, clientKey, sharedSecret, installed, app_status, ...)."""
        body = {"descriptor_url": descriptor_url, "rotate_secret": rotate_secret}
        if client_key is not None:
            body["client_key"] = client_key
        return self.control("POST", "connect/install", body)

    def uninstall(self, key):
        return self.control("POST", "connect/uninstall", {"key": key})

    def installations(self):
        return self.control("GET", "connect/installations")

    def install_key_pem(self, kid):
        resp = self.request("GET", f"/_sandbox/connect-install-keys/{kid}")
        assert resp.status == 200, resp
        return resp.raw

    def webhooks(self):
        return self.control("GET", "webhooks")

    def wait_for_webhooks(self, count, state="delivered", timeout_s=5.0):
        """Waits until count deliveries are in state; returns them."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [d for d in self.webhooks() if d["state"] == state]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"webhooks: {self.webhooks()}"
            time.sleep(0.02)

    # --- the spec

    _spec = None

    @staticmethod
    def module(name):
        """One of the sandbox's own modules (e.g. "spec_validation", "views")."""
        if JIRA_DIR not in sys.path:
            sys.path.insert(0, JIRA_DIR)
        return importlib.import_module(name)

    @classmethod
    def spec(cls):
        """The sandbox's Spec (spec_validation.Spec), loaded once per test process."""
        if cls._spec is None:
            spec_validation = cls.module("spec_validation")
            path = os.path.join(JIRA_DIR, "spec", "jira-platform-v3.openapi.json")
            cls._spec = spec_validation.Spec(path)
        return cls._spec

    @classmethod
    def validate_response(cls, method, path, status, body):
        """Messages for a reply body that breaks the spec's response schema ([] when valid)."""
        return cls.spec().validate_response(method, urlsplit(path).path, status, body)

    @classmethod
    def check_customer(cls, body):
        """Messages for a JSM customer reply without the documented shape ([] when fine): the
        platform spec has no schema for the service desk API."""
        return cls.module("views").check_customer_json(body)
