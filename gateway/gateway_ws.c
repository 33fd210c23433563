/*  gateway_ws.c - see gateway_ws.h: the client protocol's frames and the answers and events
    that concern them (writing frames: gateway_ws_writer.c; presence: gateway_ws_presence.c).
    Sockets live in `sockets` (id -> socket, owning); a call out on the bus carries what to do
    with its answer (gw_pending_t, with the socket's id), so an answer for a socket that closed
    meanwhile finds nothing and is dropped. */
#include "gateway_frames.h"
#include "gateway_ws_internal.h"
#include "../common/plog.h"
#include "../proto/proto.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t s_u64_hash(const void *key)
{
    uint64_t x = (uint64_t)(uintptr_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    return (size_t)(x ^ (x >> 33));
}

static int s_u64_compare(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

static zhashx_t *s_u64_map(void)
{
    zhashx_t *map = zhashx_new();
    if (map) {
        zhashx_set_key_hasher(map, s_u64_hash);
        zhashx_set_key_comparator(map, s_u64_compare);
        zhashx_set_key_duplicator(map, NULL);
        zhashx_set_key_destructor(map, NULL);
    }
    return map;
}

static void s_resume_free(gw_resume_t **resume_p)
{
    if (*resume_p) {
        zlistx_destroy(&(*resume_p)->held);
        zhashx_destroy(&(*resume_p)->carried);
        json_decref((*resume_p)->part);
        free(*resume_p);
        *resume_p = NULL;
    }
}

static void s_socket_free(void **item)
{
    gw_socket_t *socket = *item;
    if (socket) {
        s_resume_free(&socket->resume);
        gateway_outbox_clear(&socket->outbox);
        free(socket->follows.topics); /* (left at LWS_CALLBACK_CLOSED, or all freed at once) */
        free(socket->projects);
        free(socket->display_name);
        free(socket->rx);
        free(socket);
        *item = NULL;
    }
}

static void s_free(void **item)
{
    free(*item);
    *item = NULL;
}

gateway_ws_t *gateway_ws_new(const gateway_config_t *config)
{
    gateway_ws_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->sockets = s_u64_map();
    self->topics = gateway_topics_new();
    if (!self->sockets || !self->topics) {
        gateway_ws_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->sockets, s_socket_free);
    self->next_id = 1;
    char host[64] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    /* unique across machines and containers (where every gateway's pid may be 1) */
    if (config->instance[0])
        snprintf(self->instance, sizeof self->instance, "%.40s", config->instance);
    else
        snprintf(self->instance, sizeof self->instance, "gw-%.32s-%d", host, (int)getpid());
    return self;
}

void gateway_ws_destroy(gateway_ws_t **self_p)
{
    gateway_ws_t *self = *self_p;
    if (self) {
        zhashx_destroy(&self->sockets);
        gateway_topics_destroy(&self->topics);
        json_writer_release(&self->writer);
        free(self->waiting);
        free(self);
        *self_p = NULL;
    }
}

void gateway_ws_set_bus(gateway_ws_t *self, gateway_bus_t *bus)
{
    self->bus = bus;
}

size_t gateway_ws_session_size(void)
{
    return sizeof(gw_session_t);
}




/* Makes socket follow topic (subscribing the gateway when it is the first). */
static void s_follow(gateway_ws_t *self, gw_socket_t *socket, const char *topic)
{
    if (gateway_topics_follow(self->topics, &socket->follows, topic, GW_TOPICS_MAX) == 1)
        gateway_bus_subscribe(self->bus, topic);
}

static void s_unsubscribe(const char *topic, void *arg)
{
    gateway_ws_t *self = arg;
    if (self->bus)
        gateway_bus_unsubscribe(self->bus, topic);
}

/* Drops every topic socket follows (unsubscribing the gateway from those nobody follows). */
static void s_unfollow_all(gateway_ws_t *self, gw_socket_t *socket)
{
    gateway_topics_leave_all(self->topics, &socket->follows, s_unsubscribe, self);
}

int gw_call(gateway_ws_t *self, gateway_call_t **call_p, const gw_pending_t *note)
{
    gateway_call_t *call = *call_p;
    call->owner = GATEWAY_OWNER_WS;
    memcpy(call->note.bytes, note, sizeof *note);
    if (gateway_bus_call(self->bus, call_p) != 0)
        return -1;
    self->calls_waiting++;
    return 0;
}

/* Sends a request on behalf of socket (note: what to do with the answer); the answer comes
   to gateway_ws_deliver. Returns 0, or -1 after telling the client why it was not sent. */
static int s_call(gateway_ws_t *self, gw_socket_t *socket, const gw_pending_t *note,
                  const char *type, const proto_buffer_t *payload, const char *order_key)
{
    const char *id = note->id[0] ? note->id : NULL;
    gateway_call_t *call = gateway_call_new("jira", type, payload->data, payload->size,
                                            (uint32_t)self->config->request_timeout_ms);
    if (!call) {
        gw_error(self, socket, "internal", "out of memory", id);
        return -1;
    }
    if (order_key)
        proto_name_set(call->order_key, order_key);
    if (gw_call(self, &call, note) != 0) {
        gw_error(self, socket, "unavailable", "the bus is not reachable", id);
        return -1;
    }
    return 0;
}

/* A note for a call of kind made for socket about the client's id (may be NULL). */
static gw_pending_t s_note(const gw_socket_t *socket, gw_call_kind_t kind, const char *id)
{
    gw_pending_t note = {.socket = socket->id, .kind = kind};
    snprintf(note.id, sizeof note.id, "%s", id ? id : "");
    memcpy(note.tenant, socket->tenant, sizeof note.tenant);
    return note;
}

void gateway_ws_drain(gateway_ws_t *self)
{
    self->draining = true;
    for (gw_socket_t *socket = zhashx_first(self->sockets); socket;
         socket = zhashx_next(self->sockets)) {
        socket->going_away = true;
        lws_callback_on_writable(socket->wsi);
    }
}

size_t gateway_ws_count(const gateway_ws_t *self)
{
    return zhashx_size(self->sockets);
}

/* Hands the counters to the bus thread, which sends them in its heartbeats. */
static void s_on_counters_timer(lws_sorted_usec_list_t *sul)
{
    gateway_ws_t *self = lws_container_of(sul, gateway_ws_t, counters_timer);
    static const char *names[] = {"sockets_open",  "connections",   "refused_full",
                                  "frames_in",     "frames_out",    "errors_sent",
                                  "rate_limited",  "slow_consumers", "frames_too_large",
                                  "calls_waiting", "rx_pauses",     "presence_heartbeat_us"};
    uint64_t values[] = {zhashx_size(self->sockets), self->connections, self->refused_full,
                         self->frames_in, self->frames_out, self->errors_sent,
                         self->rate_limited, self->slow_consumers, self->too_large,
                         self->calls_waiting, self->rx_pauses, self->presence_heartbeat_us};
    if (self->bus)
        gateway_bus_counters(self->bus, names, values, sizeof values / sizeof *values);
    if (self->context)
        lws_sul_schedule(self->context, 0, &self->counters_timer, s_on_counters_timer,
                         1000 * LWS_US_PER_MS);
}

void gateway_ws_start(gateway_ws_t *self, struct lws_context *context)
{
    self->context = context;
    lws_sul_schedule(context, 0, &self->counters_timer, s_on_counters_timer,
                     1000 * LWS_US_PER_MS);
    lws_sul_schedule(context, 0, &self->heartbeat, gw_on_heartbeat_timer,
                     self->config->presence_heartbeat_ms * LWS_US_PER_MS);
}

/* True when frame's text is a string longer than a message may be (answered with its own
   error: "missing" would mislead). */
static bool s_text_too_long(gateway_ws_t *self, gw_socket_t *socket, json_t *frame,
                            const char *id)
{
    const char *text = json_string_value(json_object_get(frame, "text"));
    if (!text || strlen(text) <= PROTO_MESSAGE_TEXT_MAX)
        return false;
    gw_error(self, socket, "too_long", "text is longer than 32767 bytes (Jira's limit)", id);
    return true;
}

static const char *s_string(json_t *frame, const char *name, size_t max)
{
    const char *value = json_string_value(json_object_get(frame, name));
    return value && *value && strlen(value) <= max ? value : NULL;
}

static void s_on_hello(gateway_ws_t *self, gw_socket_t *socket, json_t *frame)
{
    const char *tenant = s_string(frame, "tenant", PROTO_NAME_MAX);
    const char *project = s_string(frame, "project", PROTO_NAME_MAX);
    const char *kind = s_string(frame, "kind", 16);
    const char *token = s_string(frame, "token", 8192);
    if (socket->authenticated) {
        gw_error(self, socket, "bad_frame", "already authenticated", NULL);
        return;
    }
    /* no token: an anonymous visitor, when the project allows it (the jira worker decides) */
    if (!tenant || !kind || !proto_name_valid(tenant, strlen(tenant)) ||
        (project && !proto_name_valid(project, strlen(project))) ||
        (json_object_get(frame, "token") && !token)) {
        gw_error(self, socket, "bad_frame", "hello needs tenant, kind and token", NULL);
        return;
    }
    proto_session_authenticate_t ask = {.has_token = token != NULL, .token = token,
                                        .token_len = token ? (uint32_t)strlen(token) : 0,
                                        .has_project = project != NULL};
    proto_name_set(ask.tenant, tenant);
    proto_name_set(ask.kind, kind);
    if (project)
        proto_name_set(ask.project, project);
    snprintf(socket->tenant, sizeof socket->tenant, "%s", tenant);
    snprintf(socket->project, sizeof socket->project, "%s", project ? project : "");
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    gw_pending_t note = s_note(socket, CALL_HELLO, NULL);
    if (proto_session_authenticate_encode(&ask, &encoded) == 0)
        s_call(self, socket, &note, "session.authenticate", &encoded, NULL);
    proto_buffer_release(&encoded);
}

static void s_resume_finish(gateway_ws_t *self, gw_socket_t *socket, const char *error);

/* Asks Jira (the jira worker) for the next part of the socket's resume: messages after
   resume->after. */
static void s_ask_transcript(gateway_ws_t *self, gw_socket_t *socket)
{
    proto_conversation_transcript_t ask = {.has_after_comment = true, .has_limit = true,
                                           .limit = 1000};
    proto_name_set(ask.tenant, socket->tenant);
    proto_name_set(ask.issue, socket->resume->issue);
    proto_name_set(ask.after_comment, socket->resume->after);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    gw_pending_t note = s_note(socket, CALL_TRANSCRIPT, socket->resume->issue);
    memcpy(note.after, socket->resume->after, sizeof note.after); /* which part it asks for */
    int rc = proto_conversation_transcript_encode(&ask, &encoded) == 0
                 ? s_call(self, socket, &note, "conversation.transcript", &encoded, NULL)
                 : -1;
    proto_buffer_release(&encoded);
    if (rc != 0) /* the client was told why (s_call); what was held goes out now */
        s_resume_finish(self, socket, "unavailable");
}

/* Reads what the socket missed in issue after comment `after` ("0": everything) from Jira;
   the frames go out before anything live (see gw_resume_t). */
static void s_resume(gateway_ws_t *self, gw_socket_t *socket, const char *issue,
                     const char *after)
{
    gw_resume_t *resume = calloc(1, sizeof *resume);
    if (!resume || !(resume->held = zlistx_new()) || !(resume->carried = zhashx_new())) {
        if (resume)
            zlistx_destroy(&resume->held);
        free(resume);
        gw_error(self, socket, "internal", "out of memory", issue);
        return;
    }
    zlistx_set_destructor(resume->held, s_free);
    snprintf(resume->issue, sizeof resume->issue, "%s", issue);
    snprintf(resume->after, sizeof resume->after, "%s", after);
    socket->resume = resume;
    s_ask_transcript(self, socket);
}

/* The after_comment of a frame: a comment id (digits), or NULL. */
static const char *s_after(json_t *frame)
{
    const char *after = json_string_value(json_object_get(frame, "after_comment"));
    if (!after || !*after || strlen(after) > 20 || strspn(after, "0123456789") != strlen(after))
        return NULL;
    return after;
}

static void s_on_start(gateway_ws_t *self, gw_socket_t *socket, json_t *frame)
{
    const char *id = s_string(frame, "id", PROTO_NAME_MAX);
    const char *text = s_string(frame, "text", PROTO_MESSAGE_TEXT_MAX);
    if (s_text_too_long(self, socket, frame, id))
        return;
    if (strcmp(socket->kind, "customer") != 0 || !socket->project[0]) {
        gw_error(self, socket, "forbidden", "only a customer starts a conversation", id);
        return;
    }
    if (!id || !text || !proto_name_valid(id, strlen(id))) {
        gw_error(self, socket, "bad_frame", "conversation.start needs id and text", id);
        return;
    }
    proto_conversation_start_t start = {.first_message = text,
                                        .first_message_len = (uint32_t)strlen(text),
                                        .has_channel = true};
    proto_name_set(start.tenant, socket->tenant);
    proto_name_set(start.project, socket->project);
    proto_name_set(start.customer, socket->account);
    proto_name_set(start.channel, "widget");
    /* conversation ids are the client's, made unique per account: a digest of both (the two
       names together may be longer than a name) */
    char both[2 * PROTO_NAME_MAX + 2];
    unsigned char digest[SHA256_DIGEST_LENGTH];
    snprintf(both, sizeof both, "%s|%s", socket->account, id);
    SHA256((const unsigned char *)both, strlen(both), digest);
    start.conversation[0] = 'c';
    for (int i = 0; i < 20; i++)
        snprintf(start.conversation + 1 + 2 * i, 3, "%02x", digest[i]);
    gw_pending_t note = s_note(socket, CALL_START, id);
    const char *after = s_after(frame);
    if (after)
        snprintf(note.after, sizeof note.after, "%s", after);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_conversation_start_encode(&start, &encoded) == 0)
        s_call(self, socket, &note, "conversation.start", &encoded, NULL);
    proto_buffer_release(&encoded);
}

/* Pushes the frame in self->writer, the client form of an event of type about `about`, to
   the sockets in list (a topic's followers), except `origin` (the socket it came from, or
   NULL). A socket resuming that conversation holds it until its transcript is out. */
static void s_fan_out_to(gateway_ws_t *self, const gateway_topic_t *topic, const char *type,
                         const gateway_frame_about_t *about, const gw_socket_t *origin)
{
    const char *text = self->writer.data;
    size_t length = self->writer.length;
    bool agents_only = strcmp(type, "conversation.started") == 0;
    bool status = strcmp(type, "conversation.persisted") == 0;
    /* a typing indicator is for the others, not echoed to its author's own sockets */
    const char *typist = about->typist[0] ? about->typist : NULL;
    for (uint32_t i = 0; i < topic->count; i++) {
        gw_socket_t *socket = topic->followers[i]->owner;
        if (agents_only && strcmp(socket->kind, "agent") != 0)
            continue;
        if (socket == origin || (typist && strcmp(socket->account, typist) == 0))
            continue;
        if (socket->resume && about->issue[0] &&
            strcmp(about->issue, socket->resume->issue) == 0) {
            char *copy = strndup(text, length);
            if (copy)
                zlistx_add_end(socket->resume->held, copy);
        } else if (status)
            gw_send_status(self, socket, text, length);
        else
            gw_send_text(self, socket, text, length);
    }
}

/* s_fan_out_to the followers of topic, if any. */
static void s_fan_out(gateway_ws_t *self, const char *topic, const char *type,
                      const gateway_frame_about_t *about, const gw_socket_t *origin)
{
    const gateway_topic_t *followed = gateway_topics_find(self->topics, topic);
    if (followed)
        s_fan_out_to(self, followed, type, about, origin);
}

/* True when socket may read and write in conversation issue. */
static bool s_may_see(const gw_socket_t *socket, const char *issue)
{
    char topic[2 * PROTO_NAME_MAX + 8];
    snprintf(topic, sizeof topic, "conv.%s.%s", socket->tenant, issue);
    return gateway_follower_follows(&socket->follows, topic);
}

static void s_on_message(gateway_ws_t *self, gw_socket_t *socket, json_t *frame)
{
    const char *id = s_string(frame, "id", PROTO_NAME_MAX);
    const char *issue = s_string(frame, "issue", PROTO_NAME_MAX);
    const char *text = s_string(frame, "text", PROTO_MESSAGE_TEXT_MAX);
    if (s_text_too_long(self, socket, frame, id))
        return;
    if (!id || !issue || !text || !proto_name_valid(id, strlen(id)) ||
        !proto_name_valid(issue, strlen(issue))) {
        gw_error(self, socket, "bad_frame", "message needs id, issue and text", id);
        return;
    }
    if (!s_may_see(socket, issue)) {
        gw_error(self, socket, "forbidden", "not a conversation of this socket", id);
        return;
    }
    /* everyone following the conversation sees it at once; Jira's ack follows */
    proto_conversation_message_event_t event = {
        .has_message = true, .text = text, .text_len = (uint32_t)strlen(text),
        .has_author_name = socket->display_name != NULL, .author_name = socket->display_name,
        .author_name_len = socket->display_name ? (uint32_t)strlen(socket->display_name) : 0,
        .created_ms = (uint64_t)zclock_time()};
    proto_name_set(event.issue, issue);
    proto_name_set(event.message, id);
    proto_name_set(event.author_kind, socket->kind);
    proto_name_set(event.author, socket->account);
    char topic[2 * PROTO_NAME_MAX + 8], order_key[PROTO_NAME_MAX + 1];
    snprintf(topic, sizeof topic, "conv.%s.%s", socket->tenant, issue);
    snprintf(order_key, sizeof order_key, "%.30s.%.32s", socket->tenant, issue);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_conversation_message_event_encode(&event, &encoded) == 0)
        gateway_bus_publish(self->bus, topic, "conversation.message", encoded.data, encoded.size);
    proto_buffer_release(&encoded);
    /* this gateway's own followers get it straight away: it does not cross the broker */
    gateway_frame_about_t about = {.typist = ""};
    proto_name_set(about.issue, issue);
    if (gateway_frame_message(&self->writer, &event) == 0)
        s_fan_out(self, topic, "conversation.message", &about, socket);
    proto_conversation_message_t message = {.text = text, .text_len = (uint32_t)strlen(text)};
    proto_name_set(message.tenant, socket->tenant);
    proto_name_set(message.issue, issue);
    proto_name_set(message.message, id);
    proto_name_set(message.author_kind, socket->kind);
    proto_name_set(message.author, socket->account);
    message.has_origin = true; /* the persisted event is ours to give our sockets: see below */
    proto_name_set(message.origin, gateway_bus_instance(self->bus));
    proto_buffer_init(&encoded);
    gw_pending_t note = s_note(socket, CALL_MESSAGE, id);
    if (proto_conversation_message_encode(&message, &encoded) == 0)
        s_call(self, socket, &note, "conversation.message", &encoded, order_key);
    proto_buffer_release(&encoded);
}

