/*  wsload_proto.c - see wsload_proto.h. */
#define _GNU_SOURCE /* memmem */
#include "wsload_proto.h"
#include "wsload_jwt.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_TOKEN_LIFETIME_S 3000 /* exp = iat + this */
#define S_TOKEN_REFRESH_S 600   /* tokens older than this are minted again */

typedef struct {
    char *token;      /* owned */
    time_t minted_at; /* its iat */
} s_token_t;

struct wsload_proto_t {
    const wsload_options_t *options; /* borrowed */
    s_token_t agent;                 /* every agent socket uses the same account */
    s_token_t *customers;            /* idle: one per identity */
    uint32_t customer_count;
};

/* A bounded string builder: `failed` is set once something did not fit. */
typedef struct {
    char *data;
    size_t size, capacity;
    bool failed;
} s_out_t;

static void s_put(s_out_t *out, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Appends formatted text. */
static void s_put(s_out_t *out, const char *format, ...)
{
    if (out->failed)
        return;
    va_list args;
    va_start(args, format);
    int n = vsnprintf(out->data + out->size, out->capacity - out->size, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= out->capacity - out->size)
        out->failed = true;
    else
        out->size += (size_t)n;
}

/* Appends text as a JSON string, quotes included. */
static void s_put_json(s_out_t *out, const char *text)
{
    s_put(out, "\"");
    for (const unsigned char *c = (const unsigned char *)text; *c && !out->failed; c++) {
        if (*c == '"' || *c == '\\')
            s_put(out, "\\%c", *c);
        else if (*c < 0x20)
            s_put(out, "\\u%04x", *c);
        else
            s_put(out, "%c", *c);
    }
    s_put(out, "\"");
}

wsload_proto_t *wsload_proto_new(const wsload_options_t *options)
{
    wsload_proto_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->options = options;
    if (options->mode == WSLOAD_MODE_IDLE && options->protocol == WSLOAD_PROTOCOL_PARLEY) {
        self->customer_count = options->identities;
        self->customers = calloc(self->customer_count, sizeof *self->customers);
        if (!self->customers)
            wsload_proto_destroy(&self);
    }
    return self;
}

void wsload_proto_destroy(wsload_proto_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wsload_proto_t *self = *self_p;
    free(self->agent.token);
    for (uint32_t i = 0; i < self->customer_count; i++)
        free(self->customers[i].token);
    free(self->customers);
    free(self);
    *self_p = NULL;
}

/* Returns token's text, minting it first when it is missing or old: a customer's (identity
   number) or, when customer is false, the agent's. Returns NULL when minting fails. */
static const char *s_token(wsload_proto_t *self, s_token_t *token, bool customer, uint32_t number)
{
    time_t now = time(NULL);
    if (token->token && now - token->minted_at < S_TOKEN_REFRESH_S)
        return token->token;
    const wsload_options_t *o = self->options;
    char claims_text[1024];
    s_out_t claims = {claims_text, 0, sizeof claims_text, false};
    const char *key;
    if (customer) {
        s_put(&claims,
              "{\"email\":\"bench-%" PRIu32 "@example.com\",\"displayName\":\"Bench %" PRIu32
              "\",\"iat\":%lld,\"exp\":%lld}",
              number, number, (long long)now, (long long)now + S_TOKEN_LIFETIME_S);
        key = o->project_key;
    } else {
        s_put(&claims, "{\"iss\":");
        s_put_json(&claims, o->tenant);
        s_put(&claims, ",\"sub\":");
        s_put_json(&claims, o->agent);
        s_put(&claims, ",\"iat\":%lld,\"exp\":%lld}", (long long)now,
              (long long)now + S_TOKEN_LIFETIME_S);
        key = o->tenant_secret;
    }
    if (claims.failed)
        return NULL;
    char *minted = wsload_jwt_hs256(claims_text, (const uint8_t *)key, strlen(key));
    if (!minted)
        return NULL;
    free(token->token);
    token->token = minted;
    token->minted_at = now;
    return minted;
}

/* Finds the string value of key (quotes included, e.g. "\"type\"") in a JSON object's text.
   Returns true and sets value and value_size (still escaped) when found. Keys only match as
   keys: inside a JSON string every quote is escaped, so "key" followed by ':' is a key. */
static bool s_field(const char *data, size_t size, const char *key, size_t key_size,
                    const char **value, size_t *value_size)
{
    const char *end = data + size;
    for (const char *at = data; at < end; at += key_size) {
        at = memmem(at, (size_t)(end - at), key, key_size);
        if (!at)
            return false;
        const char *p = at + key_size;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p == end || *p != ':')
            continue;
        for (p++; p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'); p++)
            ;
        if (p == end || *p != '"')
            return false; /* the key, but not a string */
        const char *q = ++p;
        while (q < end && *q != '"')
            q += *q == '\\' ? 2 : 1;
        if (q >= end)
            return false;
        *value = p;
        *value_size = (size_t)(q - p);
        return true;
    }
    return false;
}

#define S_FIELD(data, size, key, value, value_size)                                                \
    s_field(data, size, "\"" key "\"", sizeof key + 1, value, value_size)

/* True when the string of size bytes at text is literal. */
static bool s_is(const char *text, size_t size, const char *literal)
{
    return strlen(literal) == size && memcmp(text, literal, size) == 0;
}

/* Reads our message text "<sent_ns> <room> <c|a> ..." into frame. */
static void s_parse_text(const char *text, size_t size, wsload_frame_t *frame)
{
    const char *p = text, *end = text + size;
    uint64_t sent = 0, room = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 19)
        sent = sent * 10 + (uint64_t)(*p++ - '0');
    if (p == digits || p == end || *p++ != ' ')
        return;
    digits = p;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 10)
        room = room * 10 + (uint64_t)(*p++ - '0');
    if (p == digits || p == end || *p++ != ' ' || p == end || (*p != 'c' && *p != 'a') ||
        room > UINT32_MAX)
        return;
    frame->ours = true;
    frame->sent_ns = (int64_t)sent;
    frame->room = (uint32_t)room;
    frame->from = *p;
}

