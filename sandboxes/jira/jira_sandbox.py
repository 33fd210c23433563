#!/usr/bin/python3
"""jira_sandbox.py - a local sandbox of Jira Cloud's REST API (platform v3, a bit of JSM and the
Atlassian Connect lifecycle), for Parley's tests and `make run`.

This file is the process: the command line, the HTTP/1.1 server (stdlib ThreadingHTTPServer,
keep-alive, a Content-Length on every reply, loopback only), and the path from bytes on a
socket to a handler: bounded request line, headers and body, per-connection read deadline,
fault injection, base latency, request records, one log line per request. What a request
means is decided in rest_api.py (Jira, with views.py for reply objects) and control_api.py
(/_sandbox/); spec_validation.py, connect_auth.py, connect_apps.py, store.py, faults.py,
adf.py, multipart.py and replies.py do one job each. See README.md.

Prints "listening http://127.0.0.1:<port>" on stdout once it serves (its listening address,
also with --public-url: the base URL it gives out when apps reach it by another name, as in a
container network, where a relay forwards to it: deploy/jira-sandbox/); logs to stderr, one line
per request (method, path, status, ms) and never a body or a query string. SIGTERM or SIGINT
stops it with exit status 0. Threads: one per connection, plus the webhook sender and the
read-deadline watchdog."""
import argparse
import ipaddress
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import connect_auth  # noqa: E402
from connect_apps import ConnectApps  # noqa: E402
from control_api import ControlApi  # noqa: E402
from faults import Faults  # noqa: E402
from replies import Reply, error_collection  # noqa: E402
from rest_api import JiraApi, Request  # noqa: E402
from spec_validation import Spec  # noqa: E402
from store import Store, StoreError  # noqa: E402

# A copy of ../shared/specs/jira-platform-v3.openapi.json (Apache-2.0, LICENSE.jira-swaggers
# beside it), kept in the repository so that a clone anywhere finds it.
DEFAULT_SPEC = os.path.join(HERE, "spec", "jira-platform-v3.openapi.json")
DEFAULT_PROJECT = "SUP:Task,[System] Service request,Support"
MAX_REQUEST_LINE = 8192
MAX_HEADER_BYTES = 32768
MAX_CHUNK_LINE = 1024
ATTACHMENT_PATH_SUFFIX = "/attachments"
MULTIPART_OVERHEAD = 64 * 1024
MAX_QUERY_FIELDS = 1000
MAX_KEPT_BODY_BYTES = 256 * 1024  # larger JSON bodies are not kept in the body list


def log(line):
    """Writes one log line to stderr; never raises."""
    try:
        sys.stderr.write(f"jira-sandbox: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _printable(text, limit=200):
    return "".join(c if 32 < ord(c) < 127 else "%%%02X" % (ord(c) & 0xFF)
                   for c in text[:limit])


def _log_crash(error):
    """Logs where a handler failed: the exception type and the innermost frames' file:line,
    not its message (which could quote request data)."""
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(frames))
    log(f"level=error event=handler_crash error={type(error).__name__} at={where}")


