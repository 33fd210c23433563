/*  connect_qsh.c - see connect_qsh.h. */
#include "connect_qsh.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_METHOD 16
#define S_MAX_URL (CONNECT_QSH_MAX_INPUT + 2048) /* scheme, host and fragment on top */

/* One query parameter: decoded name and value, and the encoded name that orders it. All
   three point into the arenas of s_canonical. */
typedef struct {
    const uint8_t *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
    const char *enc_name;
    size_t enc_name_len;
} s_param_t;

static int s_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Form-decodes length bytes of text into out ('+' is a space). Returns the decoded length,
   or -1 on a malformed percent-escape. out has room for length bytes. */
static long s_form_decode(const char *text, size_t length, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < length; i++) {
        char c = text[i];
        if (c == '%') {
            if (length - i < 3)
                return -1;
            int hi = s_hex_value(text[i + 1]), lo = s_hex_value(text[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[n++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = c == '+' ? ' ' : (uint8_t)c;
        }
    }
    return (long)n;
}

static bool s_unreserved(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 3986-encodes length bytes of data into out (room for 3 * length). Returns the length
   written. */
static size_t s_encode(const uint8_t *data, size_t length, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < length; i++) {
        if (s_unreserved(data[i])) {
            out[n++] = (char)data[i];
        } else {
            out[n++] = '%';
            out[n++] = hex[data[i] >> 4];
            out[n++] = hex[data[i] & 15];
        }
    }
    return n;
}

static int s_bytes_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* Orders parameters by encoded name, then by decoded value. */
static int s_param_cmp(const void *a, const void *b)
{
    const s_param_t *x = a, *y = b;
    int c = s_bytes_cmp(x->enc_name, x->enc_name_len, y->enc_name, y->enc_name_len);
    return c != 0 ? c : s_bytes_cmp(x->value, x->value_len, y->value, y->value_len);
}

/* Appends the canonical query for query_len bytes of query at out (room for 3 * query_len
   + 1 bytes: every byte may become three, and a lone parameter without '=' gains one).
   Returns the length written, or -1 on malformed escapes or no memory. */
static long s_canonical_query(const char *query, size_t query_len, char *out)
{
    if (query_len == 0)
        return 0;
    size_t pieces = 1;
    for (size_t i = 0; i < query_len; i++)
        pieces += query[i] == '&';
    s_param_t *params = calloc(pieces, sizeof *params);
    uint8_t *decoded = malloc(query_len);
    char *names = malloc(3 * query_len);
    long rc = -1;
    if (!params || !decoded || !names)
        goto done;
    size_t count = 0, decoded_len = 0, names_len = 0;
    const char *piece = query, *end = query + query_len;
    while (piece < end) {
        const char *amp = memchr(piece, '&', (size_t)(end - piece));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(piece, '=', (size_t)(stop - piece));
        const char *name_end = eq ? eq : stop;
        if (name_end > piece) {
            s_param_t *param = &params[count];
            long n = s_form_decode(piece, (size_t)(name_end - piece), decoded + decoded_len);
            if (n < 0)
                goto done;
            param->name = decoded + decoded_len;
            param->name_len = (size_t)n;
            decoded_len += (size_t)n;
            const char *value = eq ? eq + 1 : stop;
            n = s_form_decode(value, (size_t)(stop - value), decoded + decoded_len);
            if (n < 0)
                goto done;
            param->value = decoded + decoded_len;
            param->value_len = (size_t)n;
            decoded_len += (size_t)n;
            if (!(param->name_len == 3 && memcmp(param->name, "jwt", 3) == 0)) {
                param->enc_name = names + names_len;
                param->enc_name_len = s_encode(param->name, param->name_len, names + names_len);
                names_len += param->enc_name_len;
                count++;
            }
        }
        piece = stop + 1;
    }
    qsort(params, count, sizeof *params, s_param_cmp);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        bool same = i > 0 && s_bytes_cmp(params[i].enc_name, params[i].enc_name_len,
                                         params[i - 1].enc_name, params[i - 1].enc_name_len) == 0;
        if (same) {
            out[n++] = ',';
        } else {
            if (i > 0)
                out[n++] = '&';
            memcpy(out + n, params[i].enc_name, params[i].enc_name_len);
            n += params[i].enc_name_len;
            out[n++] = '=';
        }
        n += s_encode(params[i].value, params[i].value_len, out + n);
    }
    rc = (long)n;
done:
    free(params);
    free(decoded);
    free(names);
    return rc;
}

/* Builds the canonical request from lengths-delimited pieces. Returns a new NUL-terminated
   string (caller frees) or NULL; see connect_canonical_request. */
static char *s_canonical(const char *method, const char *path, size_t path_len, const char *query,
                         size_t query_len, const char *base, size_t base_len)
{
    if (!method || !path)
        return NULL;
    size_t method_len = strnlen(method, S_MAX_METHOD + 1);
    if (method_len == 0 || method_len > S_MAX_METHOD)
        return NULL;
    for (size_t i = 0; i < method_len; i++) {
        char c = method[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return NULL;
    }
    if (path_len > CONNECT_QSH_MAX_INPUT || query_len > CONNECT_QSH_MAX_INPUT - path_len)
        return NULL;
    /* Context path off the front, at a segment boundary. */
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    if (base_len > 0 && path_len >= base_len && memcmp(path, base, base_len) == 0 &&
        (path_len == base_len || path[base_len] == '/')) {
        path += base_len;
        path_len -= base_len;
    }
    /* method & / path(& as %26) & query(x3, +1 for a lone name without '=') NUL */
    char *out = malloc(method_len + 2 + 3 * path_len + 1 + 3 * query_len + 1 + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < method_len; i++) {
        char c = method[i];
        out[n++] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
    }
    out[n++] = '&';
    size_t path_start = n;
    if (path_len == 0 || path[0] != '/')
        out[n++] = '/';
    for (size_t i = 0; i < path_len; i++) {
        if (path[i] == '&') {
            memcpy(out + n, "%26", 3);
            n += 3;
        } else {
            out[n++] = path[i];
        }
    }
    if (n - path_start > 1 && out[n - 1] == '/')
        n--;
    out[n++] = '&';
    long q = s_canonical_query(query, query_len, out + n);
    if (q < 0) {
        free(out);
        return NULL;
    }
    n += (size_t)q;
    out[n] = '\0';
    return out;
}

/* Length of s, or SIZE_MAX when it is longer than limit (or NULL counts as ""). */
static size_t s_length(const char *s, size_t limit)
{
    if (!s)
        return 0;
    size_t n = strnlen(s, limit + 1);
    return n > limit ? SIZE_MAX : n;
}

int connect_canonical_request(const char *method, const char *url_path, const char *query,
                              const char *base_path, char *out, size_t out_size)
{
    if (out && out_size > 0)
        out[0] = '\0';
    size_t path_len = s_length(url_path, CONNECT_QSH_MAX_INPUT);
    size_t query_len = s_length(query, CONNECT_QSH_MAX_INPUT);
    size_t base_len = s_length(base_path, CONNECT_QSH_MAX_INPUT);
    if (!out || path_len == SIZE_MAX || query_len == SIZE_MAX || base_len == SIZE_MAX)
        return -1;
    char *canonical = s_canonical(method, url_path, path_len, query ? query : "", query_len,
                                  base_path ? base_path : "", base_len);
    if (!canonical)
        return -1;
    size_t length = strlen(canonical);
    int rc = -1;
    if (length < out_size) {
        memcpy(out, canonical, length + 1);
        rc = 0;
    }
    free(canonical);
    return rc;
}

/* Hashes canonical (may be NULL, then fails) into out as lowercase hex; frees canonical. */
static int s_hash(char *canonical, char out[CONNECT_QSH_HEX])
{
    out[0] = '\0';
    if (!canonical)
        return -1;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    int ok =
        EVP_Digest(canonical, strlen(canonical), digest, &digest_len, EVP_sha256(), NULL) == 1 &&
        digest_len == 32;
    free(canonical);
    if (!ok)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

int connect_qsh(const char *method, const char *url_path, const char *query, const char *base_path,
                char out[CONNECT_QSH_HEX])
{
    size_t path_len = s_length(url_path, CONNECT_QSH_MAX_INPUT);
    size_t query_len = s_length(query, CONNECT_QSH_MAX_INPUT);
    size_t base_len = s_length(base_path, CONNECT_QSH_MAX_INPUT);
    char *canonical = NULL;
    if (path_len != SIZE_MAX && query_len != SIZE_MAX && base_len != SIZE_MAX)
        canonical = s_canonical(method, url_path, path_len, query ? query : "", query_len,
                                base_path ? base_path : "", base_len);
    return s_hash(canonical, out);
}

/* Finds the path and query of url (absolute or path-only, length bytes); a fragment is cut
   off. Either may come back empty. */
static void s_split_url(const char *url, size_t length, const char **path, size_t *path_len,
                        const char **query, size_t *query_len)
{
    const char *end = url + length;
    const char *fragment = memchr(url, '#', length);
    if (fragment)
        end = fragment;
    const char *p = url;
    /* scheme "://" authority, when the "://" comes before any '/', '?' or '#' */
    const char *sep = strstr(url, "://");
    if (sep && sep < end && strcspn(url, "/?#") == (size_t)(sep - url) + 1) {
        p = sep + 3;
        while (p < end && *p != '/' && *p != '?')
            p++;
    }
    const char *mark = memchr(p, '?', (size_t)(end - p));
    *path = p;
    *path_len = (size_t)((mark ? mark : end) - p);
    *query = mark ? mark + 1 : end;
    *query_len = mark ? (size_t)(end - mark - 1) : 0;
}

int connect_qsh_from_url(const char *method, const char *url, const char *base_url,
                         char out[CONNECT_QSH_HEX])
{
    size_t url_len = s_length(url, S_MAX_URL);
    size_t base_url_len = s_length(base_url, S_MAX_URL);
    if (!url || url_len == SIZE_MAX || base_url_len == SIZE_MAX)
        return s_hash(NULL, out);
    const char *path, *query, *base = "", *ignored;
    size_t path_len, query_len, base_len = 0, ignored_len;
    s_split_url(url, url_len, &path, &path_len, &query, &query_len);
    if (base_url)
        s_split_url(base_url, base_url_len, &base, &base_len, &ignored, &ignored_len);
    return s_hash(s_canonical(method, path, path_len, query, query_len, base, base_len), out);
}
