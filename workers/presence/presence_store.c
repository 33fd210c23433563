/*  presence_store.c - see presence_store.h. The Lua scripts below are the only code that
    changes presence keys in Redis. */
#include "presence_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ARGS_MAX (8 + PROTO_SOCKETS_MAX + PROTO_PROJECTS_MAX)
#define S_SHARDS 16

struct presence_store_t {
    redis_client_t *redis; /* borrowed */
};

static const char *s_open_script =
    "local t, s, g, kind, acct, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]\n"
    "local key = 'sock|'..t..'|'..s\n"
    "local projects = {}\n"
    "for i = 7, #ARGV do projects[#projects + 1] = ARGV[i] end\n"
    "redis.call('HSET', key, 'tenant', t, 'socket', s, 'gateway', g, 'kind', kind,\n"
    "  'account', acct, 'projects', table.concat(projects, ','), 'opened_ms', now,\n"
    "  'last_seen_ms', now, 'state', 'open')\n"
    "redis.call('HDEL', key, 'closed_ms')\n"
    "redis.call('PERSIST', key)\n"
    "redis.call('HINCRBY', key, 'version', 1)\n"
    "redis.call('ZADD', 'socks', now, t..'|'..s)\n"
    "redis.call('SADD', 'dirty', key)\n"
    "if kind == 'agent' and acct ~= '' then\n"
    "  for _, p in ipairs(projects) do\n"
    "    redis.call('SADD', 'agentsocks|'..t..'|'..p..'|'..acct, s)\n"
    "    redis.call('ZADD', 'online|'..t..'|'..p, now, acct)\n"
    "    redis.call('SADD', 'dirty', 'agent|'..t..'|'..p..'|'..acct)\n"
    "  end\n"
    "end\n"
    "return 1\n";

static const char *s_heartbeat_script =
    "local t, now = ARGV[1], ARGV[2]\n"
    "local updated, unknown = 0, {}\n"
    "for i = 3, #ARGV do\n"
    "  local s = ARGV[i]\n"
    "  local key = 'sock|'..t..'|'..s\n"
    "  if redis.call('HGET', key, 'state') == 'open' then\n"
    "    redis.call('HSET', key, 'last_seen_ms', now)\n"
    "    redis.call('HINCRBY', key, 'version', 1)\n"
    "    redis.call('ZADD', 'socks', now, t..'|'..s)\n"
    "    redis.call('SADD', 'dirty', key)\n"
    "    local info = redis.call('HMGET', key, 'kind', 'account', 'projects')\n"
    "    if info[1] == 'agent' and info[2] and info[2] ~= '' and info[3] then\n"
    "      for p in string.gmatch(info[3], '[^,]+') do\n"
    "        redis.call('ZADD', 'online|'..t..'|'..p, now, info[2])\n"
    "        redis.call('SADD', 'dirty', 'agent|'..t..'|'..p..'|'..info[2])\n"
    "      end\n"
    "    end\n"
    "    updated = updated + 1\n"
    "  else\n"
    "    unknown[#unknown + 1] = s\n"
    "  end\n"
    "end\n"
    "return {updated, unknown}\n";

static const char *s_close_script =
    "local t, s, now, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local key = 'sock|'..t..'|'..s\n"
    "redis.call('ZREM', 'socks', t..'|'..s)\n"
    "if redis.call('HGET', key, 'state') ~= 'open' then return {0, {}} end\n"
    "redis.call('HSET', key, 'state', 'closed', 'closed_ms', now)\n"
    "redis.call('HINCRBY', key, 'version', 1)\n"
    "redis.call('EXPIRE', key, ttl)\n"
    "redis.call('SADD', 'dirty', key)\n"
    "local left = {}\n"
    "local info = redis.call('HMGET', key, 'kind', 'account', 'projects')\n"
    "if info[1] == 'agent' and info[2] and info[2] ~= '' and info[3] then\n"
    "  for p in string.gmatch(info[3], '[^,]+') do\n"
    "    local set = 'agentsocks|'..t..'|'..p..'|'..info[2]\n"
    "    redis.call('SREM', set, s)\n"
    "    if redis.call('SCARD', set) == 0 then\n"
    "      redis.call('ZREM', 'online|'..t..'|'..p, info[2])\n"
    "      redis.call('SADD', 'dirty', 'agent|'..t..'|'..p..'|'..info[2])\n"
    "      left[#left + 1] = p\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {1, left}\n";