static void s_on_join(gateway_ws_t *self, gw_socket_t *socket, json_t *frame)
{
    const char *issue = s_string(frame, "issue", PROTO_NAME_MAX);
    if (strcmp(socket->kind, "agent") != 0) {
        gw_error(self, socket, "forbidden", "only agents join conversations", NULL);
        return;
    }
    const char *dash = issue ? strrchr(issue, '-') : NULL;
    bool serves = false;
    for (uint32_t i = 0; dash && i < socket->project_count; i++)
        serves = serves || (strlen(socket->projects[i]) == (size_t)(dash - issue) &&
                            strncmp(socket->projects[i], issue, (size_t)(dash - issue)) == 0);
    if (!issue || !proto_name_valid(issue, strlen(issue)) || !serves) {
        gw_error(self, socket, "forbidden", "not a conversation of your projects", NULL);
        return;
    }
    char topic[2 * PROTO_NAME_MAX + 8];
    snprintf(topic, sizeof topic, "conv.%s.%s", socket->tenant, issue);
    s_follow(self, socket, topic);
    gw_send(self, socket, json_pack("{s:s, s:s}", "type", "joined", "issue", issue));
    const char *after = s_after(frame);
    if (after && !socket->resume)
        s_resume(self, socket, issue, after);
}

/* typing and read: published on the conversation's topic for its followers. */
static void s_on_signal(gateway_ws_t *self, gw_socket_t *socket, json_t *frame, const char *type)
{
    const char *issue = s_string(frame, "issue", PROTO_NAME_MAX);
    const char *comment = s_string(frame, "comment", PROTO_NAME_MAX);
    if (!issue || !proto_name_valid(issue, strlen(issue)) ||
        (comment && !proto_name_valid(comment, strlen(comment)))) {
        gw_error(self, socket, "bad_frame", "needs issue (and, for read, comment)", NULL);
        return;
    }
    if (!s_may_see(socket, issue)) {
        gw_error(self, socket, "forbidden", "not a conversation of this socket", NULL);
        return;
    }
    if (strcmp(type, "conversation.typing") == 0) {
        /* an indicator: one a second is all followers need, however fast a client types */
        int64_t now = zclock_mono();
        if (now - socket->typed_ms < 1000)
            return;
        socket->typed_ms = now;
    }
    proto_conversation_signal_t signal = {.has_comment = comment != NULL};
    proto_name_set(signal.issue, issue);
    proto_name_set(signal.author_kind, socket->kind);
    proto_name_set(signal.author, socket->account);
    if (comment)
        proto_name_set(signal.comment, comment);
    char topic[2 * PROTO_NAME_MAX + 8];
    snprintf(topic, sizeof topic, "conv.%s.%s", socket->tenant, issue);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_conversation_signal_encode(&signal, &encoded) == 0)
        gateway_bus_publish(self->bus, topic, type, encoded.data, encoded.size);
    proto_buffer_release(&encoded);
    gateway_frame_about_t about = {.typist = ""};
    proto_name_set(about.issue, issue);
    if (strcmp(type, "conversation.typing") == 0)
        proto_name_set(about.typist, socket->account);
    if (gateway_frame_signal(&self->writer, type, &signal) == 0)
        s_fan_out(self, topic, type, &about, socket);
}

