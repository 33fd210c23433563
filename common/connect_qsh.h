/*  connect_qsh.h - the Atlassian Connect query string hash (the `qsh` claim of a Connect JWT).

    qsh binds a JWT to one request: the lowercase hex SHA-256 of the canonical request
    METHOD&CANONICAL_PATH&CANONICAL_QUERY, built as "Understanding JWT for Connect apps" and
    Atlassian's reference implementation (atlassian-jwt, Java and Node) build it:

    - METHOD: the method in upper case (1 to 16 ASCII letters).
    - CANONICAL_PATH: the request path, not percent-decoded, with the product's context path
      (the path of its base URL, e.g. "/jira"; trailing '/' ignored) removed from its front,
      '&' replaced by "%26", a '/' put in front when missing, a single trailing '/' removed,
      and "/" when nothing is left. The context path is removed only when it ends at a '/' or
      at the end of the path ("/jira" comes off "/jira/x" but not off "/jirax"); the
      reference cuts any prefix, which differs only for paths outside the context path,
      where a mismatch fails closed.
    - CANONICAL_QUERY: the raw query (without '?') split on '&'; empty pieces and pieces with
      an empty name are skipped (as the servlet container Jira runs in does); a piece without
      '=' has an empty value. Names and values are percent-decoded FORM-STYLE, as
      atlassian-jwt gets them from the servlet request (Java) or querystring.parse (Node):
      "+" decodes to a space (so it hashes as "%20"), and a literal plus must be sent as
      "%2B". The `jwt` parameter is dropped. Parameters are grouped by name; names are sorted
      by their encoded form; the values of one name are sorted by their decoded bytes (as
      atlassian-jwt sorts the decoded strings) and joined with ','. Names and values are
      re-encoded with RFC 3986: A-Z a-z 0-9 - . _ ~ as is, every other byte %XX (uppercase
      hex), so a space is "%20" and '*' is "%2A". Pairs name=values are joined with '&'.
      Decoded bytes are not checked for UTF-8; percent-encoded UTF-8 round-trips byte for
      byte. Byte order equals atlassian-jwt's UTF-16 order except between characters above
      U+FFFF and U+E000..U+FFFF, which never meet in Jira's query strings.

    Path and query together are at most CONNECT_QSH_MAX_INPUT bytes. Nothing here allocates
    anything the caller must free, logs, or keeps state; thread-safe. Uses libcrypto. */
#ifndef CONNECT_QSH_H
#define CONNECT_QSH_H

#include <stddef.h>

#define CONNECT_QSH_MAX_INPUT 8192 /* bytes of path + query */
#define CONNECT_QSH_HEX 65         /* 64 hex digits and the NUL */

/* Writes the canonical request for method, url_path (required) and query (raw, without '?';
   NULL or "" for none) with base_path (the product's context path, NULL or "" for none) to
   out as a NUL-terminated string. Returns 0, or -1 when the method is not 1 to 16 ASCII
   letters, a percent-escape is malformed, path + query exceed CONNECT_QSH_MAX_INPUT, out_size
   is too small, or memory runs out (out then holds an empty string when out_size > 0). */
int connect_canonical_request(const char *method, const char *url_path, const char *query,
                              const char *base_path, char *out, size_t out_size);

/* Writes the qsh of the canonical request for these arguments (as connect_canonical_request)
   to out: 64 lowercase hex digits and a NUL. Returns 0, or -1 as connect_canonical_request
   does (out then holds an empty string). */
int connect_qsh(const char *method, const char *url_path, const char *query, const char *base_path,
                char out[CONNECT_QSH_HEX]);

/* As connect_qsh for url, either absolute ("https://host[:port]/path?query#fragment") or a
   path with an optional query ("/path?query"); a fragment is ignored. base_url is the
   product's base URL (absolute, or just its path), NULL or "" for none: its path is the
   context path. Returns 0, or -1 as connect_qsh does. */
int connect_qsh_from_url(const char *method, const char *url, const char *base_url,
                         char out[CONNECT_QSH_HEX]);

#endif
