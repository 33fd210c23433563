"""spec_validation.py - Jira's OpenAPI 3.0 document as a request router and validator.

Loads the platform spec once, indexes its path templates, and validates what crosses the wire
against it: path and query parameters against their declared schemas, JSON request bodies
against the operation's requestBody schema, JSON responses against the schema declared for
their status code. OpenAPI 3.0 schemas are translated to JSON Schema draft 4 when the spec is
loaded: `nullable: true` adds null to the type (or the enum), `readOnly` properties are not
required in requests and `writeOnly` ones not in responses, keywords that only document
(example, xml, discriminator, ...) are dropped, and a `$ref` keeps no siblings (as OAS 3.0
says). `$ref: #/components/schemas/X` resolves against the translated document. Formats
checked: int32, int64, date-time (ISO 8601, with the "+0000" offsets Jira really sends), uri
(has a scheme); any other format passes.

Error messages name the place ("$.fields.summary") and the rule broken, never the offending
value: request bodies carry customers' messages, and these messages end up in replies, records
and clients' logs.

Threads: Spec is read-only after construction except its validator cache; validation runs
under one lock because jsonschema's RefResolver keeps a scope stack and is not thread-safe.
It does not do authentication, Jira's business rules or anything beyond the schemas."""
import json
import re
import threading
from urllib.parse import unquote

import jsonschema
from jsonschema import Draft4Validator, FormatChecker

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Keywords that document a schema without constraining instances (or that draft 4 lacks).
DOC_ONLY = frozenset(("description", "example", "examples", "xml", "externalDocs", "discriminator",
                      "deprecated", "readOnly", "writeOnly", "nullable", "title"))
MAX_MESSAGES = 20
INT32 = (-2**31, 2**31 - 1)
INT64 = (-2**63, 2**63 - 1)
ISO_DATE_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"
                           r"(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})\Z")
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*\Z")


def _format_checker():
    checker = FormatChecker(formats=())

    @checker.checks("int32")
    def _int32(value):
        return not isinstance(value, int) or INT32[0] <= value <= INT32[1]

    @checker.checks("int64")
    def _int64(value):
        return not isinstance(value, int) or INT64[0] <= value <= INT64[1]

    @checker.checks("date-time")
    def _date_time(value):
        return not isinstance(value, str) or bool(ISO_DATE_TIME.match(value))

    @checker.checks("uri")
    def _uri(value):
        return not isinstance(value, str) or bool(URI.match(value))

    return checker


def _is_marked(schema, flag):
    """True when a property schema carries readOnly/writeOnly itself (directly or beside an
    allOf wrapper, which is how this spec marks referenced properties)."""
    return isinstance(schema, dict) and schema.get(flag) is True


