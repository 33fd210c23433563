"""rest_api.py - the Jira Cloud REST endpoints the sandbox implements, behind the spec's routing,
authentication and validation.

handle() takes one request whose body the HTTP layer has read: it finds the spec operation
(404 unknown path, 405 method the spec does not have, 501 operation the sandbox does not
implement), authenticates the caller (Basic API token, or a Connect JWT whose qsh must match;
401 otherwise), validates path and query parameters and the JSON body against the spec (400
with "<path>: <reason>" messages; 415 for a media type the operation does not take), then
applies Jira's own rules and answers in Jira's shapes. The JSM customer endpoint is not in
the platform spec and is checked by hand.

Every decision is written into the request's record (operation, auth kind, tenant, account,
validity and why not); the body itself never is. Handlers run on the connection's thread and
touch shared state only through the Store."""
import json
import re
from urllib.parse import quote

import adf
import connect_auth
import jql
import multipart
import views
from replies import ApiError, Reply, error_collection, fail
from store import StoreError, jira_time

MAX_SUMMARY = 255
MAX_COMMENT_CHARS = 32767
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_BYTES = 32768
MAX_PAGE = 100
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
MIME_TYPE = re.compile(r"^[A-Za-z0-9.+-]{1,64}/[A-Za-z0-9.+-]{1,128}\Z")
ISSUE_FIELDS = ("summary", "project", "issuetype", "reporter", "creator", "created", "updated",
                "status", "description", "labels", "comment", "attachment")
SETTABLE_FIELDS = frozenset(("project", "issuetype", "summary", "description", "reporter",
                             "labels"))
JSM_CUSTOMER = "/rest/servicedeskapi/customer"


class Request:
    """One HTTP request as the API sees it. raw_path is the percent-encoded path, raw_query the
    bytes after '?', query its form-decoded parameters (name -> [values])."""

    def __init__(self, method, raw_path, raw_query, query, headers, body):
        self.method = method
        self.raw_path = raw_path
        self.raw_query = raw_query
        self.query = query
        self.headers = headers
        self.body = body
        self.op = None
        self.json = None


