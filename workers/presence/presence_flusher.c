/*  presence_flusher.c - see presence_flusher.h. */
#include "presence_flusher.h"
#include "../../common/plog.h"
#include "presence_store.h"

#include <inttypes.h>

typedef struct {
    const presence_config_t *config;
    const char *instance;
    redis_client_t *redis;
    presence_store_t *store;
    dynamo_t *dynamo;
    bool table_ready;
    uint64_t rows, batches, errors, reclaimed;
} s_flusher_t;

/* Key "pk|sk" of a WriteRequest's item or key, into buf. */
static const char *s_request_key(json_t *request, char *buf, size_t size)
{
    json_t *put = json_object_get(request, "PutRequest");
    json_t *fields = put ? json_object_get(put, "Item")
                         : json_object_get(json_object_get(request, "DeleteRequest"), "Key");
    const char *pk = json_string_value(json_object_get(json_object_get(fields, "pk"), "S"));
    const char *sk = json_string_value(json_object_get(json_object_get(fields, "sk"), "S"));
    snprintf(buf, size, "%s|%s", pk ? pk : "", sk ? sk : "");
    return buf;
}

/* The "pk|sk" of an item or key object. */
static const char *s_item_key(json_t *fields, char *buf, size_t size)
{
    const char *pk = json_string_value(json_object_get(json_object_get(fields, "pk"), "S"));
    const char *sk = json_string_value(json_object_get(json_object_get(fields, "sk"), "S"));
    snprintf(buf, size, "%s|%s", pk ? pk : "", sk ? sk : "");
    return buf;
}

/* Writes one claimed step. Returns the number of rows DynamoDB accepted, or -1. */
static long s_write_step(s_flusher_t *self, json_t *entries)
{
    json_t *puts, *deletes, *order;
    if (presence_store_rows(self->store, entries, self->config->row_ttl_s, &puts, &deletes,
                            &order) != 0) {
        presence_store_giveback(self->store, self->instance, entries);
        return -1;
    }
    long written = 0;
    if (json_array_size(order) > 0) {
        json_t *unprocessed = NULL;
        dynamo_error_t error;
        int rc = dynamo_batch_write(self->dynamo, self->config->table, puts, deletes, &unprocessed,
                                    &error);
        self->batches += (json_array_size(order) + 24) / 25;
        if (rc != 0) {
            self->errors++;
            plog_warn("flush_failed", "status=%s type=%s unprocessed=%zu",
                      dynamo_status_name(error.status), error.type, json_array_size(unprocessed));
        }
        /* Entries whose request is still unprocessed go back to dirty; the rest are done. */
        json_t *left = json_object();
        size_t i;
        json_t *request;
        char key[400];
        json_array_foreach(unprocessed, i, request)
            json_object_set_new(left, s_request_key(request, key, sizeof key), json_true());
        json_t *done = json_array(), *again = json_array();
        size_t index = 0;
        json_t *fields;
        json_array_foreach(puts, i, fields)
        {
            json_t *entry = json_array_get(order, index++);
            json_array_append(
                json_object_get(left, s_item_key(fields, key, sizeof key)) ? again : done, entry);
        }
        json_array_foreach(deletes, i, fields)
        {
            json_t *entry = json_array_get(order, index++);
            json_array_append(
                json_object_get(left, s_item_key(fields, key, sizeof key)) ? again : done, entry);
        }
        written = (long)json_array_size(done);
        self->rows += (uint64_t)written;
        if (json_array_size(again))
            presence_store_giveback(self->store, self->instance, again);
        json_decref(left);
        json_decref(done);
        json_decref(again);
        json_decref(unprocessed);
    }
    /* Entries that produced no request (gone from Redis) and written ones leave flushing. */
    presence_store_ack(self->store, self->instance, entries);
    json_decref(puts);
    json_decref(deletes);
    json_decref(order);
    return written;
}

/* Creates the table (idempotent) until that has worked once. */
static void s_ensure_table(s_flusher_t *self)
{
    if (self->table_ready)
        return;
    dynamo_error_t error;
    if (dynamo_ensure_table(self->dynamo, self->config->table, "expires_at", &error) == 0)
        self->table_ready = true;
    else {
        self->errors++;
        plog_warn("flush_table_unavailable", "status=%s type=%s", dynamo_status_name(error.status),
                  error.type);
    }
}

/* One flush: heartbeat, take back dead flushers' entries, then claim and write until the
   round's entries are used up or a step fails. The round is the wall-clock interval; an
   out-of-turn flush (FLUSH, $TERM) begins the next round at once, so that it writes
   everything dirty now. */
static void s_flush(s_flusher_t *self, zsock_t *pipe, bool out_of_turn)
{
    int64_t started = zclock_mono();
    int64_t now = zclock_time();
    int64_t round = now / self->config->flush_ms + (out_of_turn ? 1 : 0);
    s_ensure_table(self);
    long reclaimed = -1;
    if (presence_store_flusher_beat(self->store, self->instance, now) == 0)
        reclaimed = presence_store_reclaim(self->store, now - self->config->flusher_lease_ms);
    if (reclaimed > 0) {
        self->reclaimed += (uint64_t)reclaimed;
        plog_info("flush_reclaimed", "entries=%ld", reclaimed);
    }
    while (self->table_ready) {
        json_t *entries = presence_store_claim(self->store, self->instance,
                                               (int)self->config->flush_batch, now, round);
        if (!entries) {
            self->errors++;
            plog_warn("flush_redis_failed", "error=\"%s\"", redis_client_error(self->redis));
            break;
        }
        size_t claimed = json_array_size(entries);
        long written = claimed ? s_write_step(self, entries) : 0;
        json_decref(entries);
        if (claimed == 0 || written < 0 || claimed < (size_t)self->config->flush_batch)
            break;
    }
    long dirty = presence_store_dirty_count(self->store);
    zstr_sendf(pipe, "STATS %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %ld",
               self->rows, self->batches, self->errors, self->reclaimed, zclock_mono() - started,
               dirty);
}

/* Milliseconds until the next wall-clock multiple of flush_ms. */
static int s_until_next_flush(const s_flusher_t *self)
{
    int64_t now = zclock_time();
    int64_t next = (now / self->config->flush_ms + 1) * self->config->flush_ms;
    return (int)(next - now);
}

void presence_flusher_actor(zsock_t *pipe, void *args)
{
    presence_flusher_args_t *a = args;
    s_flusher_t self = {.config = a->config, .instance = a->instance};
    char why[256];
    self.redis = redis_client_new(&a->config->redis, why, sizeof why);
    self.store = self.redis ? presence_store_new(self.redis) : NULL;
    self.dynamo = dynamo_new(&a->config->dynamo);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, NULL);
    bool running = self.store && self.dynamo && poller;
    if (!running)
        plog_error("flusher_start_failed", "reason=\"%s\"", self.redis ? "setup" : why);
    else
        s_ensure_table(&self);
    while (running) {
        zsock_t *which = zpoller_wait(poller, s_until_next_flush(&self));
        if (which == pipe) {
            char *command = zstr_recv(pipe);
            running = !(command && strcmp(command, "$TERM") == 0);
            if (command && strcmp(command, "FLUSH") == 0)
                s_flush(&self, pipe, true);
            zstr_free(&command);
        } else if (zpoller_terminated(poller))
            running = false;
        else
            s_flush(&self, pipe, false);
    }
    if (self.store)
        s_flush(&self, pipe, true); /* last write-behind before leaving */
    zpoller_destroy(&poller);
    dynamo_destroy(&self.dynamo);
    presence_store_destroy(&self.store);
    redis_client_destroy(&self.redis);
}
