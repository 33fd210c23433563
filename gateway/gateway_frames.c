/*  gateway_frames.c - see gateway_frames.h. */
#include "gateway_frames.h"

#include <string.h>

json_t *gateway_frame_of_message(const proto_conversation_message_event_t *m)
{
    json_t *frame = json_pack("{s:s, s:s, s:s, s:s, s:s%, s:I}", "type", "message", "issue",
                              m->issue, "author_kind", m->author_kind, "author", m->author,
                              "text", m->text, (size_t)m->text_len, "created_ms",
                              (json_int_t)m->created_ms);
    if (frame && m->has_message)
        json_object_set_new(frame, "id", json_string(m->message));
    if (frame && m->has_comment)
        json_object_set_new(frame, "comment", json_string(m->comment));
    if (frame && m->has_author_name)
        json_object_set_new(frame, "author_name", json_stringn(m->author_name, m->author_name_len));
    return frame;
}

json_t *gateway_frame_of_signal(const char *type, const proto_conversation_signal_t *g)
{
    json_t *frame = json_pack("{s:s, s:s, s:s, s:s}", "type",
                              strcmp(type, "conversation.typing") == 0 ? "typing" : "read",
                              "issue", g->issue, "author_kind", g->author_kind, "author",
                              g->author);
    if (frame && g->has_comment)
        json_object_set_new(frame, "comment", json_string(g->comment));
    return frame;
}

json_t *gateway_frame_of_event(const char *type, const uint8_t *payload, size_t size)
{
    proto_decode_error_t why;
    if (strcmp(type, "conversation.message") == 0) {
        proto_conversation_message_event_t m;
        if (proto_conversation_message_event_decode(&m, payload, size, &why) != 0)
            return NULL;
        return gateway_frame_of_message(&m);
    }
    if (strcmp(type, "conversation.typing") == 0 ||
        strcmp(type, "conversation.read") == 0) {
        proto_conversation_signal_t g;
        if (proto_conversation_signal_decode(&g, payload, size, &why) != 0)
            return NULL;
        return gateway_frame_of_signal(type, &g);
    }
    if (strcmp(type, "presence.availability") == 0) {
        proto_presence_availability_t a;
        if (proto_presence_availability_decode(&a, payload, size, &why) != 0)
            return NULL;
        json_t *frame = json_pack("{s:s, s:b, s:i}", "type", "availability", "available",
                                  a.available, "agents_online", (int)a.agents_online);
        if (frame && a.has_visible)
            json_object_set_new(frame, "visible", json_boolean(a.visible));
        return frame;
    }
    if (strcmp(type, "conversation.started") == 0) {
        proto_conversation_started_t c;
        if (proto_conversation_started_decode(&c, payload, size, &why) != 0)
            return NULL;
        return json_pack("{s:s, s:s}", "type", "conversation.new", "issue", c.issue);
    }
    if (strcmp(type, "conversation.persisted") == 0) {
        proto_conversation_persisted_t p;
        if (proto_conversation_persisted_decode(&p, payload, size, &why) != 0)
            return NULL;
        return json_pack("{s:s, s:s, s:s, s:s}", "type", "persisted", "issue", p.issue, "id",
                         p.message, "comment", p.comment);
    }
    return NULL;
}