def media_type(headers):
    return (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def parse_json(raw):
    """The JSON value of a request body. Raises ApiError 400 for bad UTF-8 or JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(400, "Invalid UTF-8 in the request body.")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) \
            else ""
        fail(400, f"Unexpected character in the JSON request body{where}: it is not valid JSON.")


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _expand(values, name="expand"):
    return {part.strip() for part in (values.get(name) or "").split(",") if part.strip()}


def _property_problem(key, value):
    if not isinstance(key, str) or not 0 < len(key) <= MAX_PROPERTY_KEY:
        return f"The property key must be 1 to {MAX_PROPERTY_KEY} characters long."
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_PROPERTY_BYTES:
        return f"The property value must be at most {MAX_PROPERTY_BYTES} bytes."
    return None


class JiraApi:
    def __init__(self, spec, store, apps, base_url, max_attachment_bytes):
        self.spec = spec
        self.store = store
        self.apps = apps
        self.base = base_url
        self.views = views.JiraViews(store, base_url)
        self.max_attachment_bytes = max_attachment_bytes
        self.routes = {
            ("POST", "/rest/api/3/issue"): self.create_issue,
            ("GET", "/rest/api/3/issue/{issueIdOrKey}"): self.get_issue,
            ("POST", "/rest/api/3/issue/{issueIdOrKey}/comment"): self.add_comment,
            ("GET", "/rest/api/3/issue/{issueIdOrKey}/comment"): self.get_comments,
            ("GET", "/rest/api/3/issue/{issueIdOrKey}/comment/{id}"): self.get_comment,
            ("GET", "/rest/api/3/issue/{issueIdOrKey}/properties"): self.property_keys,
            ("GET", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"):
                self.get_property,
            ("PUT", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"):
                self.set_property,
            ("DELETE", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"):
                self.delete_property,
            ("POST", "/rest/api/3/issue/{issueIdOrKey}/attachments"): self.add_attachment,
            ("GET", "/rest/api/3/attachment/content/{id}"): self.attachment_content,
            ("GET", "/rest/api/3/user"): self.get_user,
            ("GET", "/rest/api/3/user/search"): self.find_users,
            ("GET", "/rest/api/3/myself"): self.myself,
            ("GET", "/rest/api/3/search"): self.search,
        }

    # --- the pipeline

    def handle(self, req, rec):
        """Answers one request. Returns a Reply; fills rec. Raises nothing but what a bug
        raises (ApiError is turned into its reply)."""
        try:
            return self._handle(req, rec)
        except ApiError as e:
            return e.reply

    def _handle(self, req, rec):
        if req.raw_path.rstrip("/") == JSM_CUSTOMER:
            rec["operation"] = "servicedesk.createCustomer"
            if req.method != "POST":
                fail(405, f"{req.method} is not allowed here.", headers={"Allow": "POST"})
            return self.create_customer(req, rec)
        try:
            found = self.spec.match(req.raw_path)
        except UnicodeDecodeError:
            found = None
        if found is None:
            fail(404, "The requested resource does not exist (not a Jira REST path the spec "
                      "documents).")
        template, path_params = found
        handler = self.routes.get((req.method, template))
        if handler is None:
            documented = self.spec.methods(template)
            if req.method in documented:
                op = self.spec.operation(template, req.method)
                rec["operation"] = op.id
                fail(501, f"{op.id} ({req.method} {template}) is documented by Jira but not "
                          "implemented by the sandbox.")
            fail(405, f"Method {req.method} is not allowed for {template}.",
                 headers={"Allow": ", ".join(documented)})
        req.op = self.spec.operation(template, req.method)
        rec["operation"] = req.op.id
        user = self.authenticate(req, rec)
        values, messages = self.spec.validate_parameters(req.op, path_params, req.query)
        if req.op.body_media_types():
            messages += self._check_body(req)
        rec["valid"] = not messages
        rec["errors"] = messages
        if messages:
            fail(400, *messages)
        return handler(req, user, values)

    def _check_body(self, req):
        """Parses and validates the body of an operation that takes one; returns messages."""
        accepted = req.op.body_media_types()
        media = media_type(req.headers)
        if not req.body:
            return ["$: a request body is required"] if req.op.body_required else []
        if media not in accepted and "*/*" not in accepted:
            raise ApiError(error_collection(
                415, [f"Unsupported media type {media or '(none)'}; expected "
                      f"{' or '.join(accepted)}."]))
        if media == "multipart/form-data":
            return []
        try:
            req.json = parse_json(req.body)
        except ApiError:
            raise
        return self.spec.validate_request_body(req.op, media, req.json)

    # --- authentication

    def authenticate(self, req, rec):
        """The calling user (a dict from the Store). Raises ApiError 401."""
        header = req.headers.get("Authorization") or ""
        scheme = header.split(None, 1)[0].lower() if header.strip() else ""
        query_jwt = req.query.get("jwt")
        if scheme == "basic":
            rec["auth"] = "basic"
            try:
                email, token = connect_auth.parse_basic(header)
            except connect_auth.AuthError as e:
                self._unauthorized(str(e), "Basic")
            user = self.store.user_for_token(email, token)
            if user is None:
                self._unauthorized("Client must be authenticated to access this resource.",
                                   "Basic")
            rec["account_id"] = user["accountId"]
            return user
        if scheme == "jwt" or (not scheme and query_jwt):
            rec["auth"] = "jwt"
            token = header.split(None, 1)[1].strip() if scheme == "jwt" and \
                len(header.split(None, 1)) == 2 else (query_jwt or [""])[0]
            return self._authenticate_jwt(req, rec, token)
        rec["auth"] = scheme or "none"
        if scheme:
            self._unauthorized(f"The {scheme} authorization scheme is not supported by the "
                               "sandbox (use Basic or JWT).", "Basic")
        self._unauthorized("Client must be authenticated to access this resource.", "Basic")

    def _authenticate_jwt(self, req, rec, token):
        try:
            _, claims = connect_auth.unverified_claims(token)
            issuer = claims.get("iss")
            install = self.store.install(issuer) if isinstance(issuer, str) else None
            if install is None:
                raise connect_auth.AuthError(f"JWT issuer {str(issuer)[:80]!r} is not an "
                                             "installed app")
            rec["tenant"] = install["clientKey"]
            rec["app"] = install["key"]
            if not install.get("installed"):
                raise connect_auth.AuthError(f"the app {install['key']!r} is not installed")
            connect_auth.verify_hs256(token, install["sharedSecret"], req.method, req.raw_path,
                                      req.raw_query)
        except connect_auth.AuthError as e:
            self._unauthorized(f"Authentication failed: {e}", "JWT")
        user = self.store.user(install["accountId"])
        rec["account_id"] = install["accountId"]
        return user

    @staticmethod
    def _unauthorized(message, scheme):
        fail(401, message, headers={"WWW-Authenticate": f'{scheme} realm="jira-sandbox"'})

    def comment_added(self, issue, comment):
        """Raises the comment_created webhook for a new comment."""
        self.apps.comment_created(self.views.webhook_body(issue, comment), issue["key"],
                                  comment["id"])

    # --- issues

    def _issue(self, key_or_id):
        issue = self.store.issue(key_or_id)
        if issue is None:
            fail(404, ISSUE_NOT_FOUND)
        return issue

    def create_issue(self, req, user, values):
        body = req.json
        fields = body.get("fields") or {}
        errors, messages = {}, []
        project = issue_type = reporter_id = None
        ref = fields.get("project")
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("key")):
            errors["project"] = "Specify a valid project ID or key"
        else:
            project = self.store.project(str(ref.get("id") or ref.get("key")))
            if project is None:
                errors["project"] = "valid project is required"
        ref = fields.get("issuetype")
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
            errors["issuetype"] = "Specify an issue type"
        elif project is not None:
            issue_type = next((t for t in project["issue_types"]
                               if t["id"] == str(ref.get("id")) or
                               t["name"] == ref.get("name")), None)
            if issue_type is None:
                errors["issuetype"] = "The issue type selected is invalid."
        summary = fields.get("summary")
        if summary is None or (isinstance(summary, str) and not summary.strip()):
            errors["summary"] = "You must specify a summary of the issue."
        elif not isinstance(summary, str):
            errors["summary"] = "Operation value must be a string"
        elif len(summary) > MAX_SUMMARY:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        description = fields.get("description")
        if description is not None and adf.problem(description):
            errors["description"] = "Operation value must be an Atlassian Document (see the " \
                                    "Atlassian Document Format)"
        ref = fields.get("reporter")
        if ref is not None:
            reporter_id = ref.get("id") or ref.get("accountId") if isinstance(ref, dict) else None
            if not isinstance(reporter_id, str) or self.store.user(reporter_id) is None:
                errors["reporter"] = "The reporter specified is not a user."
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(
                isinstance(label, str) and label and " " not in label for label in labels):
            errors["labels"] = "Labels must be strings without spaces."
        for name in fields:
            if name not in SETTABLE_FIELDS:
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate " \
                               "screen, or unknown."
        if body.get("update"):
            messages.append("The sandbox does not implement 'update' operations on create; "
                            "use 'fields'.")
        properties = []
        for prop in body.get("properties") or []:
            problem = _property_problem(prop.get("key"), prop.get("value"))
            if problem:
                messages.append(problem)
            properties.append((prop.get("key"), prop.get("value")))
        if errors or messages:
            fail(400, *messages, errors=errors)
        issue = self.store.create_issue(project["key"], issue_type, summary,
                                        reporter_id or user["accountId"], user["accountId"],
                                        description, labels, properties)
        return Reply(201, {"id": issue["id"], "key": issue["key"],
                           "self": self.views.issue_url(issue)})

    def get_issue(self, req, user, values):
        issue = self._issue(values["issueIdOrKey"])
        wanted = set(values.get("fields") or ["*all"])
        include = {f for f in ISSUE_FIELDS if "*all" in wanted or "*navigable" in wanted or
                   f in wanted} - {w[1:] for w in wanted if w.startswith("-")}
        project = self.store.project(issue["project"])
        all_fields = {
            "summary": issue["summary"], "project": self.views.project_json(project),
            "issuetype": self.views.issue_type_json(issue["issuetype"]),
            "reporter": self.views.user_ref(issue["reporter"]),
            "creator": self.views.user_ref(issue["creator"]),
            "created": jira_time(issue["created"]), "updated": jira_time(issue["updated"]),
            "status": {"self": f"{self.base}/rest/api/3/status/{issue['status']['id']}",
                       "id": issue["status"]["id"], "name": issue["status"]["name"],
                       "description": "",
                       "statusCategory": {"id": 2, "key": "new", "name": "To Do",
                                          "colorName": "blue-gray"}},
            "description": issue["description"], "labels": issue["labels"]}
        if "comment" in include:
            comments = self.store.comments(issue["key"]) or []
            all_fields["comment"] = {"comments": [self.views.comment_json(c) for c in comments],
                                     "maxResults": len(comments), "total": len(comments),
                                     "startAt": 0}
        if "attachment" in include:
            all_fields["attachment"] = [self.views.attachment_json(a)
                                        for a in self.store.attachments_of(issue)]
        out = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,"
                         "versionedRepresentations",
               "id": issue["id"], "self": self.views.issue_url(issue), "key": issue["key"],
               "fields": {k: v for k, v in all_fields.items() if k in include}}
        wanted_props = values.get("properties") or []
        if wanted_props:
            props = issue["properties"]
            out["properties"] = {k: v for k, v in props.items()
                                 if "*all" in wanted_props or k in wanted_props}
        return Reply(200, out)

    def search(self, req, user, values):
        """Issues matching a JQL query of the subset in jql.py, oldest first."""
        try:
            predicates = jql.parse(values.get("jql") or "")
        except jql.JqlError as e:
            fail(400, f"Error in the JQL Query: {e}.")
        start = values.get("startAt") or 0
        limit = min(values.get("maxResults") or 50, 100)
        found = [i for i in self.store.issues() if all(p(i) for p in predicates)]
        issues = [{"expand": "", "id": i["id"], "key": i["key"],
                   "self": self.views.issue_url(i),
                   "fields": {"summary": i["summary"]}}
                  for i in found[start:start + limit]]
        return Reply(200, {"expand": "schema,names", "startAt": start, "maxResults": limit,
                           "total": len(found), "issues": issues})

    # --- comments

    def add_comment(self, req, user, values):
        issue = self._issue(values["issueIdOrKey"])
        body = req.json
        doc = body.get("body")
        if doc is None:
            fail(400, errors={"comment": "Comment body can not be empty!"})
        problem = adf.problem(doc)
        if problem:
            fail(400, problem, errors={"comment": "Comment body is not valid!"})
        text = adf.to_text(doc)
        if not text.strip():
            fail(400, errors={"comment": "Comment body can not be empty!"})
        if len(text) > MAX_COMMENT_CHARS:
            fail(400, errors={"comment": "The entered text is too long. It exceeds the allowed "
                                         "limit of 32,767 characters."})
        visibility = body.get("visibility")
        if visibility is not None and not (isinstance(visibility.get("value"), str) and
                                           visibility.get("value")):
            fail(400, errors={"commentLevel": "You must specify a group or role for the "
                                              "comment visibility."})
        properties = []
        for prop in body.get("properties") or []:
            problem = _property_problem(prop.get("key"), prop.get("value"))
            if problem:
                fail(400, problem)
            properties.append((prop["key"], prop.get("value")))
        comment = self.store.add_comment(issue["key"], user["accountId"], doc, visibility,
                                         properties)
        if comment is None:
            fail(404, ISSUE_NOT_FOUND)
        self.comment_added(issue, comment)
        return Reply(201, self.views.comment_json(comment, _expand(values)))

    def get_comments(self, req, user, values):
        issue = self._issue(values["issueIdOrKey"])
        start, size = values.get("startAt", 0), values.get("maxResults", 50)
        if start < 0:
            fail(400, "startAt must not be negative.")
        if size < 0:
            fail(400, "maxResults must not be negative.")
        size = min(size, MAX_PAGE)
        comments = self.store.comments(issue["key"]) or []
        if values.get("orderBy") == "-created":
            comments.reverse()
        expand = _expand(values)
        return Reply(200, {"startAt": start, "maxResults": size, "total": len(comments),
                           "comments": [self.views.comment_json(c, expand)
                                        for c in comments[start:start + size]]})

    def get_comment(self, req, user, values):
        issue = self._issue(values["issueIdOrKey"])
        comment = self.store.comment(issue["key"], values["id"])
        if comment is None:
            fail(404, f"Can not find a comment for the id: {values['id'][:40]}.")
        return Reply(200, self.views.comment_json(comment, _expand(values)))

    # --- issue properties

    def property_keys(self, req, user, values):
        issue = self._issue(values["issueIdOrKey"])
        return Reply(200, {"keys": [
            {"self": f"{self.views.issue_url(issue)}/properties/{quote(k, safe='')}", "key": k}
            for k in issue["properties"]]})

    def get_property(self, req, user, values):
        issue = self._issue(values["issueIdOrKey"])
        key = values["propertyKey"]
        if key not in issue["properties"]:
            fail(404, f"The property with key '{key[:MAX_PROPERTY_KEY]}' does not exist.")
        return Reply(200, {"key": key, "value": issue["properties"][key]})

    def set_property(self, req, user, values):
        self._issue(values["issueIdOrKey"])
        problem = _property_problem(values["propertyKey"], req.json)
        if problem:
            fail(400, problem)
        created = self.store.set_property(values["issueIdOrKey"], values["propertyKey"],
                                          req.json)
        if created is None:
            fail(404, ISSUE_NOT_FOUND)
        return Reply(201 if created else 200)

    def delete_property(self, req, user, values):
        self._issue(values["issueIdOrKey"])
        if not self.store.delete_property(values["issueIdOrKey"], values["propertyKey"]):
            fail(404, f"The property with key '{values['propertyKey'][:MAX_PROPERTY_KEY]}' "
                      "does not exist.")
        return Reply(204)

    # --- attachments

    def add_attachment(self, req, user, values):
        token = (req.headers.get("X-Atlassian-Token") or "").strip().lower()
        if token not in ("no-check", "nocheck"):
            raise ApiError(Reply(403, b"XSRF check failed", content_type="text/plain"))
        issue = self._issue(values["issueIdOrKey"])
        try:
            parts = multipart.parse(req.body or b"", req.headers.get("Content-Type") or "")
        except multipart.MultipartError as e:
            fail(400, f"Invalid multipart/form-data body: {e}.")
        files = [p for p in parts if p.name == "file" and p.filename is not None]
        if not files:
            fail(400, "The request has no part named 'file' with a filename.")
        for part in files:
            if len(part.data) > self.max_attachment_bytes:
                fail(413, f"The field file exceeds its maximum permitted size of "
                          f"{self.max_attachment_bytes} bytes.")
            if not part.filename:
                fail(400, "An attachment needs a file name.")
        out = []
        for part in files:
            try:
                mime = part.content_type if MIME_TYPE.match(part.content_type) else \
                    "application/octet-stream"
                stored = self.store.add_attachment(issue["key"], user["accountId"],
                                                   part.filename, mime, part.data)
            except StoreError as e:
                fail(413, str(e))
            out.append(self.views.attachment_json(stored))
        return Reply(200, out)

    def attachment_content(self, req, user, values):
        found = self.store.attachment(values["id"], with_data=True)
        if found is None:
            fail(404, "The attachment does not exist.")
        return Reply(200, found["data"], content_type=found["mimeType"])

    # --- users

    def get_user(self, req, user, values):
        account_id = values.get("accountId")
        if not account_id:
            fail(400, "The accountId query parameter needs to be provided.")
        found = self.store.user(account_id)
        if found is None:
            fail(404, "Specified user does not exist or you do not have access to it.")
        return Reply(200, self.views.user_json(found))

    def find_users(self, req, user, values):
        text, account_id = values.get("query"), values.get("accountId")
        if not text and not account_id and not values.get("property"):
            fail(400, "One of 'accountId', 'query' or 'property' query parameters must be "
                      "provided.")
        found = self.store.search_users(text or None, account_id or None)
        start, size = max(values.get("startAt", 0), 0), max(values.get("maxResults", 50), 0)
        return Reply(200, [self.views.user_json(u) for u in found[start:start + min(size, 1000)]])

    def myself(self, req, user, values):
        return Reply(200, self.views.user_json(user))

    # --- Jira Service Management

    def create_customer(self, req, rec):
        """POST /rest/servicedeskapi/customer: JSM's API, not in the platform spec; its body is
        checked here ({"email", "displayName"}, "fullName" accepted as JSM still does)."""
        self.authenticate(req, rec)
        if media_type(req.headers) != "application/json":
            raise ApiError(_jsm_error(415, "Unsupported media type; expected application/json.",
                                      "sd.request.unsupported.media.type"))
        body = parse_json(req.body or b"")
        messages = []
        if not isinstance(body, dict):
            messages.append("$: must be of type object")
        else:
            unknown = set(body) - {"email", "displayName", "fullName"}
            if unknown:
                messages.append("$: unexpected properties " +
                                ", ".join(f"'{k[:64]}'" for k in sorted(unknown)[:10]))
            email = body.get("email")
            name = body.get("displayName", body.get("fullName"))
            if not isinstance(email, str) or not EMAIL.match(email) or len(email) > 254:
                messages.append("$.email: must be a valid email address")
            if not isinstance(name, str) or not name.strip() or len(name) > 255:
                messages.append("$.displayName: must be a non-empty string of at most 255 "
                                "characters")
        rec["valid"] = not messages
        rec["errors"] = messages
        req.json = body
        if messages:
            raise ApiError(_jsm_error(400, "; ".join(messages), "sd.customer.invalid"))
        try:
            customer = self.store.add_user("customer", body["email"], name)
        except StoreError as e:
            strict = (req.query.get("strictConflictStatusCode") or ["false"])[0] == "true"
            raise ApiError(_jsm_error(409 if strict else 400, str(e),
                                      "sd.customer.already.exists")) from None
        rec["created_account_id"] = customer["accountId"]
        return Reply(201, self.views.customer_json(customer))


def _jsm_error(status, message, key):
    return Reply(status, {"errorMessage": message,
                          "i18nErrorMessage": {"i18nKey": key, "parameters": []}})