/* One whole frame from the client: size bytes at data (borrowed). */
static void s_on_frame(gateway_ws_t *self, gw_socket_t *socket, const void *data, size_t size)
{
    json_error_t error;
    json_t *frame = json_loadb(data, size, JSON_REJECT_DUPLICATES, &error);
    const char *type = json_string_value(json_object_get(frame, "type"));
    if (!json_is_object(frame) || !type)
        gw_error(self, socket, "bad_frame", "a frame is a JSON object with a type", NULL);
    else if (strcmp(type, "hello") == 0)
        s_on_hello(self, socket, frame);
    else if (!socket->authenticated)
        gw_error(self, socket, "unauthenticated", "say hello first", NULL);
    else if (strcmp(type, "conversation.start") == 0)
        s_on_start(self, socket, frame);
    else if (strcmp(type, "message") == 0)
        s_on_message(self, socket, frame);
    else if (strcmp(type, "join") == 0)
        s_on_join(self, socket, frame);
    else if (strcmp(type, "typing") == 0)
        s_on_signal(self, socket, frame, "conversation.typing");
    else if (strcmp(type, "read") == 0 && json_object_get(frame, "comment"))
        s_on_signal(self, socket, frame, "conversation.read");
    else
        gw_error(self, socket, "unknown_type", "unknown frame type", NULL);
    json_decref(frame);
}

