/*  gateway_topics.h - which of the gateway's websockets follow which event topics.

    A topic keeps its followers in an array, and each follower keeps, for every topic it
    follows, its place in that array: following and leaving cost the same whether a topic has
    two followers (a conversation) or 19,000 (a busy project's customers), so a mass
    disconnect is linear, not quadratic, and a fan-out walks one contiguous array.

    Not thread-safe: the lws thread's. */
#ifndef GATEWAY_TOPICS_H
#define GATEWAY_TOPICS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gateway_topics_t gateway_topics_t;
typedef struct gateway_follower_t gateway_follower_t;

/* A topic and the followers of it (borrowed). */
typedef struct {
    char *name; /* owned */
    gateway_follower_t **followers;
    uint32_t count, capacity;
} gateway_topic_t;

/* One follower's topics; lives inside whatever follows (a socket), zeroed to start. */
struct gateway_follower_t {
    void *owner; /* what gateway_topic_t's followers point back to */
    struct {
        gateway_topic_t *topic;
        uint32_t slot; /* its place in topic->followers */
    } *topics;
    uint32_t count, capacity;
};

/* Returns a new empty registry, or NULL when out of memory. */
gateway_topics_t *gateway_topics_new(void);

/* Frees the registry and its topics (not the followers). */
void gateway_topics_destroy(gateway_topics_t **self_p);

/* Makes follower follow topic name (at most max topics each). Returns 1 when the topic is new
   (nobody on this gateway followed it: time to subscribe), 0 when it is not or follower
   already follows it, -1 when out of memory or over max. */
int gateway_topics_follow(gateway_topics_t *self, gateway_follower_t *follower, const char *name,
                          uint32_t max);

/* Makes follower leave every topic it follows and frees what it held for them; on_last(name,
   arg) is called for each topic it was the last follower of, before that topic goes. */
void gateway_topics_leave_all(gateway_topics_t *self, gateway_follower_t *follower,
                              void (*on_last)(const char *name, void *arg), void *arg);

/* The topic name, or NULL when nobody on this gateway follows it. */
gateway_topic_t *gateway_topics_find(gateway_topics_t *self, const char *name);

/* True when follower follows topic name. */
bool gateway_follower_follows(const gateway_follower_t *follower, const char *name);

#endif
