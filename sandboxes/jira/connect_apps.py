"""connect_apps.py - Jira's side of the Atlassian Connect lifecycle and of webhooks: installing
an app from its descriptor, telling it `installed` and `uninstalled` with signed lifecycle
callbacks, and delivering `comment_created` webhooks to the apps that asked for them.

install(): GET the descriptor, check it (key, baseUrl, authentication.type "jwt",
lifecycle.installed), make or keep the installation's clientKey and sharedSecret and the app's
own user, POST the lifecycle payload to baseUrl + lifecycle.installed with an RS256 JWT (kid
header; iss = clientKey, aud = [baseUrl], qsh of that POST) whose public key is served at
/_sandbox/connect-install-keys/<kid>. The app must answer 2xx for the installation to count.

Webhooks go out on one background thread in the order they were raised, each POSTed with an
HS256 JWT signed with the app's sharedSecret (iss = clientKey, qsh of the POST relative to the
app's baseUrl), tried up to MAX_ATTEMPTS times with doubling backoff; each delivery is recorded
without its body (it carries a customer's words). Outgoing requests go to loopback addresses
only: a descriptor that points elsewhere is refused.

Threads: install/uninstall run on the caller's thread (one at a time); deliveries on the
sender thread; the delivery list has its own lock."""
import heapq
import http.client
import ipaddress
import json
import secrets
import threading
import time
import uuid
from urllib.parse import urlsplit

import connect_auth

TIMEOUT_S = 5.0
MAX_DESCRIPTOR_BYTES = 1 << 20
MAX_ATTEMPTS = 4
BACKOFF_S = 0.25
MAX_DELIVERIES = 5000
APP_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
SERVER_VERSION = "100257"
PLUGINS_VERSION = "1001.0.0-SNAPSHOT"


class AppError(Exception):
    """An install or uninstall that cannot go ahead; str(self) says why."""