/* Ends socket's resume: the live frames held meanwhile that are news to the client, then
   `resumed` (with error, when the transcript failed). Not news: a message the transcript
   carried (by the client's id), or a comment no later than the last one the client has (the
   one it resumed after, or the transcript's last; Jira's comment ids grow), such as the
   late event of a comment written in Jira before the client left. */
static void s_resume_finish(gateway_ws_t *self, gw_socket_t *socket, const char *error)
{
    zhashx_t *carried = socket->resume->carried;
    unsigned long long after = strtoull(socket->resume->after, NULL, 10);
    unsigned long long last = strtoull(socket->resume->last, NULL, 10);
    unsigned long long seen = last > after ? last : after;
    char key[PROTO_NAME_MAX + 3];
    char *text;
    while ((text = zlistx_first(socket->resume->held))) {
        zlistx_detach_cur(socket->resume->held);
        json_t *held = json_loads(text, JSON_ALLOW_NUL, NULL);
        const char *id = json_string_value(json_object_get(held, "id"));
        const char *comment = json_string_value(json_object_get(held, "comment"));
        const char *type = json_string_value(json_object_get(held, "type"));
        bool was_carried = false;
        if (type && strcmp(type, "message") == 0) {
            snprintf(key, sizeof key, "m:%s", id ? id : "");
            was_carried = (id && zhashx_lookup(carried, key)) ||
                          (comment && strtoull(comment, NULL, 10) <= seen);
        }
        if (!was_carried)
            gw_send_text(self, socket, text, strlen(text));
        json_decref(held);
        free(text);
    }
    json_t *done = json_pack("{s:s, s:s}", "type", "resumed", "issue", socket->resume->issue);
    if (done && error)
        json_object_set_new(done, "error", json_string(error));
    gw_send(self, socket, done);
    s_resume_free(&socket->resume);
}