/* The first claim of a flush round moves all of dirty into flushable; every claim of that round
   takes only from flushable, so an entry updated after the round began waits for the next one
   instead of being written twice in one interval. A claim for a round older than the current
   one gets nothing: that flush is over. flushround expires so that a clock stepped far back
   stalls flushing for an hour at most. The move is a RENAME when the last round left nothing
   behind (the usual case), else the smaller set goes into the larger: the script blocks every
   Redis client while it runs, and SUNIONSTORE of all of dirty took 1.9 s at 1,000,000
   entries (100 gateways of 20,000 sockets heartbeating every 20 s dirty that many). */
static const char *s_claim_script =
    "local round = tonumber(ARGV[4])\n"
    "local current = tonumber(redis.call('GET', 'flushround') or '-1')\n"
    "if round < current then return {} end\n"
    "if round > current then\n"
    "  redis.call('SET', 'flushround', ARGV[4], 'EX', 3600)\n"
    "  if redis.call('EXISTS', 'dirty') == 1 then\n"
    "    if redis.call('EXISTS', 'flushable') == 0 then\n"
    "      redis.call('RENAME', 'dirty', 'flushable')\n"
    "    else\n"
    "      local from, into = 'dirty', 'flushable'\n"
    "      if redis.call('SCARD', 'dirty') > redis.call('SCARD', 'flushable') then\n"
    "        from, into = 'flushable', 'dirty'\n"
    "      end\n"
    "      local moving = redis.call('SMEMBERS', from)\n"
    "      for i = 1, #moving, 1000 do\n"
    "        redis.call('SADD', into, unpack(moving, i, math.min(i + 999, #moving)))\n"
    "      end\n"
    "      redis.call('DEL', from)\n"
    "      if into == 'dirty' then redis.call('RENAME', 'dirty', 'flushable') end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local members = redis.call('SPOP', 'flushable', ARGV[2])\n"
    "for _, m in ipairs(members) do redis.call('HSET', 'flushing|'..ARGV[1], m, ARGV[3]) end\n"
    "return members\n";

static const char *s_dirty_count_script =
    "return redis.call('SCARD', 'dirty') + redis.call('SCARD', 'flushable')\n";

static const char *s_giveback_script = "for i = 2, #ARGV do\n"
                                       "  redis.call('SADD', 'dirty', ARGV[i])\n"
                                       "  redis.call('HDEL', 'flushing|'..ARGV[1], ARGV[i])\n"
                                       "end\n"
                                       "return #ARGV - 1\n";

static const char *s_reclaim_script =
    "local total = 0\n"
    "for _, dead in ipairs(redis.call('ZRANGEBYSCORE', 'flushers', '-inf', ARGV[1])) do\n"
    "  for _, m in ipairs(redis.call('HKEYS', 'flushing|'..dead)) do\n"
    "    redis.call('SADD', 'dirty', m)\n"
    "    total = total + 1\n"
    "  end\n"
    "  redis.call('DEL', 'flushing|'..dead)\n"
    "  redis.call('ZREM', 'flushers', dead)\n"
    "end\n"
    "return total\n";

/* The announced availability of a project; kept a week after its last change. */
static const char *s_swap_availability_script =
    "local key = 'avail|'..ARGV[1]..'|'..ARGV[2]\n"
    "if redis.call('GET', key) == ARGV[3] then return 0 end\n"
    "redis.call('SET', key, ARGV[3], 'EX', 604800)\n"
    "return 1\n";

/* Projects due for evaluation move lease_ms ahead while one replica evaluates them. */
static const char *s_due_checks_script =
    "local due = redis.call('ZRANGEBYSCORE', 'availcheck', '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "for _, m in ipairs(due) do redis.call('ZADD', 'availcheck', ARGV[2], m) end\n"
    "return due\n";

