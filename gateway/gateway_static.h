/*  gateway_static.h - static files on the gateway's port: the customer widget script, the demo
    page and the agent console (gateway/static/), for people trying Parley on `make run`.

    One job: answer GET and HEAD for the files of one directory (PARLEY_GATEWAY_STATIC_DIR).

      GET /              the index file, demo.html
      GET /<name>.<ext>  that file (also in subdirectories), when ext is html, js, css, svg,
                         png or ico (each with its Content-Type; other files are not served)

    A file goes out with Content-Length, `Cache-Control: no-cache`, an ETag (its mtime and
    size) and Last-Modified; a request whose If-None-Match names the ETag gets 304 without a
    body; HEAD gets the headers alone. Refused: a path that is not plain - not starting with
    '/', with a NUL (lws decodes %00), '%' (anything still encoded after lws's decoding), '\',
    control characters or spaces, an empty segment or one starting with '.' ("..", ".git") -
    is 400; a file that does not exist, is not a regular file, or whose real path (symlinks
    resolved) is outside the directory is 404; a file over GATEWAY_STATIC_FILE_MAX is 403.

    Why not lws's own mounts (lws_http_mount, LWSMPRO_FILE): a mount at "/" takes every path
    before the gateway's protocol callback sees it, so the gateway's routes (/healthz, the
    Connect routes) would need their own mounts and callbacks restructured in main.c; a mount
    elsewhere ("/static/") would put the prefix in every URL people type. The gateway's HTTP
    routing (gateway_http.c) instead hands the GET and HEAD requests none of its routes
    claimed to this module. Files are small, so each is read whole with one open+fstat+read
    on the lws thread and written at once (lws keeps what the socket does not take yet and
    completes the transaction after it); nothing is cached in memory.

    Not thread-safe: used on the lws thread only. */
#ifndef GATEWAY_STATIC_H
#define GATEWAY_STATIC_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#define GATEWAY_STATIC_FILE_MAX (1024 * 1024) /* bytes: a larger file is refused (403) */
#define GATEWAY_STATIC_INDEX "demo.html"      /* what GET / serves */

typedef struct gateway_static_t gateway_static_t;

/* Returns a server of the files under dir, or NULL when static files are off: dir is empty,
   does not exist or is not a directory (logged as a warning), or memory runs out. dir is
   resolved once (realpath), here; later changes inside it are seen at once. */
gateway_static_t *gateway_static_new(const char *dir);
void gateway_static_destroy(gateway_static_t **self_p);

/* Answers a GET or HEAD request for path (lws's decoded URI path, without the query) on wsi:
   the file, 304, or an error status as described above, written at once, then ends the HTTP
   transaction. Returns what the lws HTTP callback must return: 0, or -1 when the connection
   must close (a write failed, or lws wants it closed). */
int gateway_static_serve(gateway_static_t *self, struct lws *wsi, const char *path);

/* True when path names a file this module would serve (for 405 against 404 on other
   methods). */
bool gateway_static_exists(gateway_static_t *self, const char *path);

#endif