def loopback_url(url):
    """The split URL when url is http(s) on a loopback address; raises AppError otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise AppError(f"not a URL: {url[:200]}") from None
    if parts.scheme not in ("http", "https"):
        raise AppError("only http and https URLs are supported")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise AppError("the sandbox only talks to loopback addresses (127.0.0.0/8, ::1)")
    return parts


def http_request(method, url, body=None, headers=None, limit=MAX_DESCRIPTOR_BYTES):
    """One HTTP request to a loopback URL. Returns (status, body bytes); raises AppError for a
    refused URL, OSError or http.client.HTTPException for network trouble."""
    parts = loopback_url(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=TIMEOUT_S)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(limit)
    finally:
        conn.close()


class ConnectApps:
    def __init__(self, store, keys, base_url, log):
        """store: the Store; keys: connect_auth.InstallKeys; base_url: the sandbox's base URL;
        log: a function taking one log line."""
        self._store = store
        self._keys = keys
        self._base_url = base_url
        self._log = log
        self._install_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue = []        # heap of (due, n, delivery)
        self._n = 0
        self._deliveries = []   # records, oldest first
        self._stopping = False
        self._thread = threading.Thread(target=self._send_loop, name="webhooks", daemon=True)
        self._thread.start()

    # --- lifecycle

    def install(self, descriptor_url, rotate_secret=False, client_key=None):
        """Installs (or re-installs) the app whose descriptor is at descriptor_url and returns
        the installation with the app's answer. client_key, when given, is the new
        installation's clientKey instead of a UUID (a local stack can then give its demo
        tenant a readable id). Raises AppError when the descriptor cannot be fetched or is
        unusable, or when the app is installed already under another clientKey."""
        if client_key is not None and not (
                0 < len(client_key) <= 63 and set(client_key) <= APP_KEY_CHARS):
            raise AppError("client_key must be 1-63 letters, digits, '-', '.' or '_'")
        with self._install_lock:
            descriptor = self._fetch_descriptor(descriptor_url)
            key = descriptor["key"]
            install = self._store.install(key)
            if install is not None and client_key not in (None, install["clientKey"]):
                raise AppError(f"{key} is installed already, with another clientKey")
            if install is None:
                user = self._store.add_user("app", None, descriptor.get("name") or key)
                install = {"key": key, "clientKey": client_key or str(uuid.uuid4()),
                           "sharedSecret": secrets.token_urlsafe(32),
                           "cloudId": str(uuid.uuid4()), "accountId": user["accountId"]}
            elif rotate_secret:
                install["sharedSecret"] = secrets.token_urlsafe(32)
            install.update({"name": descriptor.get("name") or key,
                            "baseUrl": descriptor["baseUrl"], "descriptor_url": descriptor_url,
                            "lifecycle": descriptor["lifecycle"],
                            "webhooks": descriptor["webhooks"], "installed": False})
            status, error = self._lifecycle(install, "installed")
            install.update({"installed": 200 <= (status or 0) < 300, "app_status": status,
                            "error": error})
            self._store.put_install(install)
            self._log(f"level=info event=connect_install app={key} status={status}")
            return install

    def uninstall(self, key):
        """Sends the uninstalled callback and marks the app uninstalled (its JWTs are refused
        from now on, whatever the app answers). Raises AppError for an unknown app."""
        with self._install_lock:
            install = self._store.install(key)
            if install is None:
                raise AppError(f"no app with key {key!r} is installed")
            status, error = self._lifecycle(install, "uninstalled")
            install.update({"installed": False, "app_status": status, "error": error})
            self._store.put_install(install)
            self._log(f"level=info event=connect_uninstall app={key} status={status}")
            return install

    def _fetch_descriptor(self, url):
        try:
            status, raw = http_request("GET", url, headers={"Accept": "application/json"})
        except (OSError, http.client.HTTPException) as e:
            raise AppError(f"cannot fetch the descriptor: {e}") from None
        if status != 200:
            raise AppError(f"the descriptor URL answered {status}")
        try:
            descriptor = json.loads(raw)
        except ValueError:
            raise AppError("the descriptor is not JSON") from None
        if not isinstance(descriptor, dict):
            raise AppError("the descriptor is not a JSON object")
        key = descriptor.get("key")
        if not isinstance(key, str) or not 0 < len(key) <= 64 or set(key) - APP_KEY_CHARS:
            raise AppError("descriptor key must be 1 to 64 letters, digits, '-', '.' or '_'")
        base = descriptor.get("baseUrl")
        if not isinstance(base, str):
            raise AppError("descriptor baseUrl must be a string")
        loopback_url(base)
        auth = descriptor.get("authentication")
        if not isinstance(auth, dict) or str(auth.get("type", "")).lower() != "jwt":
            raise AppError('descriptor authentication.type must be "jwt"')
        lifecycle = descriptor.get("lifecycle")
        if not isinstance(lifecycle, dict) or not isinstance(lifecycle.get("installed"), str):
            raise AppError("descriptor lifecycle.installed must be a path")
        webhooks = []
        for hook in ((descriptor.get("modules") or {}).get("webhooks") or []):
            if not isinstance(hook, dict) or not isinstance(hook.get("event"), str) or \
                    not isinstance(hook.get("url"), str):
                raise AppError("each modules.webhooks entry needs an event and a url")
            webhooks.append({"event": hook["event"], "url": hook["url"]})
        return {"key": key, "name": descriptor.get("name") if isinstance(
                    descriptor.get("name"), str) else None,
                "baseUrl": base.rstrip("/"),
                "lifecycle": {k: v for k, v in lifecycle.items() if isinstance(v, str)},
                "webhooks": webhooks}

    def _lifecycle(self, install, event):
        """POSTs one lifecycle callback. Returns (status or None, error text or None)."""
        path = install["lifecycle"].get(event)
        if not path:
            return None, f"the descriptor has no lifecycle.{event}"
        payload = {"key": install["key"], "clientKey": install["clientKey"],
                   "baseUrl": self._base_url, "displayUrl": self._base_url,
                   "productType": "jira", "description": "Atlassian JIRA sandbox",
                   "serverVersion": SERVER_VERSION, "pluginsVersion": PLUGINS_VERSION,
                   "eventType": event, "cloudId": install["cloudId"]}
        if event == "installed":
            payload["sharedSecret"] = install["sharedSecret"]
        url = _app_url(install["baseUrl"], path)
        parts = urlsplit(url)
        token = self._keys.sign(install["clientKey"], install["baseUrl"], "POST", parts.path,
                                parts.query, urlsplit(install["baseUrl"]).path)
        try:
            status, _ = http_request("POST", url, json.dumps(payload).encode(),
                                     {"Content-Type": "application/json",
                                      "Authorization": f"JWT {token}"}, limit=65536)
            return status, None
        except (OSError, http.client.HTTPException, AppError) as e:
            return None, f"{type(e).__name__}: {e}"

    # --- webhooks

    def comment_created(self, body, issue_key, comment_id):
        """Queues a comment_created webhook (body: the webhook's JSON data) for every installed
        app that registered one."""
        for install in self._store.installs():
            if not install.get("installed"):
                continue
            for hook in install["webhooks"]:
                if hook["event"] != "comment_created":
                    continue
                delivery = {"id": secrets.token_hex(8), "app": install["key"],
                            "event": "comment_created",
                            "url": _app_url(install["baseUrl"], hook["url"]),
                            "issue_key": issue_key, "comment_id": comment_id,
                            "state": "pending", "attempts": 0, "status": None, "error": None,
                            "queued_at": time.time(), "delivered_at": None}
                with self._cond:
                    self._deliveries.append(delivery)
                    del self._deliveries[:-MAX_DELIVERIES]
                    self._n += 1
                    heapq.heappush(self._queue, (time.monotonic(), self._n, delivery, body))
                    self._cond.notify()

    def deliveries(self):
        with self._cond:
            return [dict(d) for d in self._deliveries]

    def clear_deliveries(self):
        with self._cond:
            self._deliveries.clear()

    def stop(self):
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=2)

    def _send_loop(self):
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or
                                              self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, _, delivery, body = heapq.heappop(self._queue)
            self._deliver(delivery, body)

    def _deliver(self, delivery, body):
        install = self._store.install(delivery["app"])
        if install is None or not install.get("installed"):
            with self._cond:
                delivery.update(state="dropped", error="the app is no longer installed")
            return
        parts = urlsplit(delivery["url"])
        token = connect_auth.sign_hs256(install["sharedSecret"], install["clientKey"], "POST",
                                        parts.path, parts.query,
                                        urlsplit(install["baseUrl"]).path)
        status, error = None, None
        try:
            status, _ = http_request("POST", delivery["url"], json.dumps(body).encode(),
                                     {"Content-Type": "application/json",
                                      "Authorization": f"JWT {token}"}, limit=65536)
        except (OSError, http.client.HTTPException, AppError) as e:
            error = f"{type(e).__name__}: {e}"
        with self._cond:
            delivery["attempts"] += 1
            delivery.update(status=status, error=error)
            if status is not None and 200 <= status < 300:
                delivery.update(state="delivered", delivered_at=time.time())
            elif delivery["attempts"] >= MAX_ATTEMPTS:
                delivery["state"] = "failed"
            else:
                self._n += 1
                due = time.monotonic() + BACKOFF_S * 2 ** (delivery["attempts"] - 1)
                heapq.heappush(self._queue, (due, self._n, delivery, body))
        self._log(f"level=info event=webhook app={delivery['app']} "
                  f"comment={delivery['comment_id']} attempt={delivery['attempts']} "
                  f"status={status} state={delivery['state']}")


def _app_url(base_url, path):
    """An app URL: path (relative to the app's baseUrl, or absolute) joined to base_url."""
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")