void gw_resume_feed(gateway_ws_t *self, gw_socket_t *socket)
{
    gw_resume_t *resume = socket->resume;
    if (!resume || !resume->part || socket->closing || socket->going_away)
        return; /* none, its next part is being read, or the socket is on its way out */
    int64_t room = self->config->outbox_max / 4 > 0 ? self->config->outbox_max / 4 : 1;
    char key[PROTO_NAME_MAX + 3];
    while (resume->next < json_array_size(resume->part) && !socket->closing &&
           (int64_t)socket->outbox.count < room) { /* (gw_send may cut it off) */
        json_t *m = json_array_get(resume->part, resume->next++);
        json_t *frame = json_pack("{s:s, s:s, s:O?, s:O?, s:O?, s:O?}", "type", "message",
                                  "issue", resume->issue, "comment",
                                  json_object_get(m, "comment"), "author_kind",
                                  json_object_get(m, "author_kind"), "author",
                                  json_object_get(m, "author"), "text",
                                  json_object_get(m, "text"));
        const char *id = json_string_value(json_object_get(m, "message"));
        const char *comment = json_string_value(json_object_get(m, "comment"));
        if (frame && id)
            json_object_set_new(frame, "id", json_string(id));
        if (id) {
            snprintf(key, sizeof key, "m:%s", id);
            zhashx_update(resume->carried, key, (void *)1);
        }
        if (comment)
            snprintf(resume->last, sizeof resume->last, "%s", comment);
        gw_send(self, socket, frame);
    }
    if (resume->next < json_array_size(resume->part) || socket->closing)
        return; /* the rest when the socket has taken these (gw_writable), or never */
    json_decref(resume->part);
    resume->part = NULL;
    /* more: the next part, after the last comment queued (only forward: a part that did not
       move on would be asked for again forever) */
    if (resume->more && resume->last[0] &&
        strtoull(resume->last, NULL, 10) > strtoull(resume->after, NULL, 10)) {
        snprintf(resume->after, sizeof resume->after, "%s", resume->last);
        s_ask_transcript(self, socket);
        return;
    }
    s_resume_finish(self, socket, resume->more ? "incomplete" : NULL);
}