presence_store_t *presence_store_new(redis_client_t *redis)
{
    presence_store_t *self = calloc(1, sizeof *self);
    if (self)
        self->redis = redis;
    return self;
}

void presence_store_destroy(presence_store_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

bool presence_store_name_ok(const char *name)
{
    return !strchr(name, '|') && !strchr(name, ',');
}

/* Runs script with ARGV args (NUL-terminated strings). Returns the reply (owned) unless it is
   missing or an error reply. */
static redisReply *s_eval(presence_store_t *self, const char *script, int argc, const char **args)
{
    const char *argv[S_ARGS_MAX + 3];
    if (argc > S_ARGS_MAX)
        return NULL;
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "0";
    for (int i = 0; i < argc; i++)
        argv[3 + i] = args[i];
    redisReply *reply = redis_client_command(self->redis, argc + 3, argv, NULL);
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Copies a reply array of strings into names (at most max). */
static uint32_t s_names(const redisReply *array, char (*names)[PROTO_NAME_MAX + 1], uint32_t max)
{
    uint32_t n = 0;
    if (array->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < array->elements && n < max; i++) {
        const redisReply *item = array->element[i];
        if (item->type == REDIS_REPLY_STRING && item->len <= PROTO_NAME_MAX) {
            memcpy(names[n], item->str, item->len);
            names[n][item->len] = '\0';
            n++;
        }
    }
    return n;
}

int presence_store_open(presence_store_t *self, const proto_presence_open_t *open, int64_t now_ms)
{
    const char *args[6 + PROTO_PROJECTS_MAX];
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    args[0] = open->tenant;
    args[1] = open->socket;
    args[2] = open->gateway;
    args[3] = open->kind;
    args[4] = open->has_account ? open->account : "";
    args[5] = now;
    int argc = 6;
    for (uint32_t i = 0; open->has_projects && i < open->projects_count; i++)
        args[argc++] = open->projects[i];
    redisReply *reply = s_eval(self, s_open_script, argc, args);
    int ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

int presence_store_heartbeat(presence_store_t *self, const proto_presence_heartbeat_t *beat,
                             int64_t now_ms, uint32_t *updated, char (*unknown)[PROTO_NAME_MAX + 1],
                             uint32_t *unknown_count)
{
    const char *args[2 + PROTO_SOCKETS_MAX];
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    args[0] = beat->tenant;
    args[1] = now;
    for (uint32_t i = 0; i < beat->sockets_count; i++)
        args[2 + i] = beat->sockets[i];
    redisReply *reply = s_eval(self, s_heartbeat_script, 2 + (int)beat->sockets_count, args);
    int ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[0]->type == REDIS_REPLY_INTEGER;
    if (ok) {
        *updated = (uint32_t)reply->element[0]->integer;
        *unknown_count = s_names(reply->element[1], unknown, PROTO_SOCKETS_MAX);
    }
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

int presence_store_close(presence_store_t *self, const char *tenant, const char *socket,
                         int64_t now_ms, bool *was_open, char (*left)[PROTO_NAME_MAX + 1],
                         uint32_t *left_count)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *args[] = {tenant, socket, now, "259200"}; /* closed hashes live 3 days */
    redisReply *reply = s_eval(self, s_close_script, 4, args);
    int ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[0]->type == REDIS_REPLY_INTEGER;
    if (ok) {
        *was_open = reply->element[0]->integer == 1;
        *left_count = s_names(reply->element[1], left, PROTO_PROJECTS_MAX);
    }
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* Turns an array-of-strings reply into a JSON array (owned), or NULL. */
static json_t *s_string_array(redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return NULL;
    json_t *array = json_array();
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            json_array_append_new(array,
                                  json_stringn(reply->element[i]->str, reply->element[i]->len));
    return array;
}

json_t *presence_store_stale(presence_store_t *self, int64_t before_ms, int max)
{
    char before[24], limit[16];
    snprintf(before, sizeof before, "%lld", (long long)before_ms);
    snprintf(limit, sizeof limit, "%d", max);
    const char *argv[] = {"ZRANGEBYSCORE", "socks", "-inf", before, "LIMIT", "0", limit};
    redisReply *reply = redis_client_command(self->redis, 7, argv, NULL);
    json_t *stale = s_string_array(reply);
    if (reply)
        freeReplyObject(reply);
    return stale;
}

int presence_store_flusher_beat(presence_store_t *self, const char *instance, int64_t now_ms)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *argv[] = {"ZADD", "flushers", now, instance};
    redisReply *reply = redis_client_command(self->redis, 4, argv, NULL);
    int ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

long presence_store_reclaim(presence_store_t *self, int64_t before_ms)
{
    char before[24];
    snprintf(before, sizeof before, "(%lld", (long long)before_ms);
    const char *args[] = {before};
    redisReply *reply = s_eval(self, s_reclaim_script, 1, args);
    long total = reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : -1;
    if (reply)
        freeReplyObject(reply);
    return total;
}

json_t *presence_store_claim(presence_store_t *self, const char *instance, int max, int64_t now_ms,
                             int64_t round)
{
    char count[16], now[24], round_text[24];
    snprintf(count, sizeof count, "%d", max);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(round_text, sizeof round_text, "%lld", (long long)round);
    const char *args[] = {instance, count, now, round_text};
    redisReply *reply = s_eval(self, s_claim_script, 4, args);
    json_t *claimed = s_string_array(reply);
    if (reply)
        freeReplyObject(reply);
    return claimed;
}

/* Splits "a|b|c|d" into at most max parts (in place in buf). Returns the number of parts. */
static int s_split(char *buf, char **parts, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *p = strtok_r(buf, "|", &save); p && n < max; p = strtok_r(NULL, "|", &save))
        parts[n++] = p;
    return n;
}

static unsigned s_shard(const char *socket)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const char *p = socket; *p; p++)
        hash = (hash ^ (uint8_t)*p) * 16777619u;
    return hash % S_SHARDS;
}

/* The value of field in a flat HGETALL reply, or NULL. */
static const char *s_field(const redisReply *hash, const char *field)
{
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (hash->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(hash->element[i]->str, field) == 0 &&
            hash->element[i + 1]->type == REDIS_REPLY_STRING)
            return hash->element[i + 1]->str;
    return NULL;
}

static json_t *s_number(const char *text)
{
    return json_pack("{s:s}", "N", text && *text ? text : "0");
}

/* The DynamoDB item of a socket hash, or NULL when the hash is gone or incomplete. */
static json_t *s_socket_item(const redisReply *hash, int64_t row_ttl_s)
{
    const char *tenant = s_field(hash, "tenant"), *socket = s_field(hash, "socket");
    const char *gateway = s_field(hash, "gateway"), *last_seen = s_field(hash, "last_seen_ms");
    if (!tenant || !socket || !gateway || !last_seen)
        return NULL;
    char pk[160], sk[160], expires[24];
    snprintf(pk, sizeof pk, "SOCKETS#%s#%u", tenant, s_shard(socket));
    snprintf(sk, sizeof sk, "SOCKET#%s#%s", gateway, socket);
    snprintf(expires, sizeof expires, "%lld", atoll(last_seen) / 1000 + (long long)row_ttl_s);
    json_t *item = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:o, s:o, s:{s:s}}", "pk", "S",
                             pk, "sk", "S", sk, "gateway", "S", gateway, "state", "S",
                             s_field(hash, "state") ? s_field(hash, "state") : "open",
                             "last_seen_ms", s_number(last_seen), "opened_ms",
                             s_number(s_field(hash, "opened_ms")), "expires_at", "N", expires);
    const char *kind = s_field(hash, "kind"), *account = s_field(hash, "account");
    const char *projects = s_field(hash, "projects"), *closed = s_field(hash, "closed_ms");
    if (kind && *kind)
        json_object_set_new(item, "kind", json_pack("{s:s}", "S", kind));
    if (account && *account)
        json_object_set_new(item, "account_id", json_pack("{s:s}", "S", account));
    if (projects && *projects)
        json_object_set_new(item, "projects", json_pack("{s:s}", "S", projects));
    if (closed)
        json_object_set_new(item, "closed_ms", s_number(closed));
    return item;
}

