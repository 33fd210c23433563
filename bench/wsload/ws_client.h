/*  ws_client.h - a minimal RFC 6455 websocket client for a load generator: non-blocking TCP
    connect, the HTTP/1.1 upgrade handshake (random Sec-WebSocket-Key, checks the 101 status
    and Sec-WebSocket-Accept), masked client frames, and a parser for server frames (7, 16 and
    64-bit lengths, fragmented messages, several frames per read, frames split across reads).
    Pings are answered with pongs; a close frame is answered and ends the connection.

    A ws_client_t holds what its connections share: the server address, the upgrade request's
    host and path, the epoll instance every connection registers with (event data.ptr is the
    ws_conn_t), the handler callbacks, and scratch buffers. Each ws_conn_t owns its socket and
    its buffers: unparsed input (only when a frame straddles reads), fragments of a message,
    and output the kernel did not take yet (written again on EPOLLOUT).

    Single-threaded: one ws_client_t and its connections belong to one thread. Callbacks run
    from inside ws_conn_event() and ws_conn_send_text(); a connection that ended (on_end was
    called) is not touched again until the owner calls ws_conn_connect() again, which the owner
    must not do from inside a callback. No TLS, no extensions, no subprotocols. */
#ifndef WS_CLIENT_H
#define WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_MAX_MESSAGE_BYTES (16u << 20) /* a larger frame or message fails the connection */
#define WS_MAX_BACKLOG_BYTES (64u << 20) /* unwritten output beyond this fails it too */

/* Why a connection ended; `detail` in on_end says more. */
typedef enum {
    WS_END_CONNECT = 1, /* TCP connect failed: detail = errno */
    WS_END_HANDSHAKE,   /* the upgrade answer was not a valid 101: detail = HTTP status or 0 */
    WS_END_PROTOCOL,    /* a server frame broke RFC 6455 or WS_MAX_MESSAGE_BYTES */
    WS_END_EOF,         /* the server closed TCP without a close frame */
    WS_END_IO,          /* read or write failed: detail = errno */
    WS_END_CLOSE,       /* the server sent a close frame: detail = its code (1005: none) */
    WS_END_LOCAL,       /* on_text asked for it, or the output backlog passed its cap */
} ws_end_t;

typedef enum {
    WS_STATE_IDLE = 0,   /* no socket */
    WS_STATE_CONNECTING, /* TCP connect in progress */
    WS_STATE_HANDSHAKE,  /* upgrade request sent, waiting for 101 */
    WS_STATE_OPEN,       /* frames flow */
    WS_STATE_CLOSING,    /* we sent a close frame, waiting for the server's */
} ws_state_t;

typedef struct ws_conn_t ws_conn_t;

/* Callbacks, with the `arg` given to ws_client_new. */
typedef struct {
    /* The upgrade succeeded: the connection may send. */
    void (*on_open)(void *arg, ws_conn_t *conn);
    /* One complete text message (fragments joined), borrowed for the call. Returns 0 to go
       on, or -1 to fail the connection (on_end follows with WS_END_LOCAL). */
    int (*on_text)(void *arg, ws_conn_t *conn, const char *data, size_t size);
    /* The connection ended and its socket is closed; called once per ws_conn_connect(). */
    void (*on_end)(void *arg, ws_conn_t *conn, ws_end_t why, int detail);
} ws_handler_t;

/* One connection. Zero-initialize it before its first ws_conn_connect(). */
struct ws_conn_t {
    int fd;                 /* -1 when there is no socket (state IDLE) */
    uint8_t state;          /* ws_state_t */
    bool want_out;          /* EPOLLOUT is registered */
    bool in_message;        /* fragments of a message are being collected */
    uint8_t message_opcode; /* opcode of the message being collected */
    char accept[32];        /* the Sec-WebSocket-Accept we expect */
    uint8_t *in;            /* unparsed input (a partial frame or handshake answer) */
    size_t in_size, in_capacity;
    uint8_t *out; /* output not yet taken by the kernel, from out_offset */
    size_t out_offset, out_size, out_capacity;
    uint8_t *message; /* fragments so far */
    size_t message_size, message_capacity;
};

typedef struct ws_client_t ws_client_t;

/* Returns a client that connects to host:port (resolved once, here) and upgrades at path.
   Borrows handler and arg for its lifetime; connections register with epoll_fd. When host is
   an IPv4 loopback address and sources > 0, connections bind in turn to the local addresses
   127.0.0.1 .. 127.0.0.<sources>: with one source address the kernel's search for a free
   ephemeral port grows with every open socket, which makes setting up ~20,000 sockets slow.
   Returns NULL after printing why on stderr when host does not resolve or memory runs out. */
ws_client_t *ws_client_new(const char *host, int port, const char *path, int sources,
                           const ws_handler_t *handler, void *arg, int epoll_fd);

/* Frees it and sets *self_p to NULL. Accepts NULL. Does not touch connections. */
void ws_client_destroy(ws_client_t **self_p);

/* Starts a connection on conn (IDLE, or ended: its old buffers are reused). Returns 0 when
   the connect is under way (on_open or on_end follows), or -errno when it could not start
   (no callback follows; conn stays IDLE). */
int ws_conn_connect(ws_client_t *self, ws_conn_t *conn);

/* Handles epoll events for conn. May call any callback. */
void ws_conn_event(ws_client_t *self, ws_conn_t *conn, uint32_t events);

/* Sends data as one masked text frame. Returns 0 when it was written or queued, or -1 when
   conn is not OPEN or failed while writing (on_end was called, before this returns). */
int ws_conn_send_text(ws_client_t *self, ws_conn_t *conn, const char *data, size_t size);

/* Starts the closing handshake with code: sends a close frame; on_end follows when the
   server answers or drops TCP. A connection that is not OPEN is aborted instead (no
   callback). */
void ws_conn_close(ws_client_t *self, ws_conn_t *conn, uint16_t code);

/* Closes the socket at once, without a callback. Accepts an IDLE connection. */
void ws_conn_abort(ws_client_t *self, ws_conn_t *conn);

/* Frees conn's buffers (aborting it first when it has a socket). */
void ws_conn_release(ws_client_t *self, ws_conn_t *conn);

/* Returns a short name for why ("connect", "handshake", ...). */
const char *ws_end_name(ws_end_t why);

#endif