void wsload_frame_parse(const char *data, size_t size, wsload_frame_t *frame)
{
    memset(frame, 0, sizeof *frame);
    const char *type, *value;
    size_t type_size, value_size;
    if (!S_FIELD(data, size, "type", &type, &type_size))
        return;
    if (s_is(type, type_size, "message")) {
        frame->kind = WSLOAD_FRAME_MESSAGE;
        if (S_FIELD(data, size, "text", &value, &value_size))
            s_parse_text(value, value_size, frame);
    } else if (s_is(type, type_size, "error")) {
        frame->kind = WSLOAD_FRAME_ERROR;
        if (S_FIELD(data, size, "code", &value, &value_size)) {
            frame->code = value;
            frame->code_size = value_size;
        }
        if (S_FIELD(data, size, "message", &value, &value_size)) {
            frame->message = value;
            frame->message_size = value_size;
        }
    } else if (s_is(type, type_size, "welcome")) {
        frame->kind = WSLOAD_FRAME_WELCOME;
    } else if (s_is(type, type_size, "joined")) {
        frame->kind = WSLOAD_FRAME_JOINED;
    } else if (s_is(type, type_size, "conversation.started")) {
        frame->kind = WSLOAD_FRAME_STARTED;
        if (S_FIELD(data, size, "issue", &value, &value_size)) {
            frame->issue = value;
            frame->issue_size = value_size;
        }
    }
}

long wsload_proto_opening(wsload_proto_t *self, wsload_peer_t *peer, char *out, size_t capacity)
{
    const wsload_options_t *o = self->options;
    s_out_t frame = {out, 0, capacity, false};
    if (o->protocol == WSLOAD_PROTOCOL_RELAY) {
        uint32_t room = peer->idle ? peer->number / 2 : peer->number;
        if (peer->issue)
            snprintf(peer->issue, WSLOAD_ISSUE_MAX, "r%" PRIu32, room);
        s_put(&frame, "{\"type\":\"join\",\"room\":\"r%" PRIu32 "\"}", room);
        peer->state = WSLOAD_PEER_WAIT_JOINED;
    } else {
        bool agent = peer->role == WSLOAD_ROLE_AGENT;
        uint32_t identity = peer->idle ? peer->number % self->customer_count : peer->number;
        s_token_t once = {0}; /* fanout customers: one token per room, not kept */
        s_token_t *slot = agent ? &self->agent : peer->idle ? &self->customers[identity] : &once;
        const char *token = s_token(self, slot, !agent, identity);
        if (token) {
            s_put(&frame, "{\"type\":\"hello\",\"tenant\":");
            s_put_json(&frame, o->tenant);
            if (agent) {
                s_put(&frame, ",\"kind\":\"agent\"");
            } else {
                s_put(&frame, ",\"kind\":\"customer\",\"project\":");
                s_put_json(&frame, o->project);
            }
            s_put(&frame, ",\"token\":\"%s\"}", token);
        }
        free(once.token);
        if (!token)
            return -1;
        peer->state = WSLOAD_PEER_WAIT_WELCOME;
    }
    return frame.failed ? -1 : (long)frame.size;
}

