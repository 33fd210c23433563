/*  gateway_frames.c - see gateway_frames.h. */
#include "gateway_frames.h"

#include <string.h>

int gateway_frame_message(json_writer_t *out, const proto_conversation_message_event_t *m)
{
    json_writer_begin(out);
    json_writer_cstring(out, "type", "message");
    json_writer_cstring(out, "issue", m->issue);
    if (m->has_message)
        json_writer_cstring(out, "id", m->message);
    if (m->has_comment)
        json_writer_cstring(out, "comment", m->comment);
    json_writer_cstring(out, "author_kind", m->author_kind);
    json_writer_cstring(out, "author", m->author);
    if (m->has_author_name)
        json_writer_string(out, "author_name", m->author_name, m->author_name_len);
    json_writer_string(out, "text", m->text, m->text_len);
    json_writer_int(out, "created_ms", (int64_t)m->created_ms);
    return json_writer_end(out);
}

int gateway_frame_signal(json_writer_t *out, const char *type,
                         const proto_conversation_signal_t *g)
{
    json_writer_begin(out);
    json_writer_cstring(out, "type",
                        strcmp(type, "conversation.typing") == 0 ? "typing" : "read");
    json_writer_cstring(out, "issue", g->issue);
    json_writer_cstring(out, "author_kind", g->author_kind);
    json_writer_cstring(out, "author", g->author);
    if (g->has_comment)
        json_writer_cstring(out, "comment", g->comment);
    return json_writer_end(out);
}

int gateway_frame_event(json_writer_t *out, const char *type, const uint8_t *payload,
                        size_t size, gateway_frame_about_t *about)
{
    proto_decode_error_t why;
    about->issue[0] = about->typist[0] = '\0';
    if (strcmp(type, "conversation.message") == 0) {
        proto_conversation_message_event_t m;
        if (proto_conversation_message_event_decode(&m, payload, size, &why) != 0)
            return -1;
        memcpy(about->issue, m.issue, sizeof about->issue);
        return gateway_frame_message(out, &m);
    }
    if (strcmp(type, "conversation.typing") == 0 || strcmp(type, "conversation.read") == 0) {
        proto_conversation_signal_t g;
        if (proto_conversation_signal_decode(&g, payload, size, &why) != 0)
            return -1;
        memcpy(about->issue, g.issue, sizeof about->issue);
        if (strcmp(type, "conversation.typing") == 0)
            memcpy(about->typist, g.author, sizeof about->typist);
        return gateway_frame_signal(out, type, &g);
    }
    if (strcmp(type, "presence.availability") == 0) {
        proto_presence_availability_t a;
        if (proto_presence_availability_decode(&a, payload, size, &why) != 0)
            return -1;
        json_writer_begin(out);
        json_writer_cstring(out, "type", "availability");
        json_writer_bool(out, "available", a.available);
        json_writer_int(out, "agents_online", (int64_t)a.agents_online);
        if (a.has_visible)
            json_writer_bool(out, "visible", a.visible);
        return json_writer_end(out);
    }
    if (strcmp(type, "conversation.started") == 0) {
        proto_conversation_started_t c;
        if (proto_conversation_started_decode(&c, payload, size, &why) != 0)
            return -1;
        memcpy(about->issue, c.issue, sizeof about->issue);
        json_writer_begin(out);
        json_writer_cstring(out, "type", "conversation.new");
        json_writer_cstring(out, "issue", c.issue);
        return json_writer_end(out);
    }
    if (strcmp(type, "conversation.persisted") == 0) {
        proto_conversation_persisted_t p;
        if (proto_conversation_persisted_decode(&p, payload, size, &why) != 0)
            return -1;
        memcpy(about->issue, p.issue, sizeof about->issue);
        return gateway_frame_persisted(out, &p);
    }
    return -1;
}

int gateway_frame_persisted(json_writer_t *out, const proto_conversation_persisted_t *p)
{
    json_writer_begin(out);
    json_writer_cstring(out, "type", "persisted");
    json_writer_cstring(out, "issue", p->issue);
    json_writer_cstring(out, "id", p->message);
    json_writer_cstring(out, "comment", p->comment);
    return json_writer_end(out);
}
