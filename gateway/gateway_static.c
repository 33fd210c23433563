/*  gateway_static.c - see gateway_static.h. */
#include "gateway_static.h"
#include "../common/plog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_PATH_MAX 255 /* bytes of a request path */

struct gateway_static_t {
    char *root;         /* the directory's real path, owned */
    size_t root_length; /* of root, without a trailing '/' (0 for "/") */
};

/* The files served, by extension, and what they are. */
static const struct {
    const char *extension, *content_type;
} s_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
};

/* A file found for a request: open, with what its headers say. */
typedef struct {
    int fd;
    struct stat st;
    const char *content_type;
} s_file_t;

gateway_static_t *gateway_static_new(const char *dir)
{
    if (!dir || !*dir)
        return NULL;
    char quoted[300];
    char *root = realpath(dir, NULL);
    if (!root) {
        int error = errno;
        plog_warn("static_files_off", "dir=%s call=realpath errno=%d",
                  plog_quote(quoted, sizeof quoted, dir), error);
        return NULL;
    }
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        plog_warn("static_files_off", "dir=%s reason=not_a_directory",
                  plog_quote(quoted, sizeof quoted, dir));
        free(root);
        return NULL;
    }
    gateway_static_t *self = calloc(1, sizeof *self);
    if (!self) {
        free(root);
        return NULL;
    }
    self->root = root;
    self->root_length = strcmp(root, "/") == 0 ? 0 : strlen(root); /* files go after a '/' */
    return self;
}

void gateway_static_destroy(gateway_static_t **self_p)
{
    if (self_p && *self_p) {
        free((*self_p)->root);
        free(*self_p);
        *self_p = NULL;
    }
}

/* The Content-Type of name by its extension, or NULL when such files are not served. */
static const char *s_content_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    for (size_t i = 0; dot && i < sizeof s_types / sizeof *s_types; i++)
        if (strcmp(dot, s_types[i].extension) == 0)
            return s_types[i].content_type;
    return NULL;
}

/* True when path is plain: starts with '/', at most S_PATH_MAX printable ASCII characters
   other than '%', '\' and space, no empty segment, and no segment starting with '.' (so no
   "." or ".." and no hidden files). length is the path's length as lws decoded it; a NUL
   before it (a decoded %00) makes the path not plain. */
static bool s_plain(const char *path, size_t length)
{
    if (length == 0 || length > S_PATH_MAX || strlen(path) != length || path[0] != '/')
        return false;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f || c == '%' || c == '\\')
            return false;
        if (c == '/' && (path[i + 1] == '/' || path[i + 1] == '.' || path[i + 1] == '\0'))
            return false; /* "//", "/.", and a trailing "/" */
    }
    return true;
}

/* Finds the file for path (length as lws decoded it) and opens it into *file. Returns 0, or
   the HTTP status to answer instead: 400 (not plain), 404 (no such regular file inside the
   root, or a type not served) or 403 (too large). */
static unsigned s_open(gateway_static_t *self, const char *path, size_t length, s_file_t *file)
{
    file->fd = -1;
    if (length == 1 && path[0] == '/') {
        path = "/" GATEWAY_STATIC_INDEX;
        length = strlen(path);
    }
    if (!s_plain(path, length))
        return 400;
    file->content_type = s_content_type(path);
    if (!file->content_type)
        return 404;
    char wanted[PATH_MAX], real[PATH_MAX];
    if (snprintf(wanted, sizeof wanted, "%s%s", self->root, path) >= (int)sizeof wanted ||
        !realpath(wanted, real))
        return 404; /* ENOENT, mostly */
    if (strncmp(real, self->root, self->root_length) != 0 || real[self->root_length] != '/') {
        char quoted[300];
        plog_warn("static_outside_root", "path=%s", plog_quote(quoted, sizeof quoted, path));
        return 404;
    }
    /* the real path: a symlink swapped in since realpath() is not followed */
    file->fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (file->fd < 0)
        return 404;
    unsigned status = 0;
    if (fstat(file->fd, &file->st) != 0 || !S_ISREG(file->st.st_mode))
        status = 404;
    else if (file->st.st_size > GATEWAY_STATIC_FILE_MAX) {
        char quoted[300];
        plog_warn("static_file_too_large", "path=%s bytes=%lld max=%d",
                  plog_quote(quoted, sizeof quoted, path), (long long)file->st.st_size,
                  GATEWAY_STATIC_FILE_MAX);
        status = 403;
    }
    if (status) {
        close(file->fd);
        file->fd = -1;
    }
    return status;
}

/* Reads the whole file into a new buffer with LWS_PRE bytes of room in front (caller frees).
   Returns NULL when a read fails or memory runs out; *size is what was read (a file that
   shrank meanwhile gives less, one that grew is cut at its size at fstat). */