/* A part of the transcript arrived (or failed): its messages go to the client as its queue
   drains (gw_resume_feed). An answer to an earlier resume of the socket (it joined again
   meanwhile) is not this one's. */
static void s_resumed(gateway_ws_t *self, gw_socket_t *socket, const gw_pending_t *pending,
                      const gateway_call_t *call)
{
    gw_resume_t *resume = socket->resume;
    if (!resume || resume->part || strcmp(pending->id, resume->issue) != 0 ||
        strcmp(pending->after, resume->after) != 0)
        return;
    if (call->error_code[0]) {
        s_resume_finish(self, socket, call->error_code);
        return;
    }
    proto_conversation_transcript_reply_t reply;
    proto_decode_error_t why;
    if (proto_conversation_transcript_reply_decode(&reply, call->reply, call->reply_size, &why) !=
            0 ||
        !(resume->part = json_loadb((const char *)reply.messages, reply.messages_len, 0, NULL)) ||
        !json_is_array(resume->part)) {
        json_decref(resume->part);
        resume->part = NULL;
        s_resume_finish(self, socket, "bad_reply");
        return;
    }
    resume->next = 0;
    resume->more = reply.more;
    gw_resume_feed(self, socket);
}

/* Jira has the message the note is about: the sender (socket, or NULL when it closed) gets
   `ack`; the other sockets here following the conversation get `persisted` from this reply,
   not from the event, which other gateways get and this one drops as its own (origin). */
