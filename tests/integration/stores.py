"""Real store servers for integration tests: Redis, dynalite (the DynamoDB API) and a proxy that
checks AWS Signature Version 4 the way AWS does before a request reaches dynalite.

Each server listens on a 127.0.0.1 port chosen when the object is made and keeps that port across
stop()/start(), so a test can take a store away and bring it back (an outage) while the client
under test keeps its configured address. start() returns only when the server answers; stop()
ends it with SIGTERM (SIGKILL after a grace period) and never leaves a process behind.

dynalite accepts any signature, so on its own it cannot catch a signing bug. SigV4Proxy sits in
front of it: it recomputes every request's signature with botocore's canonical-request code (an
implementation independent of libcurl's), refuses what AWS would refuse with a DynamoDB-style 403,
and forwards the rest unchanged. It also injects faults (error replies, delays, dropped
connections) so that retry paths can be driven on purpose.

GarbageServer is the opposite of a store: it answers every request with bytes no store would
send (random bytes, truncated or absurd RESP, broken HTTP, a banner, a never-ending trickle), or
relays to a real one, so that tests can check that the clients fail cleanly and recover.

Threads: SigV4Proxy and GarbageServer serve each client connection on its own thread; their
counters (and the proxy's fault queue) are guarded by a lock and may be read or set from the
test's thread at any time. The
server classes are meant to be driven from one thread. Nothing here is a test by itself; the
fixtures that use it are in conftest.py (GarbageServer's are in the tests that use it).
"""
import ctypes
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DYNALITE = os.path.join(ROOT, "node_modules", ".bin", "dynalite")

# Headers that describe one hop of a connection, not the request; never forwarded or relayed.
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "expect"))
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_SKEW_S = 15 * 60
DYNAMO_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
CORAL_ERROR_PREFIX = "com.amazon.coral.service#"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in the child before exec: SIGTERM it when the test process dies (even by SIGKILL),
    so that no server outlives an aborted test run (Linux prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _wait_until(predicate, timeout_s, what, alive=lambda: True, log=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError(f"{what}: the process exited while starting:\n{log()[-3000:]}")
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}:\n{log()[-3000:]}")


class ServerProcess:
    """A server child process on a fixed 127.0.0.1 port, with its output appended to one log
    file across restarts. Subclasses say how to run it (argv) and how to tell that it answers
    (answers)."""

    name = "server"

    def __init__(self, log_dir, port=None):
        self.port = port or free_port()
        self.log_path = os.path.join(log_dir, f"{self.name}-{self.port}.log")
        self.proc = None
        self.starts = 0

    def argv(self):
        raise NotImplementedError

    def answers(self):
        raise NotImplementedError

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s=10.0):
        """Starts the server and waits until it answers. Raises AssertionError (with the log's
        tail) when it exits or stays silent."""
        assert not self.running, f"{self.name} on port {self.port} is already running"
        with open(self.log_path, "ab") as log:
            log.write(f"=== start {self.starts + 1}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=ROOT,
                                         preexec_fn=_die_with_parent)
        self.starts += 1
        try:
            _wait_until(self.answers, timeout_s, f"{self.name} on 127.0.0.1:{self.port}",
                        alive=lambda: self.running, log=self.text)
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout_s=5.0):
        """Stops the server (SIGTERM, then SIGKILL after timeout_s) and returns its exit code,
        or None when it was not running. Never raises for a process that refuses to die."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self):
        """Ends the server with SIGKILL, as a crash would."""
        if self.running:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, down_s=0.0):
        """Stops the server, leaves the port closed for down_s seconds, starts it again on the
        same port."""
        self.stop()
        if down_s:
            time.sleep(down_s)
        return self.start()

    def freeze(self):
        """Stops the process with SIGSTOP: connections are still accepted by the kernel but
        nothing is answered (a hung server). thaw() resumes it."""
        assert self.running
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        if self.running:
            self.proc.send_signal(signal.SIGCONT)

    def text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start() if not self.running else self

    def __exit__(self, *exc):
        self.stop()


class RedisServer(ServerProcess):
    """redis-server in memory (no RDB, no AOF) on 127.0.0.1; url is what PARLEY_REDIS_URL
    takes."""

    name = "redis"

    def argv(self):
        return ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--protected-mode", "yes"]

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def env(self):
        return {"PARLEY_REDIS_URL": self.url}

    def answers(self):
        try:
            return self.command("PING", timeout_s=0.5) == "PONG"
        except (OSError, RedisError):
            return False

    def command(self, *args, timeout_s=5.0):
        """Runs one command on a fresh connection and returns the reply: str for simple
        strings, bytes for bulk strings, int, list, or None. An error reply raises RedisError;
        a connection failure raises OSError. Independent of hiredis, to check what the C
        client wrote."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s) as s:
            s.sendall(resp_encode(args))
            reader = s.makefile("rb")
            return resp_read(reader)


