"""views.py - the JSON objects Jira answers with, built from the Store's records: User and
UserDetails, Comment, project, issue type, Attachment, the comment_created webhook data and
JSM's customer. Their shapes follow the platform spec's schemas (tests check every reply
against them) and, for the customer, Atlassian's JSM docs. No I/O; reads the Store only to
resolve account ids."""
from urllib.parse import quote

import adf
from store import jira_time


class JiraViews:
    def __init__(self, store, base_url):
        self.store = store
        self.base = base_url

    def user_url(self, account_id):
        return f"{self.base}/rest/api/3/user?accountId={quote(account_id, safe='')}"

    def avatars(self, account_id):
        return {size: f"{self.base}/_sandbox/avatar/{quote(account_id, safe='')}?s={size[:2]}"
                for size in ("48x48", "24x24", "16x16", "32x32")}

    def user_json(self, user, details=False):
        """A User (details=False) or UserDetails (details=True) object."""
        kind = {"agent": "atlassian", "customer": "customer", "app": "app"}.get(user["kind"],
                                                                               "unknown")
        out = {"self": self.user_url(user["accountId"]), "accountId": user["accountId"],
               "accountType": kind, "avatarUrls": self.avatars(user["accountId"]),
               "displayName": user["displayName"], "active": user["active"],
               "timeZone": user["timeZone"]}
        if user.get("email"):
            out["emailAddress"] = user["email"]
        if not details:
            out["locale"] = "en_US"
        return out

    def user_ref(self, account_id):
        user = self.store.user(account_id) if account_id else None
        if user is None:
            return None if account_id is None else {"accountId": account_id, "active": False,
                                                    "displayName": "Former user"}
        return self.user_json(user, details=True)

    def issue_url(self, issue):
        return f"{self.base}/rest/api/3/issue/{issue['id']}"

    def comment_json(self, comment, expand=()):
        author = self.user_ref(comment["author"])
        out = {"self": f"{self.base}/rest/api/3/issue/{comment['issue_id']}/comment/"
                       f"{comment['id']}",
               "id": comment["id"], "author": author, "body": comment["body"],
               "updateAuthor": author, "created": jira_time(comment["created"]),
               "updated": jira_time(comment["updated"]), "jsdPublic": jsd_public(comment)}
        if comment.get("visibility"):
            out["visibility"] = comment["visibility"]
        if "renderedBody" in expand:
            out["renderedBody"] = adf.to_html(comment["body"])
        if "properties" in expand:
            out["properties"] = [{"key": k, "value": v}
                                 for k, v in comment["properties"].items()]
        return out

    def project_json(self, project):
        return {"self": f"{self.base}/rest/api/3/project/{project['id']}", "id": project["id"],
                "key": project["key"], "name": project["name"],
                "projectTypeKey": "service_desk", "simplified": False}

    def issue_type_json(self, issue_type):
        return {"self": f"{self.base}/rest/api/3/issuetype/{issue_type['id']}",
                "id": issue_type["id"], "name": issue_type["name"], "description": "",
                "subtask": False, "hierarchyLevel": 0}

    def attachment_json(self, attachment):
        return {"self": f"{self.base}/rest/api/3/attachments/{attachment['id']}",
                "id": attachment["id"], "filename": attachment["filename"],
                "author": self.user_ref(attachment["author"]),
                "created": jira_time(attachment["created"]), "size": attachment["size"],
                "mimeType": attachment["mimeType"],
                "content": f"{self.base}/rest/api/3/attachment/content/{attachment['id']}"}

    def webhook_body(self, issue, comment):
        """The comment_created webhook data Jira Cloud sends: the comment body as plain text
        (webhooks use the v2 representation), author and issue summarised."""
        author = self.user_ref(comment["author"]) or {}
        brief = {k: author[k] for k in ("self", "accountId", "displayName", "active",
                                        "timeZone", "accountType") if k in author}
        project = self.store.project(issue["project"]) or {"id": "", "key": issue["project"],
                                                            "name": issue["project"]}
        return {"timestamp": int(comment["created"] * 1000), "webhookEvent": "comment_created",
                "comment": {"self": f"{self.base}/rest/api/2/issue/{issue['id']}/comment/"
                                    f"{comment['id']}",
                            "id": comment["id"], "author": brief,
                            "body": adf.to_text(comment["body"]), "updateAuthor": brief,
                            "created": jira_time(comment["created"]),
                            "updated": jira_time(comment["updated"]),
                            "jsdPublic": jsd_public(comment)},
                "issue": {"id": issue["id"], "self": self.issue_url(issue), "key": issue["key"],
                          "fields": {"summary": issue["summary"],
                                     "project": self.project_json(project),
                                     "issuetype": {"id": issue["issuetype"]["id"],
                                                   "name": issue["issuetype"]["name"]},
                                     "status": {"id": issue["status"]["id"],
                                                "name": issue["status"]["name"]}}}}

    def customer_json(self, customer):
        return {"accountId": customer["accountId"], "emailAddress": customer["email"],
                "displayName": customer["displayName"], "active": True,
                "timeZone": customer["timeZone"],
                "_links": {"jiraRest": self.user_url(customer["accountId"]).replace(
                               "/api/3/", "/api/2/"),
                           "avatarUrls": self.avatars(customer["accountId"]),
                           "self": self.user_url(customer["accountId"]).replace("/api/3/",
                                                                                "/api/2/")}}


def jsd_public(comment):
    """False for JSM internal notes (sd.public.comment {"internal": true}) and restricted
    comments."""
    marker = comment["properties"].get("sd.public.comment")
    internal = isinstance(marker, dict) and marker.get("internal") is True
    return not internal and not comment.get("visibility")


def check_customer_json(body):
    """Messages for a JSM customer reply that lacks the shape Atlassian documents ([] when
    fine). The platform spec has no schema for it, so tests use this instead."""
    messages = []
    if not isinstance(body, dict):
        return ["$: must be of type object"]
    for key, kind in (("accountId", str), ("emailAddress", str), ("displayName", str),
                      ("active", bool), ("timeZone", str), ("_links", dict)):
        if not isinstance(body.get(key), kind):
            messages.append(f"$.{key}: must be of type {kind.__name__}")
    return messages