static void s_persisted(gateway_ws_t *self, gw_socket_t *socket, const gw_pending_t *pending,
                        const gateway_call_t *call)
{
    proto_conversation_persisted_t persisted;
    proto_decode_error_t why;
    if (proto_conversation_persisted_decode(&persisted, call->reply, call->reply_size, &why) !=
        0)
        return;
    if (socket) {
        json_writer_begin(&self->writer);
        json_writer_cstring(&self->writer, "type", "ack");
        json_writer_cstring(&self->writer, "id", pending->id);
        json_writer_cstring(&self->writer, "issue", persisted.issue);
        json_writer_cstring(&self->writer, "comment", persisted.comment);
        if (json_writer_end(&self->writer) == 0)
            gw_send_status(self, socket, self->writer.data, self->writer.length);
    }
    if (persisted.duplicate) /* a resend: nothing new for the others (no event either) */
        return;
    char topic[2 * PROTO_NAME_MAX + 8];
    snprintf(topic, sizeof topic, "conv.%s.%s", pending->tenant, persisted.issue);
    gateway_frame_about_t about = {.typist = ""};
    proto_name_set(about.issue, persisted.issue);
    if (gateway_frame_persisted(&self->writer, &persisted) == 0)
        s_fan_out(self, topic, "conversation.persisted", &about, socket);
}

void gateway_ws_deliver(gateway_ws_t *self, gateway_call_t *call)
{
    const gw_pending_t *pending = (const gw_pending_t *)call->note.bytes;
    self->calls_waiting--;
    gw_socket_t *socket =
        pending->socket ? zhashx_lookup(self->sockets, (void *)(uintptr_t)pending->socket) : NULL;
    if (pending->kind == CALL_PRESENCE && call->error_code[0])
        plog_debug("presence_call_failed", "code=%s", call->error_code);
    if (pending->kind == CALL_PRESENCE)
        socket = NULL; /* nothing to tell the client */
    if (socket && call->error_code[0] && pending->kind == CALL_TRANSCRIPT)
        s_resumed(self, socket, pending, call); /* tells the client, lets live frames through */
    else if (socket && call->error_code[0])
        gw_error(self, socket, call->error_code, gateway_call_error(call),
                pending->id[0] ? pending->id : NULL);
    else if (socket && pending->kind == CALL_HELLO) {
        proto_session_identity_t who;
        proto_decode_error_t why;
        if (proto_session_identity_decode(&who, call->reply, call->reply_size, &why) == 0) {
            socket->authenticated = true;
            snprintf(socket->kind, sizeof socket->kind, "%.15s", who.kind);
            snprintf(socket->account, sizeof socket->account, "%s", who.account);
            free(socket->display_name);
            socket->display_name =
                who.has_display_name && who.display_name_len
                    ? strndup(who.display_name, who.display_name_len > 255 ? 255
                                                                           : who.display_name_len)
                    : NULL;
            uint32_t count = who.has_projects ? who.projects_count : 0;
            free(socket->projects);
            socket->projects = count ? calloc(count, sizeof *socket->projects) : NULL;
            socket->project_count = socket->projects ? count : 0;
            for (uint32_t i = 0; i < socket->project_count; i++)
                memcpy(socket->projects[i], who.projects[i], sizeof socket->projects[i]);
            json_t *welcome = json_pack("{s:s, s:s, s:s}", "type", "welcome", "kind",
                                        socket->kind, "account", socket->account);
            if (welcome && who.has_token) /* a visitor's token to come back with */
                json_object_set_new(welcome, "token", json_stringn(who.token, who.token_len));
            gw_send(self, socket, welcome);
            gw_presence_open(self, socket);
            /* customers: availability of their project; agents: their projects' news */
            char topic[2 * PROTO_NAME_MAX + 16];
            if (strcmp(socket->kind, "customer") == 0 && socket->project[0]) {
                snprintf(topic, sizeof topic, "project.%s.%s", socket->tenant, socket->project);
                s_follow(self, socket, topic);
                gw_availability(self, socket);
            }
            for (uint32_t i = 0; strcmp(socket->kind, "agent") == 0 && i < socket->project_count;
                 i++) {
                snprintf(topic, sizeof topic, "project.%s.%s", socket->tenant,
                         socket->projects[i]);
                s_follow(self, socket, topic);
            }
        }
    } else if (socket && pending->kind == CALL_START) {
        proto_conversation_started_t started;
        proto_decode_error_t why;
        if (proto_conversation_started_decode(&started, call->reply, call->reply_size, &why) ==
            0) {
            char topic[2 * PROTO_NAME_MAX + 8];
            snprintf(topic, sizeof topic, "conv.%s.%s", socket->tenant, started.issue);
            s_follow(self, socket, topic);
            gw_send(self, socket,
                   json_pack("{s:s, s:s, s:s, s:b}", "type", "conversation.started", "id",
                             pending->id, "issue", started.issue, "created", started.created));
            if (pending->after[0] && !socket->resume)
                s_resume(self, socket, started.issue, pending->after);
        }
    } else if (socket && pending->kind == CALL_AVAILABILITY) {
        proto_presence_availability_t a;
        proto_decode_error_t why;
        if (proto_presence_availability_decode(&a, call->reply, call->reply_size, &why) == 0) {
            json_t *frame = json_pack("{s:s, s:b, s:i}", "type", "availability", "available",
                                      a.available, "agents_online", (int)a.agents_online);
            if (frame && a.has_visible)
                json_object_set_new(frame, "visible", json_boolean(a.visible));
            gw_send(self, socket, frame);
        }
    } else if (socket && pending->kind == CALL_TRANSCRIPT) {
        s_resumed(self, socket, pending, call);
    } else if (pending->kind == CALL_MESSAGE && !call->error_code[0])
        s_persisted(self, socket, pending, call);
}

