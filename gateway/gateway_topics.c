/*  gateway_topics.c - see gateway_topics.h. Topics by name in a zhashx (keys borrowed from
    the topics themselves); leaving moves the topic's last follower into the freed place and
    tells that follower its new place. */
#include "gateway_topics.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

struct gateway_topics_t {
    zhashx_t *by_name; /* name -> gateway_topic_t, owns */
};

static void s_topic_free(void **item)
{
    gateway_topic_t *topic = *item;
    if (topic) {
        free(topic->followers);
        free(topic->name);
        free(topic);
        *item = NULL;
    }
}

gateway_topics_t *gateway_topics_new(void)
{
    gateway_topics_t *self = calloc(1, sizeof *self);
    if (self && !(self->by_name = zhashx_new())) {
        free(self);
        return NULL;
    }
    if (self) {
        zhashx_set_key_duplicator(self->by_name, NULL); /* the topic's own name */
        zhashx_set_key_destructor(self->by_name, NULL);
        zhashx_set_destructor(self->by_name, s_topic_free);
    }
    return self;
}

void gateway_topics_destroy(gateway_topics_t **self_p)
{
    gateway_topics_t *self = *self_p;
    if (self) {
        zhashx_destroy(&self->by_name);
        free(self);
        *self_p = NULL;
    }
}

gateway_topic_t *gateway_topics_find(gateway_topics_t *self, const char *name)
{
    return zhashx_lookup(self->by_name, name);
}

bool gateway_follower_follows(const gateway_follower_t *follower, const char *name)
{
    for (uint32_t i = 0; i < follower->count; i++)
        if (strcmp(follower->topics[i].topic->name, name) == 0)
            return true;
    return false;
}

/* Makes room for one more in an array of *capacity items of size bytes. Returns 0 or -1. */
static int s_reserve(void *array_p, uint32_t count, uint32_t *capacity, size_t size)
{
    if (count < *capacity)
        return 0;
    uint32_t grown = *capacity ? 2 * *capacity : 2;
    void *bigger = realloc(*(void **)array_p, grown * size);
    if (!bigger)
        return -1;
    *(void **)array_p = bigger;
    *capacity = grown;
    return 0;
}

int gateway_topics_follow(gateway_topics_t *self, gateway_follower_t *follower, const char *name,
                          uint32_t max)
{
    if (gateway_follower_follows(follower, name))
        return 0;
    if (follower->count >= max ||
        s_reserve(&follower->topics, follower->count, &follower->capacity,
                  sizeof *follower->topics) != 0)
        return -1;
    gateway_topic_t *topic = zhashx_lookup(self->by_name, name);
    bool created = false;
    if (!topic) {
        topic = calloc(1, sizeof *topic);
        if (!topic || !(topic->name = strdup(name))) {
            free(topic);
            return -1;
        }
        zhashx_insert(self->by_name, topic->name, topic);
        created = true;
    }
    if (s_reserve(&topic->followers, topic->count, &topic->capacity,
                  sizeof *topic->followers) != 0) {
        if (created)
            zhashx_delete(self->by_name, name);
        return -1;
    }
    follower->topics[follower->count].topic = topic;
    follower->topics[follower->count].slot = topic->count;
    follower->count++;
    topic->followers[topic->count++] = follower;
    return created ? 1 : 0;
}

/* Takes follower out of topic's array, at slot. */
static void s_remove(gateway_topic_t *topic, uint32_t slot)
{
    gateway_follower_t *moved = topic->followers[--topic->count];
    if (slot == topic->count)
        return;
    topic->followers[slot] = moved;
    for (uint32_t i = 0; i < moved->count; i++)
        if (moved->topics[i].topic == topic) {
            moved->topics[i].slot = slot;
            break;
        }
}

void gateway_topics_leave_all(gateway_topics_t *self, gateway_follower_t *follower,
                              void (*on_last)(const char *name, void *arg), void *arg)
{
    for (uint32_t i = 0; i < follower->count; i++) {
        gateway_topic_t *topic = follower->topics[i].topic;
        s_remove(topic, follower->topics[i].slot);
        if (topic->count == 0) {
            if (on_last)
                on_last(topic->name, arg);
            zhashx_delete(self->by_name, topic->name);
        }
    }
    free(follower->topics);
    follower->topics = NULL;
    follower->count = follower->capacity = 0;
}