/* One dirty entry as presence_store_rows reads it. */
typedef struct {
    char buf[4 * (PROTO_NAME_MAX + 1) + 16]; /* the entry, split in place into parts */
    char *parts[5];
    int part_count;
    bool socket;                              /* sock|t|s (else agent|t|p|a) */
    char zset[3 * (PROTO_NAME_MAX + 1) + 16]; /* agents: online|t|p */
    const char *argv[3];
    int argc;
} s_row_read_t;

int presence_store_rows(presence_store_t *self, json_t *entries, int64_t row_ttl_s, json_t **puts,
                        json_t **deletes, json_t **order)
{
    size_t count = json_array_size(entries);
    *puts = json_array();
    *deletes = json_array();
    *order = json_array();
    json_t *delete_order = json_array();
    /* Every entry's read (HGETALL of a socket, ZSCORE of an agent) goes in one pipeline: a
       round trip each made a flush of N entries wait N round trips. */
    s_row_read_t *reads = calloc(count ? count : 1, sizeof *reads);
    int *argcs = calloc(count ? count : 1, sizeof *argcs);
    const char *const **argvs = calloc(count ? count : 1, sizeof *argvs);
    redisReply **replies = calloc(count ? count : 1, sizeof *replies);
    size_t *entry_of = calloc(count ? count : 1, sizeof *entry_of); /* pipeline -> entry */
    int rc = reads && argcs && argvs && replies && entry_of ? 0 : -1;
    int commands = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *entry = json_string_value(json_array_get(entries, i));
        s_row_read_t *r = &reads[i];
        snprintf(r->buf, sizeof r->buf, "%s", entry ? entry : "");
        r->part_count = s_split(r->buf, r->parts, 5);
        if (r->part_count == 3 && strcmp(r->parts[0], "sock") == 0) {
            r->socket = true;
            r->argv[0] = "HGETALL";
            r->argv[1] = entry;
            r->argc = 2;
        } else if (r->part_count == 4 && strcmp(r->parts[0], "agent") == 0) {
            snprintf(r->zset, sizeof r->zset, "online|%s|%s", r->parts[1], r->parts[2]);
            r->argv[0] = "ZSCORE";
            r->argv[1] = r->zset;
            r->argv[2] = r->parts[3];
            r->argc = 3;
        } else
            continue; /* anything else in the dirty set is not ours to write: dropped */
        argcs[commands] = r->argc;
        argvs[commands] = r->argv;
        entry_of[commands++] = i;
    }
    if (rc == 0 && commands > 0)
        rc = redis_client_pipeline(self->redis, commands, argcs, argvs, NULL, replies);
    for (int c = 0; rc == 0 && c < commands; c++) {
        size_t i = entry_of[c];
        s_row_read_t *r = &reads[i];
        const char *entry = json_string_value(json_array_get(entries, i));
        redisReply *reply = replies[c];
        if (r->socket) {
            if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                rc = -1;
                break;
            }
            json_t *item = s_socket_item(reply, row_ttl_s);
            if (item) {
                json_array_append_new(*puts, item);
                json_array_append_new(*order, json_string(entry));
            }
            /* a hash that is gone (expired long after closing) has nothing to write */
            continue;
        }
        char pk[160], sk[96];
        snprintf(pk, sizeof pk, "ONLINE#%s#%s", r->parts[1], r->parts[2]);
        snprintf(sk, sizeof sk, "AGENT#%s", r->parts[3]);
        if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
            rc = -1;
        } else if (reply->type == REDIS_REPLY_NIL) {
            json_array_append_new(*deletes,
                                  json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", pk, "sk", "S", sk));
            json_array_append_new(delete_order, json_string(entry));
        } else {
            long long last_seen = atoll(reply->str);
            char seen[24], expires[24];
            snprintf(seen, sizeof seen, "%lld", last_seen);
            snprintf(expires, sizeof expires, "%lld", last_seen / 1000 + (long long)row_ttl_s);
            json_array_append_new(*puts, json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}", "pk",
                                                   "S", pk, "sk", "S", sk, "last_seen_ms", "N",
                                                   seen, "expires_at", "N", expires));
            json_array_append_new(*order, json_string(entry));
        }
    }
    for (int c = 0; replies && c < commands; c++)
        if (replies[c])
            freeReplyObject(replies[c]);
    free(reads);
    free(argcs);
    free(argvs);
    free(replies);
    free(entry_of);
    json_array_extend(*order, delete_order);
    json_decref(delete_order);
    if (rc != 0) {
        json_decref(*puts);
        json_decref(*deletes);
        json_decref(*order);
        *puts = *deletes = *order = NULL;
    }
    return rc;
}

