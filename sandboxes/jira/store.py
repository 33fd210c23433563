"""store.py - the sandbox's Jira site in memory: users, projects, issues with their comments,
properties and attachments, Connect installations, and the request records.

One lock (an RLock) guards everything; every public method takes it, and what a method
returns is a copy the caller may keep and change. Ids only grow: issue, comment and
attachment ids and issue key numbers are never reused, not even after reset(), as Jira never
reuses them. Request records hold no bodies; the parsed JSON bodies of REST calls live in a
separate bounded list (bodies), read only by contract tests through the control API.

It does not validate input (rest_api.py does) and does no I/O."""
import copy
import itertools
import secrets
import threading
import time
import uuid
from collections import OrderedDict, deque
from datetime import datetime, timezone

MAX_RECORDS = 20000
MAX_BODIES = 1000
MAX_ATTACHMENT_TOTAL_BYTES = 256 << 20
STATUS_OPEN = {"id": "1", "name": "Open"}


def jira_time(t):
    """Jira's timestamp format: 2026-11-29T10:00:00.123+0000 (UTC)."""
    moment = datetime.fromtimestamp(t, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def agent_account_id():
    return secrets.token_hex(12)


def customer_account_id():
    return "qm:" + str(uuid.uuid4())


class StoreError(Exception):
    """A request the store refuses (duplicate email, unknown account, ...)."""


class Store:
    def __init__(self):
        self._lock = threading.RLock()
        self._ids = {name: itertools.count(10000) for name in
                     ("issue", "comment", "attachment", "project", "issuetype")}
        self._seq = itertools.count(1)
        self._key_numbers = {}
        self._users = OrderedDict()        # accountId -> user
        self._projects = OrderedDict()     # key -> project
        self._issues = OrderedDict()       # key -> issue
        self._issue_by_id = {}             # id -> key
        self._comments = {}                # id -> comment
        self._attachments = {}             # id -> attachment (with its bytes)
        self._attachment_bytes = 0
        self._installs = OrderedDict()     # app key -> installation
        self._records = deque(maxlen=MAX_RECORDS)
        self._bodies = deque(maxlen=MAX_BODIES)

    # --- users

    def add_user(self, kind, email, display_name, account_id=None, api_token=None,
                 permanent=False):
        """Adds an agent, customer or app user and returns it. permanent users (from the command
        line) survive reset(all). Raises StoreError for an email or account id in use."""
        with self._lock:
            if email and self._user_by_email(email):
                raise StoreError("An account already exists for this email")
            if account_id is None:
                account_id = customer_account_id() if kind == "customer" else agent_account_id()
            if account_id in self._users:
                raise StoreError(f"account id {account_id} is in use")
            user = {"accountId": account_id, "kind": kind, "email": email,
                    "displayName": display_name, "api_token": api_token, "active": True,
                    "timeZone": "Etc/UTC", "permanent": permanent}
            self._users[account_id] = user
            return dict(user)

    def _user_by_email(self, email):
        email = email.lower()
        for user in self._users.values():
            if user["email"] and user["email"].lower() == email:
                return user
        return None

    def user(self, account_id):
        with self._lock:
            user = self._users.get(account_id)
            return dict(user) if user else None

    def user_for_token(self, email, token):
        """The user whose email and API token these are, or None."""
        with self._lock:
            user = self._user_by_email(email)
            if user and user["api_token"] and secrets.compare_digest(
                    user["api_token"].encode(), token.encode()):
                return dict(user)
            return None

    def search_users(self, text=None, account_id=None):
        """Active users whose email or display name contains text (case-insensitive), or with
        account_id, in the order they were added; apps are never found by text."""
        with self._lock:
            found = []
            for user in self._users.values():
                if account_id is not None and user["accountId"] != account_id:
                    continue
                if text is not None:
                    needle = text.lower()
                    if user["kind"] == "app" or not (
                            needle in (user["email"] or "").lower() or
                            needle in (user["displayName"] or "").lower()):
                        continue
                found.append(dict(user))
            return found

    def users(self):
        with self._lock:
            return [dict(u) for u in self._users.values()]

    # --- projects

    def add_project(self, key, issue_types, name=None, permanent=False):
        """Adds (or replaces the issue types of) a project; returns it."""
        with self._lock:
            project = self._projects.get(key)
            if project is None:
                project = {"id": str(next(self._ids["project"])), "key": key,
                           "name": name or key, "issue_types": [], "permanent": permanent}
                self._projects[key] = project
                self._key_numbers.setdefault(key, 0)
            known = {t["name"] for t in project["issue_types"]}
            for type_name in issue_types:
                if type_name not in known:
                    project["issue_types"].append({"id": str(next(self._ids["issuetype"])),
                                                   "name": type_name})
            return copy.deepcopy(project)

    def project(self, key_or_id):
        with self._lock:
            for project in self._projects.values():
                if key_or_id in (project["key"], project["id"]):
                    return copy.deepcopy(project)
            return None

    def projects(self):
        with self._lock:
            return copy.deepcopy(list(self._projects.values()))

    # --- issues

    def create_issue(self, project_key, issue_type, summary, reporter_id, creator_id,
                     description=None, labels=(), properties=()):
        """Creates an issue in a project that exists; returns it."""
        with self._lock:
            self._key_numbers[project_key] += 1
            now = time.time()
            issue = {"id": str(next(self._ids["issue"])),
                     "key": f"{project_key}-{self._key_numbers[project_key]}",
                     "project": project_key, "issuetype": dict(issue_type), "summary": summary,
                     "reporter": reporter_id, "creator": creator_id, "description": description,
                     "labels": list(labels), "created": now, "updated": now,
                     "status": dict(STATUS_OPEN), "properties": OrderedDict(properties),
                     "comments": [], "attachments": []}
            self._issues[issue["key"]] = issue
            self._issue_by_id[issue["id"]] = issue["key"]
            return copy.deepcopy(issue)

    def _issue(self, key_or_id):
        if key_or_id in self._issue_by_id:
            return self._issues.get(self._issue_by_id[key_or_id])
        return self._issues.get(key_or_id.upper())

    def issue(self, key_or_id):
        """The issue with this key (any case) or id, or None."""
        with self._lock:
            issue = self._issue(key_or_id)
            return copy.deepcopy(issue) if issue else None

    def issues(self):
        with self._lock:
            return copy.deepcopy(list(self._issues.values()))

    # --- comments

    def add_comment(self, key_or_id, author_id, body, visibility=None, properties=()):
        """Adds a comment to an issue; returns it, or None when there is no such issue."""
        with self._lock:
            issue = self._issue(key_or_id)
            if issue is None:
                return None
            now = time.time()
            comment = {"id": str(next(self._ids["comment"])), "issue": issue["key"],
                       "issue_id": issue["id"], "author": author_id, "body": body,
                       "visibility": visibility, "created": now, "updated": now,
                       "properties": OrderedDict(properties)}
            self._comments[comment["id"]] = comment
            issue["comments"].append(comment["id"])
            issue["updated"] = now
            return copy.deepcopy(comment)

    def comments(self, key_or_id):
        """The comments of an issue in creation order, or None when there is no such issue."""
        with self._lock:
            issue = self._issue(key_or_id)
            if issue is None:
                return None
            return [copy.deepcopy(self._comments[c]) for c in issue["comments"]]

    def comment(self, key_or_id, comment_id):
        """A comment of an issue, or None."""
        with self._lock:
            issue = self._issue(key_or_id)
            comment = self._comments.get(comment_id)
            if issue is None or comment is None or comment["issue"] != issue["key"]:
                return None
            return copy.deepcopy(comment)

    # --- issue properties

    def set_property(self, key_or_id, name, value):
        """Sets an issue property. Returns True when it was created, False when updated, None
        when there is no such issue."""
        with self._lock:
            issue = self._issue(key_or_id)
            if issue is None:
                return None
            created = name not in issue["properties"]
            issue["properties"][name] = copy.deepcopy(value)
            return created

    def delete_property(self, key_or_id, name):
        """Deletes an issue property: True when it existed, False when not, None when there is
        no such issue."""
        with self._lock:
            issue = self._issue(key_or_id)
            if issue is None:
                return None
            if name not in issue["properties"]:
                return False
            del issue["properties"][name]
            return True

    # --- attachments

    def add_attachment(self, key_or_id, author_id, filename, mime_type, data):
        """Stores an attachment on an issue; returns it without its bytes, or None when there
        is no such issue. Raises StoreError when the sandbox holds too many bytes already."""
        with self._lock:
            issue = self._issue(key_or_id)
            if issue is None:
                return None
            if self._attachment_bytes + len(data) > MAX_ATTACHMENT_TOTAL_BYTES:
                raise StoreError("the sandbox holds too many attachment bytes; reset it")
            attachment = {"id": str(next(self._ids["attachment"])), "issue": issue["key"],
                          "filename": filename, "mimeType": mime_type, "size": len(data),
                          "author": author_id, "created": time.time(), "data": data}
            self._attachments[attachment["id"]] = attachment
            self._attachment_bytes += len(data)
            issue["attachments"].append(attachment["id"])
            return {k: v for k, v in attachment.items() if k != "data"}

    def attachment(self, attachment_id, with_data=False):
        with self._lock:
            found = self._attachments.get(attachment_id)
            if found is None:
                return None
            return dict(found) if with_data else {k: v for k, v in found.items() if k != "data"}

    def attachments_of(self, issue):
        with self._lock:
            return [self.attachment(a) for a in issue.get("attachments", [])
                    if a in self._attachments]

    # --- Connect installations

    def put_install(self, install):
        with self._lock:
            self._installs[install["key"]] = copy.deepcopy(install)

    def install(self, app_key):
        with self._lock:
            found = self._installs.get(app_key)
            return copy.deepcopy(found) if found else None

    def installs(self):
        with self._lock:
            return copy.deepcopy(list(self._installs.values()))

    # --- request records

    def record(self, record, body=None):
        """Appends a request record (a dict without any body), giving it the next seq; keeps
        body (a parsed JSON body) in the bounded body list under the same seq. Returns seq."""
        with self._lock:
            seq = next(self._seq)
            record["seq"] = seq
            self._records.append(record)
            if body is not None:
                self._bodies.append({"seq": seq, "method": record.get("method"),
                                     "path": record.get("path"),
                                     "operation": record.get("operation"), "body": body})
            return seq

    def records(self, since=0, bodies=False):
        with self._lock:
            out = {"records": [dict(r) for r in self._records if r["seq"] > since]}
            if bodies:
                out["bodies"] = [copy.deepcopy(b) for b in self._bodies if b["seq"] > since]
            return out

    def clear_records(self):
        with self._lock:
            self._records.clear()
            self._bodies.clear()

    # --- reset

    def reset(self, everything=False):
        """Forgets issues, comments, attachments and records. everything=True also forgets the
        installations and the users and projects not given on the command line."""
        with self._lock:
            self._issues.clear()
            self._issue_by_id.clear()
            self._comments.clear()
            self._attachments.clear()
            self._attachment_bytes = 0
            self.clear_records()
            if everything:
                self._installs.clear()
                for account_id in [a for a, u in self._users.items() if not u["permanent"]]:
                    del self._users[account_id]
                for key in [k for k, p in self._projects.items() if not p["permanent"]]:
                    del self._projects[key]