static uint8_t *s_read(const s_file_t *file, size_t *size)
{
    size_t want = (size_t)file->st.st_size, got = 0;
    uint8_t *buffer = malloc(LWS_PRE + want + 1);
    while (buffer && got < want) {
        ssize_t n = pread(file->fd, buffer + LWS_PRE + got, want - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            plog_warn("static_read_failed", "call=pread errno=%d", errno);
            free(buffer);
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *size = got;
    return buffer;
}

/* Writes a response's status line and headers: type and length (length_header bytes in
   Content-Length), the caching headers of file (NULL: none, and no-store), and nosniff.
   Returns 0, or -1 when they do not fit or cannot be written. */
static int s_headers(struct lws *wsi, unsigned status, const char *content_type,
                     size_t length_header, const s_file_t *file, const char *etag)
{
    uint8_t headers[LWS_PRE + 1024], *start = headers + LWS_PRE, *p = start,
                                     *end = headers + sizeof headers - 1;
    const char *cache = file ? "no-cache" : "no-store";
    if (lws_add_http_common_headers(wsi, status, content_type, length_header, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)cache, (int)strlen(cache), &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)"nosniff", 7, &p, end))
        return -1;
    if (file) {
        char modified[64];
        struct tm tm;
        time_t mtime = file->st.st_mtim.tv_sec;
        size_t n = gmtime_r(&mtime, &tm)
                       ? strftime(modified, sizeof modified, "%a, %d %b %Y %H:%M:%S GMT", &tm)
                       : 0;
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ETAG, (const unsigned char *)etag,
                                         (int)strlen(etag), &p, end) ||
            (n && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_LAST_MODIFIED,
                                               (const unsigned char *)modified, (int)n, &p, end)))
            return -1;
    }
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

/* Answers an error status with a small JSON body (none for HEAD), like gateway_http's. */
static int s_error(struct lws *wsi, unsigned status, bool head)
{
    const char *body = status == 400   ? "{\"error\":\"bad_request\",\"message\":\"bad path\"}"
                       : status == 403 ? "{\"error\":\"forbidden\",\"message\":\"not served\"}"
                       : status == 404 ? "{\"error\":\"not_found\",\"message\":\"no such file\"}"
                                       : "{\"error\":\"internal\",\"message\":\"cannot read\"}";
    size_t size = strlen(body);
    uint8_t buffer[LWS_PRE + 128];
    memcpy(buffer + LWS_PRE, body, size);
    if (s_headers(wsi, status, "application/json", size, NULL, NULL) != 0 ||
        (!head && lws_write(wsi, buffer + LWS_PRE, size, LWS_WRITE_HTTP_FINAL) != (int)size))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* True when the request's If-None-Match names etag (or is "*"). */
static bool s_not_modified(struct lws *wsi, const char *etag)
{
    char value[512];
    int length = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH);
    if (length <= 0 || length >= (int)sizeof value ||
        lws_hdr_copy(wsi, value, sizeof value, WSI_TOKEN_HTTP_IF_NONE_MATCH) < 0)
        return false;
    return strcmp(value, "*") == 0 || strstr(value, etag) != NULL;
}

/* The request's method (LWSHUMETH_*) and decoded path length, or -1. */
static int s_method(struct lws *wsi, size_t *length)
{
    char *uri = NULL;
    int uri_length = 0;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_length);
    *length = uri_length > 0 ? (size_t)uri_length : 0;
    return method;
}

int gateway_static_serve(gateway_static_t *self, struct lws *wsi, const char *path)
{
    size_t length;
    int method = s_method(wsi, &length);
    bool head = method == LWSHUMETH_HEAD;
    if (method != LWSHUMETH_GET && !head)
        return s_error(wsi, 400, false); /* the caller routes only GET and HEAD here */
    s_file_t file;
    unsigned status = s_open(self, path, length, &file);
    if (status)
        return s_error(wsi, status, head);
    char etag[64];
    snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "\"",
             (uint64_t)file.st.st_mtim.tv_sec * 1000000000u + (uint64_t)file.st.st_mtim.tv_nsec,
             (uint64_t)file.st.st_size);
    int rc = -1;
    uint8_t *body = NULL;
    size_t size = (size_t)file.st.st_size;
    if (s_not_modified(wsi, etag)) {
        if (s_headers(wsi, 304, NULL, size, &file, etag) == 0)
            rc = lws_http_transaction_completed(wsi) ? -1 : 0;
    } else if (head) {
        if (s_headers(wsi, 200, file.content_type, size, &file, etag) == 0)
            rc = lws_http_transaction_completed(wsi) ? -1 : 0;
    } else if (!(body = s_read(&file, &size))) {
        rc = s_error(wsi, 500, false);
    } else if (s_headers(wsi, 200, file.content_type, size, &file, etag) == 0 &&
               (size == 0 ||
                lws_write(wsi, body + LWS_PRE, size, LWS_WRITE_HTTP_FINAL) == (int)size)) {
        rc = lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    free(body);
    close(file.fd);
    return rc;
}

bool gateway_static_exists(gateway_static_t *self, const char *path)
{
    s_file_t file;
    if (s_open(self, path, strlen(path), &file) != 0)
        return false;
    close(file.fd);
    return true;
}