/* Runs a command over instance + every entry, in chunks. */
static int s_over_entries(presence_store_t *self, const char *script, const char *command,
                          const char *instance, json_t *entries)
{
    size_t count = json_array_size(entries);
    for (size_t start = 0; start < count; start += 256) {
        const char *argv[4 + 256];
        int argc = 0;
        char key[96];
        if (script) {
            argv[argc++] = "EVAL";
            argv[argc++] = script;
            argv[argc++] = "0";
            argv[argc++] = instance;
        } else {
            snprintf(key, sizeof key, "flushing|%s", instance);
            argv[argc++] = command;
            argv[argc++] = key;
        }
        for (size_t i = start; i < count && i < start + 256; i++)
            argv[argc++] = json_string_value(json_array_get(entries, i));
        redisReply *reply = redis_client_command(self->redis, argc, argv, NULL);
        int ok = reply && reply->type == REDIS_REPLY_INTEGER;
        if (reply)
            freeReplyObject(reply);
        if (!ok)
            return -1;
    }
    return 0;
}

int presence_store_ack(presence_store_t *self, const char *instance, json_t *entries)
{
    return s_over_entries(self, NULL, "HDEL", instance, entries);
}

int presence_store_giveback(presence_store_t *self, const char *instance, json_t *entries)
{
    return s_over_entries(self, s_giveback_script, NULL, instance, entries);
}