class Sandbox:
    """Everything one sandbox process holds; the HTTP handler calls serve()."""

    def __init__(self, config):
        self.config = config
        self.spec = Spec(config.spec)
        self.store = Store()
        self.faults = Faults()
        self.keys = connect_auth.InstallKeys()
        self.latency_ms = config.latency_ms
        self.base_url = None
        self.apps = self.api = self.control = None
        for item in config.project:
            key, _, types = item.partition(":")
            self.store.add_project(key.strip(), [t.strip() for t in types.split(",")
                                                 if t.strip()] or ["Task"], permanent=True)
        for item in config.api_user:
            email, _, rest = item.partition(":")
            token, _, account_id = rest.partition(":")
            self.store.add_user("agent", email, email.split("@")[0], account_id or None, token,
                                permanent=True)

    def bind(self, base_url):
        """Finishes set-up once the listening address (and so the base URL) is known."""
        self.base_url = base_url
        self.apps = ConnectApps(self.store, self.keys, base_url, log)
        self.api = JiraApi(self.spec, self.store, self.apps, base_url,
                           self.config.max_attachment_bytes)
        self.control = ControlApi(self)

    def body_limit(self, raw_path):
        if raw_path.endswith(ATTACHMENT_PATH_SUFFIX):
            return self.config.max_attachment_bytes + MULTIPART_OVERHEAD
        return self.config.max_body_bytes

    def serve(self, h, body):
        """Answers the request the handler h has read (body: its bytes)."""
        raw_path, _, raw_query = h.path.partition("?")
        query_bytes = raw_query.encode("latin-1", "replace")
        try:
            query = parse_qs(raw_query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:
            h.close_connection = True
            return h.reply(error_collection(400, [f"more than {MAX_QUERY_FIELDS} query "
                                                  "parameters"]))
        req = Request(h.command, raw_path, query_bytes, query, h.headers, body)
        if raw_path == "/healthz":
            return h.reply(Reply(200, b"ok", content_type="text/plain"))
        if raw_path == "/_sandbox" or raw_path.startswith("/_sandbox/"):
            try:
                return h.reply(self.control.handle(req))
            except Exception as e:  # a bug: answer 500, keep serving
                _log_crash(e)
                return h.reply(Reply(500, {"error": "sandbox bug; see its log"}))
        rec = {"time": time.time(), "method": h.command, "path": raw_path,
               "query": {k: v for k, v in query.items() if k != "jwt"},
               "content_type": h.headers.get("Content-Type"), "operation": None,
               "valid": None, "errors": [], "auth": None, "tenant": None, "account_id": None,
               "status": None, "fault": None}
        rule = self.faults.take(h.command, raw_path)
        if rule is not None:
            rec["fault"] = {"action": rule.action, "status": rule.status, "after": rule.after}
        try:
            if rule is not None and not rule.after and self._fault(h, rule, rec):
                return
            if raw_path.startswith("/rest/") and self.latency_ms:
                time.sleep(self.latency_ms / 1000)
            try:
                reply = self.api.handle(req, rec)
            except Exception as e:  # a bug: answer 500, keep serving
                _log_crash(e)
                reply = error_collection(500, ["Internal server error (sandbox bug)."])
            if req.op is not None and reply.is_json:
                rec["response_errors"] = self.spec.validate_operation_response(
                    req.op, reply.status, reply.body)
            if rule is not None and rule.after and self._fault(h, rule, rec):
                return
            rec["status"] = reply.status
            # Recorded before the reply leaves, so that a client reading the records right
            # after its answer finds its request there.
            self._record(h, req, body, rec)
            h.reply(reply)
        finally:
            if "seq" not in rec:
                self._record(h, req, body, rec)

    def _record(self, h, req, body, rec):
        rec["ms"] = round((time.monotonic() - h.started) * 1000, 1)
        kept = req.json
        if kept is not None and len(body) > MAX_KEPT_BODY_BYTES:
            kept = {"_omitted": f"a body of {len(body)} bytes is not kept"}
        self.store.record(rec, kept)

    def _fault(self, h, rule, rec):
        """Applies a fault rule. Returns True when it answered (or dropped) the request, False
        for a delay (the request goes on)."""
        if rule.action == "delay":
            time.sleep(rule.delay_ms / 1000)
            return False
        if rule.action == "status":
            messages = {429: "Rate limit exceeded.", 500: "Internal server error",
                        502: "Bad gateway", 503: "Service unavailable", 504: "Gateway timeout"}
            headers = {}
            if rule.status == 429 or rule.retry_after_s is not None:
                retry = rule.retry_after_s if rule.retry_after_s is not None else 1
                headers["Retry-After"] = str(int(retry) if float(retry).is_integer() else retry)
            if rule.status == 429:
                headers.update({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                                "RateLimit-Reason": "jira-burst-based"})
            reply = error_collection(rule.status, [messages[rule.status]], headers=headers)
            h.reply(reply)
            rec["status"] = rule.status
            return True
        if rule.action == "drop":
            h.close_connection = True
            rec["status"] = 0
            return True
        # reset: a reply that promises more than it sends, then a TCP RST
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n"
                b"Content-Length: 4096\r\n\r\n")
        try:
            h.wfile.write(head + b'{"id":"')
            h.wfile.flush()
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
        except OSError:
            pass
        h.close_connection = True
        rec["status"] = 0
        return True


