/*  gateway_mailbox.c - see gateway_mailbox.h. A mutex around a singly linked list. */
#include "gateway_mailbox.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct s_node_t {
    struct s_node_t *next;
    int kind;
    void *item;
} s_node_t;

struct gateway_mailbox_t {
    pthread_mutex_t lock;
    s_node_t *head, *tail;
    size_t size;
};

gateway_mailbox_t *gateway_mailbox_new(void)
{
    gateway_mailbox_t *self = calloc(1, sizeof *self);
    if (self && pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    return self;
}

void gateway_mailbox_destroy(gateway_mailbox_t **self_p, void (*free_item)(int kind, void *item))
{
    gateway_mailbox_t *self = *self_p;
    if (!self)
        return;
    int kind;
    void *item;
    while (gateway_mailbox_take(self, &kind, &item))
        if (free_item)
            free_item(kind, item);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int gateway_mailbox_put(gateway_mailbox_t *self, int kind, void *item)
{
    s_node_t *node = malloc(sizeof *node);
    if (!node)
        return -1;
    *node = (s_node_t){.kind = kind, .item = item};
    pthread_mutex_lock(&self->lock);
    bool was_empty = self->head == NULL;
    if (self->tail)
        self->tail->next = node;
    else
        self->head = node;
    self->tail = node;
    self->size++;
    pthread_mutex_unlock(&self->lock);
    return was_empty ? 1 : 0;
}

bool gateway_mailbox_take(gateway_mailbox_t *self, int *kind, void **item)
{
    pthread_mutex_lock(&self->lock);
    s_node_t *node = self->head;
    if (node) {
        self->head = node->next;
        if (!self->head)
            self->tail = NULL;
        self->size--;
    }
    pthread_mutex_unlock(&self->lock);
    if (!node)
        return false;
    *kind = node->kind;
    *item = node->item;
    free(node);
    return true;
}

size_t gateway_mailbox_size(gateway_mailbox_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t size = self->size;
    pthread_mutex_unlock(&self->lock);
    return size;
}
