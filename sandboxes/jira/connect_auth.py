"""connect_auth.py - the credentials Jira Cloud checks and signs: HTTP basic with an API token,
Atlassian Connect JWTs (HS256 with an installation's shared secret, RS256 for signed install
hooks) and their query string hash.

The canonical request follows "Understanding JWT for Connect apps" and atlassian-jwt, as
common/connect_qsh.h (the C side) does:
  METHOD & CANONICAL_PATH & CANONICAL_QUERY
  - METHOD upper case.
  - CANONICAL_PATH: the raw (still percent-encoded) path with the base URL's context path
    taken off its front, '&' as "%26", a leading '/', no trailing '/', and "/" when empty.
  - CANONICAL_QUERY: the raw query split on '&', empty pieces and empty names skipped, names
    and values percent-decoded form-style ('+' is a space), the `jwt` parameter dropped;
    parameters grouped by name, names sorted by their encoded form (code point order), the
    values of one name sorted by their decoded UTF-8 bytes and joined with ','; names and
    values re-encoded per RFC 3986 (A-Z a-z 0-9 - . _ ~ kept, every other byte %XX with
    uppercase hex: space is %20, '*' %2A, '+' %2B); "name=values" pairs joined with '&'.
qsh is the lowercase hex SHA-256 of the UTF-8 canonical request.

Nothing here keeps state or logs; thread-safe."""
import base64
import binascii
import hashlib
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
MAX_IAT_SKEW_S = 60        # how far in the future iat may be (clock skew)
TOKEN_LIFETIME_S = 180     # lifetime of the tokens the sandbox signs
MAX_TOKEN_BYTES = 8192


class AuthError(Exception):
    """A credential the sandbox refuses; str(self) is the reason given to the caller."""


def percent_encode(data):
    """RFC 3986 encoding of str or bytes (UTF-8): unreserved bytes as is, others %XX."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return "".join(chr(b) if b in UNRESERVED else "%%%02X" % b for b in raw)


def _form_decode(piece):
    """Percent-decodes one query name or value (bytes) form-style ('+' is a space). A '%' not
    followed by two hex digits stays as it is."""
    raw = piece.replace(b"+", b" ")
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x25 and _is_hex(raw[i + 1:i + 3]):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def _is_hex(two):
    return len(two) == 2 and all(c in b"0123456789abcdefABCDEF" for c in two)


def _as_bytes(data):
    """str (UTF-8) or bytes as bytes; lone surrogates from a surrogateescape decode round-trip."""
    if data is None:
        return b""
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")


def canonical_path(raw_path, base_path=""):
    """The canonical URI of raw_path (str or bytes, without its query) below the context path
    base_path. Returns str; bytes that are not UTF-8 survive as surrogate escapes."""
    path = _as_bytes(raw_path).decode("utf-8", "surrogateescape")
    base = (base_path or "").rstrip("/")
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base):]
    path = path.replace("&", "%26")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path or "/"


def canonical_query(raw_query):
    """The canonical query string of a raw query (str or bytes, without '?'), in ASCII."""
    groups = {}
    for piece in _as_bytes(raw_query).split(b"&"):
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        if not name:
            continue
        name_bytes = _form_decode(name)
        if name_bytes == b"jwt":
            continue
        groups.setdefault(name_bytes, []).append(_form_decode(value))
    pairs = sorted((percent_encode(n), sorted(v)) for n, v in groups.items())
    return "&".join(name + "=" + ",".join(percent_encode(v) for v in values)
                    for name, values in pairs)


def canonical_request(method, raw_path, raw_query, base_path=""):
    return "&".join((method.upper(), canonical_path(raw_path, base_path),
                     canonical_query(raw_query)))


def printable(canonical):
    """A canonical request safe to show in a JSON message (odd bytes replaced)."""
    return canonical.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def qsh(method, raw_path, raw_query, base_path=""):
    """The qsh claim for a request: hex SHA-256 of its canonical request."""
    return hashlib.sha256(canonical_request(method, raw_path, raw_query, base_path)
                          .encode("utf-8", "surrogateescape")).hexdigest()


def parse_basic(header_value):
    """(email, token) from an "Authorization: Basic ..." value. Raises AuthError."""
    try:
        decoded = base64.b64decode(header_value.split(None, 1)[1].strip(), validate=True)
        email, sep, token = decoded.decode("utf-8").partition(":")
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        raise AuthError("malformed Basic credentials") from None
    if not sep or not email:
        raise AuthError("malformed Basic credentials")
    return email, token


def unverified_claims(token):
    """The header and claims of a JWT before its signature is checked. Raises AuthError."""
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthError("JWT is too long")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise AuthError(f"JWT is malformed ({type(e).__name__})") from None
    if not isinstance(claims, dict):
        raise AuthError("JWT claims are not an object")
    return header, claims


def verify_hs256(token, secret, method, raw_path, raw_query, now=None):
    """Checks a Connect JWT that an app sent: HS256 signature with secret, exp not passed
    (refused when now > exp), iat present and at most MAX_IAT_SKEW_S in the future, qsh equal
    to this request's. Returns the claims; raises AuthError with the reason."""
    now = time.time() if now is None else now
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False, "verify_aud": False})
    except jwt.InvalidAlgorithmError:
        raise AuthError("JWT algorithm must be HS256") from None
    except jwt.InvalidSignatureError:
        raise AuthError("JWT signature verification failed") from None
    except jwt.PyJWTError as e:
        raise AuthError(f"JWT is malformed ({type(e).__name__})") from None
    for claim in ("iss", "iat", "exp", "qsh"):
        if claim not in claims:
            raise AuthError(f"JWT has no '{claim}' claim")
    exp, iat = claims["exp"], claims["iat"]
    if not _is_number(exp) or not _is_number(iat):
        raise AuthError("JWT 'exp' and 'iat' must be numbers")
    if now > exp:
        raise AuthError("JWT expired")
    if iat > now + MAX_IAT_SKEW_S:
        raise AuthError("JWT 'iat' is in the future")
    if claims["qsh"] != qsh(method, raw_path, raw_query):
        raise AuthError("JWT qsh does not match the request; the canonical request is '" +
                        printable(canonical_request(method, raw_path, raw_query)) + "'")
    return claims


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sign_hs256(secret, issuer, method, url_path, raw_query="", base_path="", extra=None):
    """A Connect JWT for a request the sandbox makes (webhooks): HS256 with secret."""
    now = int(time.time())
    claims = {"iss": issuer, "iat": now, "exp": now + TOKEN_LIFETIME_S,
              "qsh": qsh(method, url_path, raw_query, base_path)}
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")


class InstallKeys:
    """The RSA key pair that signs lifecycle callbacks (the sandbox's connect-install-keys),
    identified by a kid. Generating the key takes ~50 ms."""

    def __init__(self):
        self.kid = str(uuid.uuid4())
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, client_key, audience, method, url_path, raw_query="", base_path=""):
        """An RS256 JWT for a lifecycle request: iss = clientKey, aud = [app baseUrl]."""
        now = int(time.time())
        claims = {"iss": client_key, "aud": [audience], "iat": now,
                  "exp": now + TOKEN_LIFETIME_S, "qsh": qsh(method, url_path, raw_query,
                                                           base_path)}
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})