class Watchdog:
    """Closes connections that spend longer than timeout_s reading one request (the request
    line, headers and body together, and the idle time before them): a slow client cannot
    hold a thread for ever by trickling bytes."""

    def __init__(self, timeout_s):
        self.timeout_s = timeout_s
        self._reading = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="watchdog", daemon=True).start()

    def reading(self, handler):
        with self._lock:
            self._reading[handler] = time.monotonic()

    def done(self, handler):
        with self._lock:
            self._reading.pop(handler, None)

    def _run(self):
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            with self._lock:  # under the lock: done() cannot race with the shutdown
                for h in [h for h, t in self._reading.items() if now - t > self.timeout_s]:
                    del self._reading[h]
                    try:
                        h.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux).
    disable_nagle_algorithm = True
    server_version = "jira-sandbox/1.0"
    sys_version = ""
    default_request_version = "HTTP/1.1"  # error replies to garbage still get a status line

    def setup(self):
        self.timeout = self.server.sandbox.config.read_timeout_s
        super().setup()

    def finish(self):
        self.server.watchdog.done(self)
        try:
            super().finish()
        except OSError:
            pass

    def handle_one_request(self):
        sandbox, watchdog = self.server.sandbox, self.server.watchdog
        watchdog.reading(self)
        self.started = time.monotonic()
        self.command, self.request_version = "", "HTTP/1.1"
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.started = time.monotonic()
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline, self.request_version = "", "HTTP/1.1"
                self.send_error(414)
                return
            if not self.parse_request():
                self.close_connection = True
                return
            size = sum(len(k) + len(v) + 4 for k, v in self.headers.items())
            if size > MAX_HEADER_BYTES:
                self.send_error(431, explain=f"headers exceed {MAX_HEADER_BYTES} bytes")
                return
            body = self._read_body(sandbox.body_limit(self.path.partition("?")[0]))
            if body is None:
                return
            watchdog.done(self)
            sandbox.serve(self, body)
            self.wfile.flush()
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True
        finally:
            watchdog.done(self)
            if self.command or getattr(self, "reply_status", None) is not None:
                self.log_line()

    def handle_expect_100(self):
        limit = self.server.sandbox.body_limit(self.path.partition("?")[0])
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            self.send_error(413, explain=f"the body exceeds {limit} bytes")
            return False
        return super().handle_expect_100()

    def _read_body(self, limit):
        """The request body, or None after answering an error (connection then closed)."""
        if self.headers.get("Transfer-Encoding"):
            if self.headers.get("Transfer-Encoding", "").strip().lower() != "chunked" or \
                    self.headers.get("Content-Length"):
                self.send_error(400, explain="only Transfer-Encoding: chunked, without "
                                             "Content-Length, is supported")
                return None
            return self._read_chunked(limit)
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return b""
        if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
            self.send_error(400, explain="bad Content-Length")
            return None
        length = int(lengths[0])
        if length > limit:
            self.send_error(413, explain=f"the body exceeds {limit} bytes")
            return None
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            return None
        return data

    def _read_chunked(self, limit):
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not size_text or \
                    any(c not in b"0123456789abcdefABCDEF" for c in size_text) or \
                    len(size_text) > 16:
                self.send_error(400, explain="bad chunk size line")
                return None
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > limit:
                self.send_error(413, explain=f"the body exceeds {limit} bytes")
                return None
            data = self.rfile.read(size)
            if len(data) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                self.send_error(400, explain="truncated chunk")
                return None
            chunks.append(data)
        for _ in range(100):  # trailers, ignored
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                return b"".join(chunks)
        self.send_error(400, explain="too many trailer lines")
        return None

    def reply(self, reply):
        """Sends a Reply with its Content-Length (no body for HEAD, 204 and 304)."""
        data = reply.encode()
        self.reply_status = reply.status
        self.send_response(reply.status)
        if reply.status not in (204, 304):
            if data or reply.body is not None:
                self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """Protocol errors: Jira's ErrorCollection as JSON, then the connection closes."""
        self.close_connection = True
        reason = explain or message or self.responses.get(code, ("Error",))[0]
        try:
            self.reply(error_collection(code, [reason]))
        except OSError:
            pass

    def log_line(self):
        status = getattr(self, "reply_status", None)
        ms = (time.monotonic() - self.started) * 1000
        path = (self.path if hasattr(self, "path") else "").partition("?")[0]
        log(f"method={_printable(self.command or '-')} path={_printable(path) or '-'} "
            f"status={status if status is not None else 'none'} ms={ms:.1f}")
        self.reply_status = None

    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        _log_crash(sys.exc_info()[1])


