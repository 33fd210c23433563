/*  latency_histogram.c - see latency_histogram.h. */
#include "latency_histogram.h"

#include <stdlib.h>
#include <string.h>

#define S_LINEAR 16       /* values below this get a bucket each */
#define S_SUB_BITS 3      /* 8 sub-buckets per power of two */
#define S_MAX_EXPONENT 40 /* values at or above 2^40 us (12 days) share the last bucket */
#define S_BUCKETS (S_LINEAR + (S_MAX_EXPONENT - 4 + 1) * (1 << S_SUB_BITS))

typedef struct {
    int64_t epoch; /* now_ms / LATENCY_SLOT_MS when this slot was last written */
    uint64_t total;
    uint32_t buckets[S_BUCKETS];
} s_slot_t;

struct latency_histogram_t {
    s_slot_t slots[LATENCY_SLOTS];
    uint64_t count;
    uint64_t sum_us;
};

static int s_bucket(uint64_t v)
{
    if (v < S_LINEAR)
        return (int)v;
    int exponent = 63 - __builtin_clzll(v);
    if (exponent > S_MAX_EXPONENT)
        return S_BUCKETS - 1;
    int sub = (int)((v >> (exponent - S_SUB_BITS)) & ((1 << S_SUB_BITS) - 1));
    return S_LINEAR + (exponent - 4) * (1 << S_SUB_BITS) + sub;
}

/* Largest value that falls into bucket b. */
static uint64_t s_upper(int b)
{
    if (b < S_LINEAR)
        return (uint64_t)b;
    int exponent = 4 + (b - S_LINEAR) / (1 << S_SUB_BITS);
    uint64_t sub = (uint64_t)((b - S_LINEAR) % (1 << S_SUB_BITS));
    uint64_t width = 1ull << (exponent - S_SUB_BITS);
    return (((1ull << S_SUB_BITS) + sub) << (exponent - S_SUB_BITS)) + width - 1;
}

latency_histogram_t *latency_histogram_new(void)
{
    latency_histogram_t *self = calloc(1, sizeof *self);
    if (self)
        for (int i = 0; i < LATENCY_SLOTS; i++)
            self->slots[i].epoch = -1;
    return self;
}

void latency_histogram_destroy(latency_histogram_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

void latency_histogram_record(latency_histogram_t *self, uint64_t value_us, int64_t now_ms)
{
    int64_t epoch = now_ms / LATENCY_SLOT_MS;
    s_slot_t *slot = &self->slots[epoch % LATENCY_SLOTS];
    if (slot->epoch != epoch) {
        memset(slot->buckets, 0, sizeof slot->buckets);
        slot->total = 0;
        slot->epoch = epoch;
    }
    slot->buckets[s_bucket(value_us)]++;
    slot->total++;
    self->count++;
    self->sum_us += value_us;
}

uint64_t latency_histogram_percentile(const latency_histogram_t *self, double p, int64_t now_ms)
{
    int64_t epoch = now_ms / LATENCY_SLOT_MS;
    uint64_t total = 0;
    for (int i = 0; i < LATENCY_SLOTS; i++)
        if (self->slots[i].epoch > epoch - LATENCY_SLOTS && self->slots[i].epoch <= epoch)
            total += self->slots[i].total;
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)((p / 100.0) * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int b = 0; b < S_BUCKETS; b++) {
        for (int i = 0; i < LATENCY_SLOTS; i++)
            if (self->slots[i].epoch > epoch - LATENCY_SLOTS && self->slots[i].epoch <= epoch)
                seen += self->slots[i].buckets[b];
        if (seen >= rank)
            return s_upper(b);
    }
    return s_upper(S_BUCKETS - 1);
}

uint64_t latency_histogram_count(const latency_histogram_t *self)
{
    return self->count;
}

uint64_t latency_histogram_sum_us(const latency_histogram_t *self)
{
    return self->sum_us;
}
