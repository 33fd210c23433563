"""faults.py - the fault rules the control API installs, and which one a request meets.

A rule: {"match": {"method"?, "path_regex"?}, "action": "status"|"delay"|"drop"|"reset",
"status"?: 429|500|502|503|504, "retry_after_s"?, "delay_ms"?, "times"?: N (default 1, -1 for
ever), "probability"?: 0..1 (default 1), "after"?: bool}. Rules are tried in the order given;
the first that matches and fires is used up by one. A rule whose probability roll fails is
not used up. `after: true` means the sandbox performs the operation and only then fails the
reply (a lost reply); without it, a faulted request has no effect at all.

What each action does to the connection is the HTTP layer's business (jira_sandbox.py); this
module only parses, stores and picks. Thread-safe: one lock around the rule list."""
import random
import re
import threading

ACTIONS = ("status", "delay", "drop", "reset")
STATUSES = (429, 500, 502, 503, 504)
MAX_RULES = 100
MAX_DELAY_MS = 120000


class FaultError(ValueError):
    """A rule the control API refuses; str(self) says why."""


class Rule:
    def __init__(self, spec, index):
        if not isinstance(spec, dict):
            raise FaultError(f"rule {index}: must be an object")
        unknown = set(spec) - {"match", "action", "status", "retry_after_s", "delay_ms", "times",
                               "probability", "after"}
        if unknown:
            raise FaultError(f"rule {index}: unknown keys {sorted(unknown)}")
        match = spec.get("match", {})
        if not isinstance(match, dict) or set(match) - {"method", "path_regex"}:
            raise FaultError(f"rule {index}: match takes method and path_regex")
        self.method = match.get("method")
        if self.method is not None and not isinstance(self.method, str):
            raise FaultError(f"rule {index}: match.method must be a string")
        self.method = self.method.upper() if self.method else None
        self.path_regex = match.get("path_regex")
        try:
            self._path = re.compile(self.path_regex) if self.path_regex is not None else None
        except (re.error, TypeError) as e:
            raise FaultError(f"rule {index}: bad path_regex ({e})") from None
        self.action = spec.get("action")
        if self.action not in ACTIONS:
            raise FaultError(f"rule {index}: action must be one of {list(ACTIONS)}")
        self.status = spec.get("status", 500 if self.action == "status" else None)
        if self.action == "status" and self.status not in STATUSES:
            raise FaultError(f"rule {index}: status must be one of {list(STATUSES)}")
        self.retry_after_s = _number(spec, "retry_after_s", 1 if self.status == 429 else None,
                                     0, 3600, index)
        self.delay_ms = _number(spec, "delay_ms", 0, 0, MAX_DELAY_MS, index)
        if self.action == "delay" and not self.delay_ms:
            raise FaultError(f"rule {index}: a delay needs delay_ms > 0")
        self.times = spec.get("times", 1)
        if not isinstance(self.times, int) or isinstance(self.times, bool) or \
                (self.times < 1 and self.times != -1):
            raise FaultError(f"rule {index}: times must be a positive integer or -1")
        self.probability = _number(spec, "probability", 1.0, 0, 1, index)
        self.after = spec.get("after", False)
        if not isinstance(self.after, bool):
            raise FaultError(f"rule {index}: after must be true or false")
        self.fired = 0

    def matches(self, method, path):
        return (self.method is None or self.method == method) and \
            (self._path is None or self._path.search(path) is not None)

    def describe(self):
        out = {"match": {k: v for k, v in (("method", self.method),
                                           ("path_regex", self.path_regex)) if v is not None},
               "action": self.action, "times": self.times, "probability": self.probability,
               "after": self.after, "fired": self.fired}
        for key in ("status", "retry_after_s", "delay_ms"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _number(spec, key, default, low, high, index):
    value = spec.get(key, default)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise FaultError(f"rule {index}: {key} must be a number from {low} to {high}")
    return value


class Faults:
    """The installed rules."""

    def __init__(self, rng=None):
        self._rules = []
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    def add(self, specs):
        """Parses and appends rules (a list of rule objects, or one). Returns the descriptions
        of all installed rules. Raises FaultError and installs nothing when one is bad."""
        specs = specs if isinstance(specs, list) else [specs]
        rules = [Rule(spec, i) for i, spec in enumerate(specs)]
        with self._lock:
            if len(self._rules) + len(rules) > MAX_RULES:
                raise FaultError(f"at most {MAX_RULES} rules")
            self._rules.extend(rules)
            return [r.describe() for r in self._rules]

    def clear(self):
        with self._lock:
            self._rules.clear()

    def describe(self):
        with self._lock:
            return [r.describe() for r in self._rules]

    def take(self, method, path):
        """The rule this request meets, used up by one, or None. A rule used up entirely is
        removed."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1 and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.times != -1:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                return rule
            return None