void gateway_ws_event(gateway_ws_t *self, gateway_event_t *event)
{
    gateway_frame_about_t about;
    const gateway_topic_t *topic = gateway_topics_find(self->topics, event->topic);
    if (topic &&
        gateway_frame_event(&self->writer, event->type, event->payload, event->size, &about) == 0)
        s_fan_out_to(self, topic, event->type, &about, NULL);
}




int gateway_ws_callback(gateway_ws_t *self, struct lws *wsi, enum lws_callback_reasons reason,
                        void *user, void *in, size_t len)
{
    gw_session_t *session = user;
    gw_socket_t *socket = session ? session->socket : NULL;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: {
        if (self->draining ||
            zhashx_size(self->sockets) >= (size_t)self->config->max_connections) {
            lws_close_reason(wsi, 1013 /* try again later */, (unsigned char *)"full", 4);
            self->refused_full++;
            return -1;
        }
        socket = calloc(1, sizeof *socket);
        if (!socket)
            return -1;
        socket->id = self->next_id++;
        socket->wsi = wsi;
        socket->follows.owner = socket;
        self->connections++;
        socket->tokens = (double)self->config->rate_burst;
        socket->refilled_ms = zclock_mono();
        session->socket = socket;
        zhashx_insert(self->sockets, (void *)(uintptr_t)socket->id, socket);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        if (!socket || socket->closing)
            return -1;
        if (lws_frame_is_binary(wsi)) {
            gw_error(self, socket, "bad_frame", "frames are JSON text", NULL);
            return 0;
        }
        if (socket->rx_size + len > (size_t)self->config->frame_max) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                             (unsigned char *)"frame too large", 15);
            self->too_large++;
            return -1;
        }
        bool whole = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
        if (!whole || socket->rx) {
            /* a frame in pieces: gathered in rx, which lives only until the frame is whole */
            uint8_t *grown = realloc(socket->rx, socket->rx_size + len + 1);
            if (!grown)
                return -1;
            socket->rx = grown;
            memcpy(socket->rx + socket->rx_size, in, len);
            socket->rx_size += len;
        }
        if (whole) {
            int64_t now = zclock_mono();
            socket->tokens += (double)(now - socket->refilled_ms) * self->config->rate_per_s /
                              1000.0;
            if (socket->tokens > self->config->rate_burst)
                socket->tokens = (double)self->config->rate_burst;
            socket->refilled_ms = now;
            self->frames_in++;
            if (socket->tokens < 1) {
                self->rate_limited++;
                gw_error(self, socket, "rate_limited", "too many frames; slow down", NULL);
            } else {
                socket->tokens -= 1;
                if (socket->rx)
                    s_on_frame(self, socket, socket->rx, socket->rx_size);
                else
                    s_on_frame(self, socket, in, len);
            }
            free(socket->rx);
            socket->rx = NULL;
            socket->rx_size = 0;
        }
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return socket ? gw_writable(self, wsi, socket) : -1;
    case LWS_CALLBACK_CLOSED:
        if (socket) {
            gw_forget_dirty(self, socket);
            gw_presence_close(self, socket);
            s_unfollow_all(self, socket);
            zhashx_delete(self->sockets, (void *)(uintptr_t)socket->id);
            session->socket = NULL;
        }
        return 0;
    default:
        return 0;
    }
}