class RedisError(Exception):
    pass


def resp_encode(args):
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def resp_read(reader):
    """Reads one RESP2 reply from a binary file object."""
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise OSError("connection closed in the middle of a reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(reader) for _ in range(n)]
    raise RedisError(f"not RESP: {line!r}")


class Dynalite(ServerProcess):
    """dynalite (the DynamoDB API) on 127.0.0.1, tables ACTIVE at once. In memory by default,
    so a restart loses every table; with path=DIR the data lives in LevelDB under DIR and
    survives stop()/start()."""

    name = "dynalite"

    def __init__(self, log_dir, port=None, path=None):
        super().__init__(log_dir, port)
        self.path = path
        if not os.access(DYNALITE, os.X_OK):
            raise AssertionError(f"{DYNALITE} is missing: run scripts/deps.sh (npm ci)")

    def argv(self):
        argv = [DYNALITE, "--host", "127.0.0.1", "--port", str(self.port),
                "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        if self.path:
            argv += ["--path", self.path]
        return argv

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def answers(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=0.5)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()


@dataclass
class Fault:
    """What the proxy does to the next `count` signed requests that match `operation` (the
    X-Amz-Target after the dot, or None for any request).

    kind "respond": answer status/body at once, without forwarding.
    kind "delay": forward, then wait delay_s before relaying the answer.
    kind "drop": close the connection without answering; with forward=True the backend gets
    (and applies) the request first, as when a reply is lost on the way back."""

    kind: str
    count: int = 1
    operation: str = None
    status: int = 500
    body: bytes = b""
    content_type: str = "application/x-amz-json-1.0"
    delay_s: float = 0.0
    forward: bool = False


@dataclass
class RequestRecord:
    """One request the proxy read: outcome is "forwarded", "rejected", "injected", "delayed",
    "dropped" or "backend_error"; reason says why a request was rejected.

    For a BatchWriteItem, keys holds the (pk, sk) of each PutRequest item and DeleteRequest key
    in the order sent (string attributes; None for an attribute that is absent or not a
    string). forwarded_at is the wall-clock time (time.time()) at which the request was sent
    on to the backend, or None when it never was."""

    method: str
    path: str
    operation: str
    outcome: str
    status: int = 0
    reason: str = ""
    signed_headers: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    forwarded_at: float = None


def batch_write_keys(body):
    """The (pk, sk) of every PutRequest and DeleteRequest of a BatchWriteItem body (bytes), over
    every table, in order. A body that is not such a request gives []."""
    try:
        request = json.loads(body)
        tables = request.get("RequestItems") or {}
        keys = []
        for writes in tables.values():
            for write in writes:
                fields = (write.get("PutRequest") or {}).get("Item") or \
                    (write.get("DeleteRequest") or {}).get("Key") or {}
                keys.append(tuple((fields.get(name) or {}).get("S") for name in ("pk", "sk")))
        return keys
    except (ValueError, AttributeError, TypeError):
        return []


class _ExactSignedHeaders:
    """botocore's canonical request, but over exactly the headers the client listed in
    SignedHeaders with the values it sent (botocore as a client leaves out expect and
    user-agent; a server must use what it was told)."""

    def __init__(self, credentials, service, region, signed):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request):
        return self._signed


class _Signer(_ExactSignedHeaders, SigV4Auth):
    pass


class _S3Signer(_ExactSignedHeaders, S3SigV4Auth):
    pass


class _Rejection(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class SigV4Proxy:
    """An HTTP/1.1 reverse proxy on 127.0.0.1 that lets through only requests signed with
    Signature Version 4 by access_key/secret_key for region and service, and relays them to
    backend_url unchanged.

    Refused (403, DynamoDB-style JSON body, or S3-style XML when service is "s3"): no
    Authorization header, a malformed one, another access key, another region or service, a
    signed header that is absent, host or x-amz-date left unsigned, x-amz-date more than 15
    minutes from now, x-amz-content-sha256 that is not the body's hash, a wrong signature.
    The message of a wrong signature carries the canonical request and string to sign the
    proxy expected, as AWS's does.

    Counters (read at any time): accepted, rejected, faults_injected, connections (TCP
    connections clients opened; keep-alive reuse shows as fewer connections than requests),
    backend_errors, and records, one RequestRecord per request (written_keys() lists what the
    BatchWriteItem requests among them wrote)."""

    def __init__(self, backend_url, access_key="AKIDEXAMPLE", secret_key="secret",
                 region="eu-west-1", service="dynamodb", session_token=None, port=None,
                 backend_timeout_s=10.0):
        host_port = backend_url.split("://", 1)[-1].rstrip("/")
        self.backend_host, _, backend_port = host_port.partition(":")
        self.backend_port = int(backend_port or 80)
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service
        self.session_token = session_token
        self.backend_timeout_s = backend_timeout_s
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._faults = []
        self._clients = set()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.accepted = 0
        self.rejected = 0
        self.faults_injected = 0
        self.connections = 0
        self.backend_errors = 0
        self.records = []

    # --- configuration the client under test needs

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self):
        """Environment for Parley's DynamoDB client (common/dynamo.c option names)."""
        env = {"PARLEY_DYNAMO_ENDPOINT": self.url, "AWS_REGION": self.region,
               "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    # --- life cycle

    @property
    def running(self):
        return self._server is not None

    def start(self):
        """Listens on 127.0.0.1:port (the same port after a stop()) and serves in a thread."""
        assert not self.running
        self._stopping.clear()
        self._server = _ProxyServer(("127.0.0.1", self.port), self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"sigv4-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops listening, closes every client connection (interrupting delays) and waits for
        the connection threads. Safe to call twice."""
        if not self.running:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- fault injection

    def inject(self, fault):
        """Queues a Fault; faults apply in the order they were queued."""
        assert fault.kind in ("respond", "delay", "drop"), fault.kind
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail_next(self, count=1, status=500, error_type=None, message="injected fault",
                  body=None, operation=None):
        """Answers the next count requests with status and a DynamoDB error body for
        error_type (default InternalServerError for 5xx), or with body (bytes or a dict)."""
        if body is None:
            error_type = error_type or ("InternalServerError" if status >= 500 else
                                        "ValidationException")
            body = {"__type": DYNAMO_ERROR_PREFIX + error_type, "message": message}
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        return self.inject(Fault("respond", count=count, status=status, body=body,
                                 operation=operation))

    def throttle_next(self, count=1, operation=None):
        """Answers the next count requests 400 ThrottlingException, as DynamoDB does when a
        table or account is over its request rate."""
        body = {"__type": "com.amazon.coral.availability#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput."}
        return self.fail_next(count, 400, body=body, operation=operation)

    def delay_next(self, delay_s, count=1, operation=None):
        """Forwards the next count requests but waits delay_s before relaying each answer."""
        return self.inject(Fault("delay", count=count, delay_s=delay_s, operation=operation))

    def drop_next(self, count=1, forward=False, operation=None):
        """Closes the connection instead of answering the next count requests; with
        forward=True the backend has applied each request before its answer is lost."""
        return self.inject(Fault("drop", count=count, forward=forward, operation=operation))

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def pending_faults(self):
        with self._lock:
            return sum(f.count for f in self._faults)

    def operations(self, outcome=None):
        """The X-Amz-Target operations of the requests seen, in order (optionally only those
        with that outcome)."""
        with self._lock:
            return [r.operation for r in self.records if outcome in (None, r.outcome)]

    def written_keys(self):
        """(forwarded_at, pk, sk) of every PutRequest and DeleteRequest in the BatchWriteItem
        requests sent on to the backend, in the order they were forwarded."""
        with self._lock:
            records = [r for r in self.records
                       if r.operation == "BatchWriteItem" and r.forwarded_at is not None]
        records.sort(key=lambda r: r.forwarded_at)
        return [(r.forwarded_at, pk, sk) for r in records for pk, sk in r.keys]

    def _take_fault(self, operation):
        with self._lock:
            fault = next((f for f in self._faults if f.operation in (None, operation)), None)
            if fault is None:
                return None
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)
            self.faults_injected += 1
            return fault

    def _record(self, record, counter=None):
        with self._lock:
            self.records.append(record)
            if counter:
                setattr(self, counter, getattr(self, counter) + 1)

    # --- signature verification

    def verify(self, method, target, headers, body):
        """Checks one request's Signature Version 4. Returns the SignedHeaders list, or raises
        _Rejection with an AWS error type and message."""
        auth_values = headers.get_all("Authorization") or []
        if not auth_values:
            raise _Rejection("MissingAuthenticationTokenException",
                             "Request is missing Authentication Token")
        if len(auth_values) > 1:
            raise _Rejection("IncompleteSignatureException", "more than one Authorization header")
        algorithm, _, rest = auth_values[0].strip().partition(" ")
        if algorithm != "AWS4-HMAC-SHA256":
            raise _Rejection("IncompleteSignatureException",
                             f"Unsupported AWS 'algorithm': '{algorithm}'")
        parts = {}
        for item in rest.split(","):
            key, eq, value = item.strip().partition("=")
            if not eq or key in parts:
                raise _Rejection("IncompleteSignatureException",
                                 f"Authorization header is malformed near '{item.strip()}'")
            parts[key] = value
        missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in parts]
        if missing:
            raise _Rejection("IncompleteSignatureException",
                             f"Authorization header requires {', '.join(missing)}")
        scope = parts["Credential"].split("/")
        if len(scope) != 5:
            raise _Rejection("IncompleteSignatureException",
                             f"Credential is malformed: '{parts['Credential']}'")
        access_key, scope_date, region, service, terminator = scope
        if access_key != self.access_key:
            raise _Rejection("UnrecognizedClientException",
                             "The security token included in the request is invalid.")
        if region != self.region:
            raise _Rejection("InvalidSignatureException",
                             f"Credential should be scoped to a valid region, not '{region}'.")
        if service != self.service:
            raise _Rejection("InvalidSignatureException",
                             f"Credential should be scoped to correct service: '{self.service}'.")
        if terminator != "aws4_request":
            raise _Rejection("InvalidSignatureException",
                             "Credential should be scoped with a valid terminator: "
                             "'aws4_request'.")
        signed_names = parts["SignedHeaders"].split(";")
        if not all(signed_names):
            raise _Rejection("IncompleteSignatureException",
                             f"SignedHeaders is malformed: '{parts['SignedHeaders']}'")
        for required in ("host", "x-amz-date"):
            if required not in signed_names:
                raise _Rejection("InvalidSignatureException",
                                 f"'{required}' must be a 'SignedHeader' in the AWS "
                                 "Authorization.")
        signed = HTTPHeaders()
        for name in signed_names:
            values = headers.get_all(name)
            if not values:
                raise _Rejection("IncompleteSignatureException",
                                 f"'{name}' is named as a SignedHeader, but it does not exist "
                                 "in the HTTP request.")
            for value in values:
                signed[name] = value
        amz_date = headers["x-amz-date"].strip()
        try:
            when = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise _Rejection("IncompleteSignatureException",
                             f"X-Amz-Date must be in the ISO8601 basic format: '{amz_date}'")
        if scope_date != amz_date[:8]:
            raise _Rejection("InvalidSignatureException",
                             f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                             f"version of date from HTTP: '{scope_date}' != '{amz_date[:8]}'")
        skew_s = time.time() - when.timestamp()
        if abs(skew_s) > MAX_SKEW_S:
            raise _Rejection("InvalidSignatureException",
                             f"Signature expired or not yet current: {amz_date} is "
                             f"{skew_s:+.0f}s from now (limit 15 min).")
        if self.session_token is not None and headers.get("x-amz-security-token") != \
                self.session_token:
            raise _Rejection("UnrecognizedClientException",
                             "The security token included in the request is invalid.")
        content_sha = headers.get("x-amz-content-sha256")
        if content_sha and len(content_sha) == 64 and \
                content_sha.lower() != hashlib.sha256(body).hexdigest():
            raise _Rejection("XAmzContentSHA256Mismatch" if self.service == "s3"
                             else "InvalidSignatureException",
                             "The provided 'x-amz-content-sha256' header does not match what "
                             "was computed.")

        path, _, query = target.partition("?")
        params = []
        for pair in query.split("&") if query else []:
            key, _, value = pair.partition("=")
            params.append((unquote(key), unquote(value)))
        if self.service == "s3":
            # S3 signs the path encoded once; the other services encode the encoded path again
            # (botocore's SigV4Auth does that, S3SigV4Auth does not).
            path = "/".join(quote(unquote(seg), safe="~") for seg in path.split("/"))
            signer_class = _S3Signer
        else:
            signer_class = _Signer
        host = headers.get("host", "127.0.0.1")
        request_headers = {}
        if "x-amz-content-sha256" in signed_names:
            request_headers["X-Amz-Content-SHA256"] = headers["x-amz-content-sha256"]
        request = AWSRequest(method=method, url=f"http://{host}{path}", data=body,
                             params=params, headers=request_headers)
        request.context["timestamp"] = amz_date
        credentials = Credentials(self.access_key, self.secret_key, self.session_token)
        signer = signer_class(credentials, self.service, self.region, signed)
        canonical = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, parts["Signature"]):
            raise _Rejection("InvalidSignatureException",
                             "The request signature we calculated does not match the signature "
                             "you provided. Check your AWS Secret Access Key and signing method."
                             f"\n\nThe Canonical String for this request should have been\n"
                             f"'{canonical}'\n\nThe String-to-Sign should have been\n"
                             f"'{string_to_sign}'\n")
        return signed_names

    def error_body(self, error_type, message):
        """An error reply body and its content type in the style of the service."""
        if self.service == "s3":
            code = {"InvalidSignatureException": "SignatureDoesNotMatch",
                    "UnrecognizedClientException": "InvalidAccessKeyId",
                    "MissingAuthenticationTokenException": "AccessDenied",
                    "IncompleteSignatureException": "AuthorizationHeaderMalformed"}.get(
                        error_type, error_type)
            text = (message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                    f"<Message>{text}</Message></Error>")
            return body.encode(), "application/xml"
        body = {"__type": CORAL_ERROR_PREFIX + error_type, "message": message}
        return json.dumps(body).encode(), "application/x-amz-json-1.0"

    def forward(self, method, target, header_items, body):
        """Sends the request to the backend on a fresh connection. Returns (status, reason,
        headers, body), or None when the backend cannot be reached or fails mid-reply."""
        conn = http.client.HTTPConnection(self.backend_host, self.backend_port,
                                          timeout=self.backend_timeout_s)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in header_items:
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, proxy):
        self.proxy = proxy
        super().__init__(address, _ProxyHandler)

    def server_bind(self):
        # HTTPServer.server_bind would look the host name up (getfqdn), which can be slow.
        http.server.socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """One client connection: requests are read, checked and answered in turn (HTTP/1.1
    keep-alive) until the client closes, asks for close, or the proxy drops it."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end after this

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # holds the body until the client's delayed ACK (40 ms) for every reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        proxy = self.server.proxy
        with proxy._lock:
            proxy._clients.add(self.connection)
            proxy.connections += 1

    def finish(self):
        proxy = self.server.proxy
        with proxy._lock:
            proxy._clients.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):
        pass  # the records say what happened

    def _serve(self):
        proxy = self.server.proxy
        method, target = self.command, self.path
        amz_target = self.headers.get("X-Amz-Target", "")
        operation = amz_target.rpartition(".")[2] if amz_target else ""
        record = RequestRecord(method, target.partition("?")[0], operation, "")
        if "transfer-encoding" in self.headers:
            record.outcome, record.reason = "rejected", "chunked request bodies are not supported"
            proxy._record(record, "rejected")
            self.close_connection = True
            return self._reply(411, b"", "text/plain", record)
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if length < 0:
                raise ValueError
        except ValueError:
            record.outcome, record.reason = "rejected", "bad Content-Length"
            proxy._record(record, "rejected")
            self.close_connection = True
            return self._reply(400, b"", "text/plain", record)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            self.close_connection = True
            return
        try:
            record.signed_headers = proxy.verify(method, target, self.headers, body)
        except _Rejection as rejection:
            record.outcome = "rejected"
            record.reason = f"{rejection.error_type}: {rejection.message}"
            proxy._record(record, "rejected")
            data, content_type = proxy.error_body(rejection.error_type, rejection.message)
            return self._reply(403, data, content_type, record)
        with proxy._lock:
            proxy.accepted += 1
        if operation == "BatchWriteItem":
            record.keys = batch_write_keys(body)
        fault = proxy._take_fault(operation)
        if fault and fault.kind == "respond":
            record.outcome = "injected"
            proxy._record(record)
            return self._reply(fault.status, fault.body, fault.content_type, record)
        if fault and fault.kind == "drop" and not fault.forward:
            record.outcome = "dropped"
            proxy._record(record)
            return self._drop()
        record.forwarded_at = time.time()
        answer = proxy.forward(method, target, self.headers.items(), body)
        if answer is None:
            record.outcome = "backend_error"
            proxy._record(record, "backend_errors")
            return self._drop()
        if fault and fault.kind == "drop":
            record.outcome, record.status = "dropped", answer[0]
            proxy._record(record)
            return self._drop()
        if fault and fault.kind == "delay":
            record.outcome = "delayed"
            if proxy._stopping.wait(fault.delay_s):
                return self._drop()
        else:
            record.outcome = "forwarded"
        status, reason, headers, data = answer
        record.status = status
        proxy._record(record)
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        if method == "HEAD":
            for name, value in headers:
                if name.lower() == "content-length":
                    self.send_header(name, value)
        elif not no_body:
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not no_body:
            self.wfile.write(data)

    def _reply(self, status, data, content_type, record):
        record.status = status
        self.send_response_only(status)
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex.upper())
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve


class GarbageServer:
    """A TCP server on 127.0.0.1 that answers every request with garbage, to check that a store
    client fails cleanly (an error, not a crash or a hang) on replies it cannot trust.

    kind says what every request gets; it may be changed at any time and applies from the next
    connection or request on:

      random           random bytes (never starting like RESP or HTTP); the connection stays
      resp_truncated   a RESP array cut off in its second element, then close
      resp_huge_array  "*2147483647\\r\\n" (an array of 2^31-1 elements), then silence
      resp_huge_bulk   a bulk string declaring 2^31-1 bytes and a few of them, then close
      http_not_json    HTTP/1.1 200 whose body is not JSON
      http_json_array  HTTP/1.1 200 whose body is JSON but not an object
      http_short_body  HTTP/1.1 200 declaring a 1 TiB body, a few bytes of it, then close
      http_500_garbage HTTP/1.1 500 whose body is not JSON
      banner           an SSH banner as soon as a client connects, and to every request
      trickle          the start of a reply that never ends, one byte every 50 ms (RESP to a
                       RESP request, HTTP to anything else)
      close            every connection closed as soon as it is accepted
      relay            bytes passed unchanged to and from relay_to=(host, port): a healthy store

    Threads: one per connection (two for relay). Counters connections and requests may be read
    from any thread."""

    KINDS = ("random", "resp_truncated", "resp_huge_array", "resp_huge_bulk", "http_not_json",
             "http_json_array", "http_short_body", "http_500_garbage", "banner", "trickle",
             "close", "relay")
    BANNER = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"

    def __init__(self, kind="random", relay_to=None, port=None, seed=1):
        assert kind in self.KINDS, kind
        self.kind = kind
        self.relay_to = relay_to
        self.port = port or free_port()
        self.connections = 0
        self.requests = 0
        self._seed = seed
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sockets = set()
        self._listener = None
        self._thread = None

    @property
    def redis_url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        assert self._listener is None
        self._stopping.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"garbage-{self.port}")
        self._thread.start()
        return self

    def stop(self):
        """Stops listening and closes every connection. Safe to call twice."""
        if self._listener is None:
            return
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        self._listener = None
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        count = 0
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            count += 1
            with self._lock:
                self.connections += 1
                self._sockets.add(sock)
            threading.Thread(target=self._serve, args=(sock, self._seed * 100003 + count),
                             daemon=True).start()

    def _read_request(self, sock):
        """Reads one request: for HTTP its headers and Content-Length bytes of body, otherwise
        what arrives until the line is quiet for 20 ms. Returns b"" when the client closed."""
        sock.settimeout(None)
        data = sock.recv(65536)
        if not data:
            return b""
        if data[:1].isalpha():  # an HTTP method
            while b"\r\n\r\n" not in data:
                more = sock.recv(65536)
                if not more:
                    return data
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            while len(body) < length:
                more = sock.recv(65536)
                if not more:
                    break
                body += more
            return data
        sock.settimeout(0.02)
        try:
            while True:
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except socket.timeout:
            pass
        return data

    @staticmethod
    def _http(status, body, length=None):
        reason = {200: "OK", 500: "Internal Server Error"}[status]
        return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.0\r\n"
                f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + \
            body

    def _serve(self, sock, seed):
        rng = random.Random(seed)
        kind = self.kind
        try:
            if kind == "close":
                return
            if kind == "relay":
                return self._relay(sock)
            if kind == "banner":
                sock.sendall(self.BANNER)
            while not self._stopping.is_set():
                request = self._read_request(sock)
                if not request:
                    return
                with self._lock:
                    self.requests += 1
                kind = self.kind
                resp = request.startswith(b"*")
                if kind == "random":
                    sock.sendall(bytes([rng.randrange(0x80, 0x100)]) +
                                 rng.randbytes(rng.randrange(16, 4096)))
                elif kind == "resp_truncated":
                    sock.sendall(b"*2\r\n$5\r\nhello\r\n$10\r\nwor")
                    return
                elif kind == "resp_huge_array":
                    sock.sendall(b"*2147483647\r\n")
                elif kind == "resp_huge_bulk":
                    sock.sendall(b"$2147483647\r\n" + b"x" * 100)
                    return
                elif kind == "http_not_json":
                    sock.sendall(self._http(200, b"<html><body>Service Unavailable</body></html>"))
                elif kind == "http_json_array":
                    sock.sendall(self._http(200, b'[{"Item": 1}]'))
                elif kind == "http_short_body":
                    sock.sendall(self._http(200, b'{"Item": {"pk"', length=1 << 40))
                    return
                elif kind == "http_500_garbage":
                    sock.sendall(self._http(500, b"\x00\xffnot json at all"))
                elif kind == "banner":
                    sock.sendall(self.BANNER)
                elif kind == "trickle":
                    sock.sendall(b"$1048576\r\n" if resp else
                                 b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
                    while not self._stopping.wait(0.05):
                        sock.sendall(b"a")
                    return
                else:
                    return
        except OSError:
            pass  # the client gave up: what the garbage is for
        finally:
            with self._lock:
                self._sockets.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _relay(self, sock):
        try:
            upstream = socket.create_connection(self.relay_to, timeout=5)
        except OSError:
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.add(upstream)

        def pipe(source, sink):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
            except OSError:
                pass
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        back = threading.Thread(target=pipe, args=(upstream, sock), daemon=True)
        back.start()
        pipe(sock, upstream)
        back.join(5)
        with self._lock:
            self._sockets.discard(upstream)
        upstream.close()