wsload_setup_t wsload_proto_setup(wsload_proto_t *self, wsload_peer_t *peer,
                                  const wsload_frame_t *frame, char *out, size_t capacity,
                                  size_t *out_size)
{
    if (frame->kind == WSLOAD_FRAME_ERROR)
        return WSLOAD_SETUP_FAIL;
    s_out_t next = {out, 0, capacity, false};
    switch (peer->state) {
    case WSLOAD_PEER_WAIT_JOINED:
        if (frame->kind != WSLOAD_FRAME_JOINED)
            return WSLOAD_SETUP_WAIT;
        peer->state = WSLOAD_PEER_READY;
        return WSLOAD_SETUP_READY;
    case WSLOAD_PEER_WAIT_WELCOME:
        if (frame->kind != WSLOAD_FRAME_WELCOME)
            return WSLOAD_SETUP_WAIT;
        if (peer->idle) {
            peer->state = WSLOAD_PEER_READY;
            return WSLOAD_SETUP_READY;
        }
        if (peer->role == WSLOAD_ROLE_CUSTOMER) {
            s_put(&next, "{\"type\":\"conversation.start\",\"id\":");
            char id[128];
            snprintf(id, sizeof id, "%s%" PRIu32, self->options->conversation_prefix, peer->number);
            s_put_json(&next, id);
            s_put(&next, ",\"text\":\"bench room %" PRIu32 "\"}", peer->number);
            peer->state = WSLOAD_PEER_WAIT_STARTED;
        } else {
            if (!peer->issue || !peer->issue[0])
                return WSLOAD_SETUP_FAIL; /* the room's customer has no conversation */
            s_put(&next, "{\"type\":\"join\",\"issue\":\"%s\"}", peer->issue);
            peer->state = WSLOAD_PEER_WAIT_JOINED;
        }
        if (next.failed)
            return WSLOAD_SETUP_FAIL;
        *out_size = next.size;
        return WSLOAD_SETUP_SEND;
    case WSLOAD_PEER_WAIT_STARTED:
        if (frame->kind != WSLOAD_FRAME_STARTED)
            return WSLOAD_SETUP_WAIT;
        if (!frame->issue || frame->issue_size == 0 || frame->issue_size >= WSLOAD_ISSUE_MAX ||
            !peer->issue)
            return WSLOAD_SETUP_FAIL;
        memcpy(peer->issue, frame->issue, frame->issue_size);
        peer->issue[frame->issue_size] = '\0';
        peer->state = WSLOAD_PEER_READY;
        return WSLOAD_SETUP_READY;
    default:
        return WSLOAD_SETUP_WAIT;
    }
}

long wsload_proto_message(const wsload_proto_t *self, char *out, size_t capacity, const char *id,
                          const char *issue, int64_t sent_ns, uint32_t room, char from)
{
    int head =
        snprintf(out, capacity, "{\"type\":\"message\",\"id\":\"%s\",\"issue\":\"%s\",\"text\":\"",
                 id, issue);
    if (head < 0 || (size_t)head >= capacity)
        return -1;
    int text = snprintf(out + head, capacity - (size_t)head, "%" PRId64 " %" PRIu32 " %c ", sent_ns,
                        room, from);
    if (text < 0 || (size_t)(head + text) >= capacity)
        return -1;
    size_t size = (size_t)head + (size_t)text;
    size_t pad =
        self->options->text_bytes > (uint32_t)text ? self->options->text_bytes - (size_t)text : 0;
    if (size + pad + 2 >= capacity)
        return -1;
    memset(out + size, 'x', pad);
    size += pad;
    memcpy(out + size, "\"}", 3);
    return (long)size + 2;
}