def translate(node, direction):
    """Returns the draft 4 equivalent of the OpenAPI 3.0 schema node for direction "request"
    or "response". Never fails on odd input: what it does not know it copies."""
    if isinstance(node, list):
        return [translate(item, direction) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    out = {}
    for key, value in node.items():
        if key in DOC_ONLY:
            continue
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: translate(sub, direction) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = translate(value, direction)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [translate(sub, direction) for sub in value]
        else:
            out[key] = value
    required = out.get("required")
    props = node.get("properties")
    if isinstance(required, list) and isinstance(props, dict):
        flag = "readOnly" if direction == "request" else "writeOnly"
        kept = [name for name in required if not _is_marked(props.get(name), flag)]
        if kept:
            out["required"] = kept
        else:
            del out["required"]
    if node.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types + ["null"]
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _path_text(path):
    """A JSON path such as $.body.content[0] for the deque of keys and indexes."""
    text = "$"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _short(value, limit=120):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def _reason(error):
    """Says which rule an instance broke without quoting the instance."""
    v, rule, inst = error.validator, error.validator_value, error.instance
    if v == "type":
        kinds = rule if isinstance(rule, list) else [rule]
        return "must be of type " + " or ".join(str(k) for k in kinds)
    if v == "required":
        missing = [n for n in rule if isinstance(inst, dict) and n not in inst]
        return "missing required propert" + ("y " if len(missing) == 1 else "ies ") + \
            ", ".join(f"'{n}'" for n in missing)
    if v == "additionalProperties":
        known = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        extra = [k for k in (inst if isinstance(inst, dict) else {}) if k not in known and
                 not any(re.search(p, k) for p in patterns)]
        return "unexpected propert" + ("y " if len(extra) == 1 else "ies ") + \
            ", ".join(f"'{k[:64]}'" for k in extra[:10])
    if v == "enum":
        return "must be one of " + _short(rule)
    if v in ("maxLength", "minLength"):
        return f"must be at {'most' if v == 'maxLength' else 'least'} {rule} characters long"
    if v in ("maxItems", "minItems"):
        return f"must have at {'most' if v == 'maxItems' else 'least'} {rule} items"
    if v in ("maxProperties", "minProperties"):
        return f"must have at {'most' if v == 'maxProperties' else 'least'} {rule} properties"
    if v == "maximum":
        return f"must be {'<' if error.schema.get('exclusiveMaximum') else '<='} {rule}"
    if v == "minimum":
        return f"must be {'>' if error.schema.get('exclusiveMinimum') else '>='} {rule}"
    if v == "format":
        return f"must be a valid {rule}"
    if v == "pattern":
        return f"must match the pattern {_short(rule)}"
    if v == "uniqueItems":
        return "must not contain duplicate items"
    if v == "multipleOf":
        return f"must be a multiple of {rule}"
    if v == "anyOf":
        return "must match at least one of the allowed schemas"
    if v == "oneOf":
        return "must match exactly one of the allowed schemas"
    if v == "not":
        return "must not match the excluded schema"
    return f"breaks the '{v}' rule"


def error_messages(validator, instance, root="$"):
    """The validator's errors for instance as "<path>: <reason>" strings, sorted by path, at
    most MAX_MESSAGES. Returns [] when the instance is valid."""
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    messages = []
    for error in errors[:MAX_MESSAGES]:
        path = _path_text(error.absolute_path)
        messages.append((root + path[1:] if path != "$" else root) + ": " + _reason(error))
    return messages


class Operation:
    """One operation of the spec: its id, template, method and raw (untranslated) parts."""

    def __init__(self, template, method, raw, path_level_params):
        self.template = template
        self.method = method.upper()
        self.id = raw.get("operationId") or f"{self.method} {template}"
        params = {(p.get("in"), p.get("name")): p for p in path_level_params if isinstance(p, dict)}
        params.update({(p.get("in"), p.get("name")): p for p in raw.get("parameters", [])
                       if isinstance(p, dict)})
        self.parameters = list(params.values())
        self.request_body = raw.get("requestBody")
        self.responses = raw.get("responses", {})

    def body_media_types(self):
        """The media types the requestBody accepts ([] when the operation takes no body)."""
        if not isinstance(self.request_body, dict):
            return []
        return list((self.request_body.get("content") or {}).keys())

    @property
    def body_required(self):
        return isinstance(self.request_body, dict) and self.request_body.get("required") is True


class Spec:
    """The loaded spec. Construct with the path of the JSON document; raises OSError or
    ValueError when it cannot be read or is not an OpenAPI 3.0 document."""

    def __init__(self, path):
        with open(path, "rb") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.0"):
            raise ValueError(f"{path}: not an OpenAPI 3.0 document")
        self.path = path
        self.doc = doc
        schemas = (doc.get("components") or {}).get("schemas") or {}
        self._docs = {d: {"components": {"schemas": {n: translate(s, d)
                                                     for n, s in schemas.items()}}}
                      for d in ("request", "response")}
        self._formats = _format_checker()
        self._cache = {}
        self._lock = threading.Lock()
        self._routes = {}  # segment count -> [(literal count, template, matcher)]
        self._operations = {}
        for template, item in (doc.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters") or []
            for method, raw in item.items():
                if method in HTTP_METHODS and isinstance(raw, dict):
                    self._operations[(template, method.upper())] = \
                        Operation(template, method, raw, shared)
            segments = template.strip("/").split("/")
            matcher = [(seg[1:-1], None) if seg.startswith("{") and seg.endswith("}")
                       else (None, seg) for seg in segments]
            literals = sum(1 for name, _ in matcher if name is None)
            self._routes.setdefault(len(segments), []).append((literals, template, matcher))
        for routes in self._routes.values():
            routes.sort(key=lambda r: -r[0])

    # --- routing

    def match(self, raw_path):
        """The (template, path parameters) of the most specific template that the raw
        (percent-encoded) path matches, or None. Parameters are percent-decoded."""
        segments = raw_path.strip("/").split("/")
        for _, template, matcher in self._routes.get(len(segments), ()):
            params = {}
            for (name, literal), seg in zip(matcher, segments):
                if name is None:
                    if seg != literal:
                        break
                else:
                    value = unquote(seg, errors="strict") if "%" in seg else seg
                    if not value:
                        break
                    params[name] = value
            else:
                return template, params
        return None

    def methods(self, template):
        """The methods the spec documents for template, upper case."""
        return sorted(m for (t, m) in self._operations if t == template)

    def operation(self, template, method):
        return self._operations.get((template, method.upper()))

    # --- validators

    def _validator(self, key, schema_fn, direction):
        with self._lock:
            if key not in self._cache:
                schema = schema_fn()
                if schema is None:
                    self._cache[key] = None
                else:
                    doc = self._docs[direction]
                    resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
                    self._cache[key] = Draft4Validator(translate(schema, direction),
                                                       resolver=resolver,
                                                       format_checker=self._formats)
            return self._cache[key]

    def _messages(self, validator, instance, root):
        with self._lock:
            return error_messages(validator, instance, root)

    def validate_parameters(self, op, path_params, query):
        """Checks the declared path and query parameters. query maps names to lists of raw
        values. Returns (values, messages): values maps each present declared parameter to
        its typed value; messages lists what is wrong ([] when all is well)."""
        values, messages = {}, []
        for param in op.parameters:
            where, name = param.get("in"), param.get("name")
            if where not in ("path", "query"):
                continue
            schema = param.get("schema") or {}
            if where == "path":
                raw = [path_params[name]] if name in path_params else []
            else:
                raw = query.get(name, [])
            if not raw:
                if param.get("required"):
                    messages.append(f"{where} parameter '{name}': is required")
                continue
            value, problem = _coerce(raw, schema)
            if problem:
                messages.append(f"{where} parameter '{name}': {problem}")
                continue
            validator = self._validator(("param", op.id, where, name), lambda: schema, "request")
            found = self._messages(validator, value, f"{where} parameter '{name}'")
            if found:
                messages.extend(found)
            else:
                values[name] = value
        return values, messages

    def validate_request_body(self, op, media_type, body):
        """Checks a parsed JSON body against the operation's schema for media_type. Returns
        the messages ([] when valid or when the operation declares no schema)."""
        content = (op.request_body or {}).get("content") or {}
        entry = content.get(media_type) or content.get("*/*")
        if not isinstance(entry, dict) or "schema" not in entry:
            return []
        validator = self._validator(("body", op.id, media_type), lambda: entry["schema"],
                                    "request")
        return self._messages(validator, body, "$")

    def response_schema(self, op, status):
        responses = op.responses or {}
        entry = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or \
            responses.get("default")
        if not isinstance(entry, dict):
            return None
        content = entry.get("content") or {}
        media = content.get("application/json") or content.get("*/*")
        return media.get("schema") if isinstance(media, dict) else None

    def validate_response(self, method, raw_path, status, body):
        """Checks a parsed JSON response body for method and raw_path (a path such as
        /rest/api/3/issue/SUP-1) against the schema the spec declares for status. Returns the
        messages; [] when valid or when the spec declares no JSON schema for that status.
        Raises LookupError when the spec has no such operation."""
        found = self.match(raw_path)
        op = self.operation(found[0], method) if found else None
        if op is None:
            raise LookupError(f"the spec has no operation {method} {raw_path}")
        return self.validate_operation_response(op, status, body)

    def validate_operation_response(self, op, status, body):
        """As validate_response, for an Operation."""
        validator = self._validator(("response", op.id, int(status)),
                                    lambda: self.response_schema(op, status), "response")
        if validator is None:
            return []
        return self._messages(validator, body, "$")


def _coerce(raw, schema):
    """Turns the raw query strings of one parameter into the value its schema's type implies.
    Returns (value, None) or (None, problem)."""
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items") or {}
        values = []
        for piece in raw:
            for part in piece.split(","):
                value, problem = _coerce([part], items)
                if problem:
                    return None, problem
                values.append(value)
        return values, None
    text = raw[0]
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]{1,20}", text):
            return None, "must be an integer"
        return int(text), None
    if kind == "number":
        try:
            value = float(text)
        except ValueError:
            return None, "must be a number"
        if value != value or value in (float("inf"), float("-inf")):
            return None, "must be a finite number"
        return value, None
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            return None, "must be true or false"
        return text.lower() == "true", None
    return text, None