long presence_store_dirty_count(presence_store_t *self)
{
    redisReply *reply = s_eval(self, s_dirty_count_script, 0, NULL);
    long count = reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : -1;
    if (reply)
        freeReplyObject(reply);
    return count;
}

json_t *presence_store_online_agents(presence_store_t *self, const char *tenant,
                                     const char *project, int max)
{
    char key[2 * PROTO_NAME_MAX + 16], stop[16];
    snprintf(key, sizeof key, "online|%s|%s", tenant, project);
    snprintf(stop, sizeof stop, "%d", max - 1);
    const char *argv[] = {"ZRANGE", key, "0", stop};
    redisReply *reply = redis_client_command(self->redis, 4, argv, NULL);
    json_t *agents = s_string_array(reply);
    if (reply)
        freeReplyObject(reply);
    return agents;
}

int presence_store_swap_availability(presence_store_t *self, const char *tenant,
                                     const char *project, const char *state, bool *changed)
{
    const char *args[] = {tenant, project, state};
    redisReply *reply = s_eval(self, s_swap_availability_script, 3, args);
    int ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (ok)
        *changed = reply->integer == 1;
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

int presence_store_schedule_check(presence_store_t *self, const char *tenant, const char *project,
                                  int64_t due_ms)
{
    char member[2 * PROTO_NAME_MAX + 2], due[24];
    snprintf(member, sizeof member, "%s|%s", tenant, project);
    snprintf(due, sizeof due, "%lld", (long long)due_ms);
    const char *add[] = {"ZADD", "availcheck", due, member};
    const char *rem[] = {"ZREM", "availcheck", member};
    redisReply *reply = due_ms > 0 ? redis_client_command(self->redis, 4, add, NULL)
                                   : redis_client_command(self->redis, 3, rem, NULL);
    int ok = reply && reply->type == REDIS_REPLY_INTEGER;
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

json_t *presence_store_due_checks(presence_store_t *self, int64_t now_ms, int64_t lease_ms,
                                  int max)
{
    char now[24], until[24], count[16];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(until, sizeof until, "%lld", (long long)(now_ms + lease_ms));
    snprintf(count, sizeof count, "%d", max);
    const char *args[] = {now, until, count};
    redisReply *reply = s_eval(self, s_due_checks_script, 3, args);
    json_t *due = s_string_array(reply);
    if (reply)
        freeReplyObject(reply);
    return due;
}
