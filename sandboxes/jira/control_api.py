"""control_api.py - the sandbox's own API under /_sandbox/ (no authentication; the server only
listens on loopback): read back what Jira holds, add users and projects, comment as a human
agent, install Connect apps, inject faults and latency, read the request records, reset.

Replies are JSON ({"error": "..."} with 400/404 for bad requests), except the HTML overview at
/_sandbox/ and the install keys (PEM). Runs on the connection's thread; state lives in the
Store, Faults and ConnectApps."""
import html
import json
import re
from urllib.parse import parse_qs

import adf
from connect_apps import AppError
from faults import FaultError
from replies import Reply
from views import jsd_public
from store import StoreError, jira_time

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,9}\Z")
MAX_LATENCY_MS = 60000


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _json_body(req):
    if not req.body:
        return {}
    try:
        return json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ControlError(400, "the body is not JSON") from None


def _need(body, key, kind, optional=False):
    value = body.get(key) if isinstance(body, dict) else None
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ControlError(400, f"'{key}' must be a {kind.__name__}")
    return value


class ControlApi:
    def __init__(self, sandbox):
        """sandbox: the Sandbox (store, faults, apps, api, keys, settings)."""
        self.sb = sandbox
        self.routes = [
            ("GET", r"/_sandbox/?", self.overview),
            ("GET", r"/_sandbox/issues", self.list_issues),
            ("POST", r"/_sandbox/issues/(?P<key>[^/]+)/comments", self.agent_comment),
            ("GET", r"/_sandbox/users", self.list_users),
            ("POST", r"/_sandbox/users", self.add_user),
            ("GET", r"/_sandbox/projects", self.list_projects),
            ("POST", r"/_sandbox/projects", self.add_project),
            ("GET", r"/_sandbox/faults", self.list_faults),
            ("POST", r"/_sandbox/faults", self.add_faults),
            ("DELETE", r"/_sandbox/faults", self.clear_faults),
            ("GET", r"/_sandbox/latency", self.get_latency),
            ("POST", r"/_sandbox/latency", self.set_latency),
            ("GET", r"/_sandbox/requests", self.list_requests),
            ("DELETE", r"/_sandbox/requests", self.clear_requests),
            ("POST", r"/_sandbox/reset", self.reset),
            ("GET", r"/_sandbox/connect/installations", self.list_installs),
            ("POST", r"/_sandbox/connect/install", self.install),
            ("POST", r"/_sandbox/connect/uninstall", self.uninstall),
            ("GET", r"/_sandbox/connect-install-keys/(?P<kid>[^/]+)", self.install_key),
            ("GET", r"/_sandbox/webhooks", self.list_webhooks),
            ("DELETE", r"/_sandbox/webhooks", self.clear_webhooks),
        ]

    def handle(self, req):
        allowed = []
        for method, pattern, handler in self.routes:
            found = re.fullmatch(pattern, req.raw_path)
            if not found:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            try:
                return handler(req, **found.groupdict())
            except ControlError as e:
                return Reply(e.status, {"error": str(e)})
        if allowed:
            return Reply(405, {"error": f"use {', '.join(allowed)}"},
                         headers={"Allow": ", ".join(allowed)})
        return Reply(404, {"error": "no such control endpoint"})

    # --- read-back

    def _issue_views(self):
        store = self.sb.store
        out = []
        for issue in store.issues():
            reporter = store.user(issue["reporter"]) if issue["reporter"] else None
            out.append({
                "key": issue["key"], "id": issue["id"], "project": issue["project"],
                "issuetype": issue["issuetype"]["name"], "summary": issue["summary"],
                "reporter": issue["reporter"],
                "reporter_name": reporter["displayName"] if reporter else None,
                "created": jira_time(issue["created"]), "properties": issue["properties"],
                "attachments": [{"id": a["id"], "filename": a["filename"], "size": a["size"],
                                 "mimeType": a["mimeType"]}
                                for a in store.attachments_of(issue)],
                "comments": [self._comment_view(c) for c in store.comments(issue["key"])]})
        return out

    def _comment_view(self, comment):
        author = self.sb.store.user(comment["author"]) or {}
        return {"id": comment["id"], "author": comment["author"],
                "author_name": author.get("displayName"),
                "created": jira_time(comment["created"]), "text": adf.to_text(comment["body"]),
                "properties": comment["properties"],
                "public": jsd_public(comment)}

    def list_issues(self, req):
        return Reply(200, self._issue_views())

    def overview(self, req):
        e = html.escape
        rows = []
        for project in self.sb.store.projects():
            types = ", ".join(t["name"] for t in project["issue_types"])
            rows.append(f"<li><b>{e(project['key'])}</b> {e(project['name'])} "
                        f"<small>({e(types)})</small></li>")
        parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Jira sandbox</title>"
                 "<style>body{font-family:sans-serif;margin:2em}article{border:1px solid #ccc;"
                 "padding:.5em 1em;margin:1em 0}.c{border-left:3px solid #0052cc;margin:.5em 0;"
                 "padding-left:.5em;white-space:pre-wrap}.meta{color:#666;font-size:small}"
                 "</style></head><body><h1>Jira sandbox</h1><h2>Projects</h2><ul>",
                 "".join(rows), "</ul><h2>Issues</h2>"]
        issues = self._issue_views()
        if not issues:
            parts.append("<p>No issues yet.</p>")
        for issue in issues:
            parts.append(f"<article><h3>{e(issue['key'])}: {e(issue['summary'])}</h3>"
                         f"<div class='meta'>{e(issue['issuetype'])}, reported by "
                         f"{e(str(issue['reporter_name'] or issue['reporter']))} at "
                         f"{e(issue['created'])}</div>")
            for c in issue["comments"]:
                parts.append(f"<div class='c'><div class='meta'>{e(str(c['author_name']))} "
                             f"&middot; {e(c['created'])}{'' if c['public'] else ' (internal)'}"
                             f"</div>{e(c['text'])}</div>")
            parts.append("</article>")
        parts.append("</body></html>")
        return Reply(200, "".join(parts).encode("utf-8"), content_type="text/html;charset=UTF-8")

    def agent_comment(self, req, key):
        """A human agent comments in Jira's UI: stored, and the comment_created webhook fires."""
        body = _json_body(req)
        author = _need(body, "author_account_id", str)
        text = _need(body, "text", str)
        if self.sb.store.user(author) is None:
            raise ControlError(400, f"unknown account {author[:80]!r}")
        doc = adf.from_text(text)
        if not doc["content"]:
            raise ControlError(400, "'text' is empty")
        internal = body.get("internal") is True
        properties = [("sd.public.comment", {"internal": True})] if internal else []
        comment = self.sb.store.add_comment(key, author, doc, None, properties)
        if comment is None:
            raise ControlError(404, f"no issue {key[:40]!r}")
        self.sb.api.comment_added(self.sb.store.issue(key), comment)
        return Reply(201, self._comment_view(comment))

    # --- users and projects

    def list_users(self, req):
        users = []
        for user in self.sb.store.users():
            user = dict(user)
            user["api_token"] = "***" if user.get("api_token") else None
            users.append(user)
        return Reply(200, users)

    def add_user(self, req):
        body = _json_body(req)
        kind = body.get("kind", "agent")
        if kind not in ("agent", "customer"):
            raise ControlError(400, "'kind' must be agent or customer")
        email = _need(body, "email", str)
        name = _need(body, "displayName", str, optional=True) or email.split("@")[0]
        token = _need(body, "api_token", str, optional=True)
        account_id = _need(body, "accountId", str, optional=True)
        try:
            user = self.sb.store.add_user(kind, email, name, account_id, token)
        except StoreError as e:
            raise ControlError(400, str(e)) from None
        user["api_token"] = "***" if token else None
        return Reply(201, user)

    def list_projects(self, req):
        return Reply(200, self.sb.store.projects())

    def add_project(self, req):
        body = _json_body(req)
        key = _need(body, "key", str)
        if not PROJECT_KEY.match(key):
            raise ControlError(400, "'key' must be 1 to 10 capitals, digits or '_', "
                                    "starting with a letter")
        types = body.get("issue_types", ["Task"])
        if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            raise ControlError(400, "'issue_types' must be a list of names")
        return Reply(201, self.sb.store.add_project(key, types, body.get("name")))

    # --- faults, latency

    def list_faults(self, req):
        return Reply(200, self.sb.faults.describe())

    def add_faults(self, req):
        try:
            return Reply(200, self.sb.faults.add(_json_body(req)))
        except FaultError as e:
            raise ControlError(400, str(e)) from None

    def clear_faults(self, req):
        self.sb.faults.clear()
        return Reply(200, [])

    def get_latency(self, req):
        return Reply(200, {"ms": self.sb.latency_ms})

    def set_latency(self, req):
        ms = _json_body(req).get("ms")
        if not isinstance(ms, (int, float)) or isinstance(ms, bool) or \
                not 0 <= ms <= MAX_LATENCY_MS:
            raise ControlError(400, f"'ms' must be a number from 0 to {MAX_LATENCY_MS}")
        self.sb.latency_ms = ms
        return Reply(200, {"ms": ms})

    # --- records, reset

    def list_requests(self, req):
        query = parse_qs(req.raw_query.decode("latin-1"))
        try:
            since = int((query.get("since") or ["0"])[0])
        except ValueError:
            raise ControlError(400, "'since' must be an integer") from None
        bodies = (query.get("bodies") or ["0"])[0] in ("1", "true", "yes")
        return Reply(200, self.sb.store.records(since, bodies))

    def clear_requests(self, req):
        self.sb.store.clear_records()
        return Reply(200, {"records": []})

    def reset(self, req):
        body = _json_body(req)
        everything = body.get("all") is True if isinstance(body, dict) else False
        self.sb.store.reset(everything)
        self.sb.faults.clear()
        self.sb.apps.clear_deliveries()
        if everything:
            self.sb.latency_ms = self.sb.config.latency_ms
        return Reply(200, {"reset": "all" if everything else "data"})

    # --- Connect

    def list_installs(self, req):
        return Reply(200, self.sb.store.installs())

    def install(self, req):
        body = _json_body(req)
        url = _need(body, "descriptor_url", str)
        client_key = _need(body, "client_key", str, optional=True)
        try:
            install = self.sb.apps.install(url, rotate_secret=body.get("rotate_secret") is True,
                                           client_key=client_key)
        except AppError as e:
            raise ControlError(400, str(e)) from None
        return Reply(200, install)

    def uninstall(self, req):
        key = _need(_json_body(req), "key", str)
        try:
            return Reply(200, self.sb.apps.uninstall(key))
        except AppError as e:
            raise ControlError(404, str(e)) from None

    def install_key(self, req, kid):
        if kid != self.sb.keys.kid:
            return Reply(404, b"Not Found", content_type="text/plain")
        return Reply(200, self.sb.keys.public_pem, content_type="application/x-pem-file")

    def list_webhooks(self, req):
        return Reply(200, self.sb.apps.deliveries())

    def clear_webhooks(self, req):
        self.sb.apps.clear_deliveries()
        return Reply(200, [])
