"""jql.py - the small part of JQL the sandbox answers: clauses joined by AND, each one of

    project = KEY            key = KEY-1            issue.property[name].path = "value"

with values bare or in double quotes (backslash escapes \\" and \\\\). Anything else is refused
with the reason, the way Jira answers a query it cannot parse (400, "Error in the JQL Query").
parse() returns a list of predicates over an issue as the Store keeps it; nothing here keeps
state; thread-safe."""
import re

CLAUSE = re.compile(
    r'\s*(?P<field>project|key|issue\.property\[(?P<prop>[A-Za-z0-9_.\-]{1,255})\]'
    r'(?P<path>(?:\.[A-Za-z0-9_]{1,64}){1,8}))\s*=\s*'
    r'(?P<value>"(?:[^"\\]|\\.){0,1000}"|[A-Za-z0-9_.\-]{1,255})\s*', re.IGNORECASE)
AND = re.compile(r'AND\b', re.IGNORECASE)


class JqlError(Exception):
    """A query outside what the sandbox understands; str(self) says where."""


def _value(text):
    if text.startswith('"'):
        return re.sub(r'\\(.)', r'\1', text[1:-1])
    return text


def _property_getter(name, path):
    keys = path.lstrip(".").split(".")

    def get(issue):
        value = issue.get("properties", {}).get(name)
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value
    return get


def parse(jql):
    """Returns predicates (functions issue -> bool) that must all hold."""
    if not isinstance(jql, str) or not jql.strip():
        raise JqlError("the query is empty")
    if len(jql) > 4000:
        raise JqlError("the query is too long")
    predicates, pos = [], 0
    while True:
        m = CLAUSE.match(jql, pos)
        if not m:
            raise JqlError(f"cannot parse the query at character {pos + 1}")
        field, value = m.group("field").lower(), _value(m.group("value"))
        if field == "project":
            predicates.append(lambda issue, v=value.upper(): issue["project"].upper() == v)
        elif field == "key":
            predicates.append(lambda issue, v=value.upper(): issue["key"].upper() == v)
        else:
            get = _property_getter(m.group("prop"), m.group("path"))
            predicates.append(lambda issue, g=get, v=value: g(issue) is not None and
                              str(g(issue)) == v)
        pos = m.end()
        if pos == len(jql):
            return predicates
        a = AND.match(jql, pos)
        if not a:
            raise JqlError(f"expected AND at character {pos + 1}")
        pos = a.end()