def parse_args(argv):
    p = argparse.ArgumentParser(description="Local sandbox of the Jira Cloud REST API.")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    p.add_argument("--spec", default=DEFAULT_SPEC, help="Jira platform OpenAPI 3.0 JSON")
    p.add_argument("--project", action="append", default=[],
                   help="KEY[:IssueType,...] (repeatable; default " + DEFAULT_PROJECT + ")")
    p.add_argument("--api-user", action="append", default=[],
                   help="EMAIL:TOKEN[:ACCOUNT_ID] an agent who may call with Basic auth")
    p.add_argument("--latency-ms", type=float, default=0, help="base latency of /rest/ calls")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest JSON body")
    p.add_argument("--max-attachment-bytes", type=int, default=10 << 20,
                   help="largest attachment file")
    p.add_argument("--read-timeout-s", type=float, default=10.0,
                   help="time a client has to send one request")
    p.add_argument("--public-url", default="",
                   help="base URL the sandbox gives out (install hooks, self links) when apps "
                        "reach it under another name; default: its listening address")
    args = p.parse_args(argv)
    args.project = args.project or [DEFAULT_PROJECT]
    try:
        if not ipaddress.ip_address(args.host).is_loopback:
            p.error("--host must be a loopback address")
    except ValueError:
        p.error("--host must be an IP address")
    for item in args.api_user:
        if item.count(":") < 1 or not item.partition(":")[0] or not item.split(":")[1]:
            p.error(f"--api-user {item.split(':')[0]}: expected EMAIL:TOKEN[:ACCOUNT_ID]")
    for item in args.project:
        key = item.partition(":")[0].strip()
        if not key or not key[0].isalpha() or not key.replace("_", "").isalnum() or \
                not key.isupper():
            p.error(f"--project {item}: bad project key")
    if not 0 < args.read_timeout_s <= 600:
        p.error("--read-timeout-s must be in (0, 600]")
    if args.public_url:
        parts = urlsplit(args.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or \
                parts.path not in ("", "/") or parts.query or parts.fragment:
            p.error("--public-url must be http(s)://HOST[:PORT] (no path: the sandbox has no "
                    "context path)")
        args.public_url = args.public_url.rstrip("/")
    return args


def main(argv=None):
    config = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isfile(config.spec):
        log(f"level=fatal event=spec_missing path={config.spec} (pass --spec PATH)")
        return 2
    try:
        sandbox = Sandbox(config)
    except (OSError, ValueError, StoreError) as e:
        log(f"level=fatal event=start_failed error={type(e).__name__}: {e}")
        return 2
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    Server.address_family = family
    try:
        server = Server((config.host, config.port), Handler)
    except OSError as e:
        log(f"level=fatal event=bind_failed host={config.host} port={config.port} errno={e.errno}")
        return 1
    host, port = server.server_address[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    listening = f"http://{shown}:{port}"
    sandbox.bind(config.public_url or listening)
    server.sandbox = sandbox
    server.watchdog = Watchdog(config.read_timeout_s)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"level=info event=start base_url={sandbox.base_url} projects="
        f"{','.join(p['key'] for p in sandbox.store.projects())} spec={config.spec}")
    print(f"listening {listening}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        sandbox.apps.stop()
    log("level=info event=stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
