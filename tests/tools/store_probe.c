/*  store_probe.c - exercises common/dynamo and common/redis_client from the command line, so
    that integration tests can drive them against real servers and check the results with
    independent clients (boto3, redis-cli). Prints one JSON object per run on stdout:
    {"ok": true, ...} or {"ok": false, "status": "...", "type": "...", "http": N}.

      store-probe dynamo ensure-table TABLE [TTL_ATTRIBUTE]
      store-probe dynamo put TABLE ITEM_JSON
      store-probe dynamo get TABLE KEY_JSON
      store-probe dynamo batch TABLE COUNT PREFIX     (COUNT items pk=PREFIX, sk=<n>, n=<n>)
      store-probe dynamo call OPERATION REQUEST_JSON
      store-probe redis ARG...                        (one command; the reply as JSON)

    Endpoints and credentials come from the environment (see the option tables). */
#include "../../common/dynamo.h"
#include "../../common/plog.h"
#include "../../common/redis_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_print(json_t *result)
{
    char *text = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", text ? text : "{}");
    free(text);
    int ok = json_is_true(json_object_get(result, "ok"));
    json_decref(result);
    return ok ? 0 : 1;
}

static json_t *s_failure(const dynamo_error_t *error)
{
    return json_pack("{s:b, s:s, s:s, s:I, s:s, s:i}", "ok", 0, "status",
                     dynamo_status_name(error->status), "type", error->type, "http",
                     (json_int_t)error->http_status, "message", error->message, "attempts",
                     error->attempts);
}

static json_t *s_parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);
    if (!value)
        fprintf(stderr, "invalid JSON argument: %s\n", error.text);
    return value;
}

static int s_dynamo(int argc, char **argv)
{
    dynamo_config_t config;
    config_table_t tables[] = {{"DynamoDB", dynamo_config_options, dynamo_config_option_count,
                                &config}};
    char *no_args[] = {argv[0]};
    if (argc < 3 || config_load(tables, 1, 1, no_args, "store-probe") != 0)
        return 2;
    dynamo_t *dynamo = dynamo_new(&config);
    if (!dynamo)
        return 1;
    dynamo_error_t error = {0};
    json_t *result = NULL;
    const char *verb = argv[1];
    const char *table = argv[2];
    if (strcmp(verb, "ensure-table") == 0) {
        int rc = dynamo_ensure_table(dynamo, table, argc > 3 ? argv[3] : NULL, &error);
        result = rc == 0 ? json_pack("{s:b}", "ok", 1) : s_failure(&error);
    } else if (strcmp(verb, "put") == 0 && argc > 3) {
        json_t *item = s_parse(argv[3]);
        int rc = item ? dynamo_put_item(dynamo, table, item, NULL, NULL, &error) : -1;
        result = rc == 0 ? json_pack("{s:b}", "ok", 1) : s_failure(&error);
        json_decref(item);
    } else if (strcmp(verb, "get") == 0 && argc > 3) {
        json_t *key = s_parse(argv[3]);
        json_t *item = NULL;
        int rc = key ? dynamo_get_item(dynamo, table, key, &item, &error) : -1;
        result = rc == 0 ? json_pack("{s:b, s:o}", "ok", 1, "item", item ? item : json_null())
                         : s_failure(&error);
        json_decref(key);
    } else if (strcmp(verb, "batch") == 0 && argc > 4) {
        long count = atol(argv[3]);
        json_t *puts = json_array();
        for (long i = 0; i < count; i++) {
            char sk[32], n[32];
            snprintf(sk, sizeof sk, "%06ld", i);
            snprintf(n, sizeof n, "%ld", i);
            json_array_append_new(puts, json_pack("{s:{s:s}, s:{s:s}, s:{s:s}}", "pk", "S",
                                                  argv[4], "sk", "S", sk, "n", "N", n));
        }
        json_t *unprocessed = NULL;
        int rc = dynamo_batch_write(dynamo, table, puts, NULL, &unprocessed, &error);
        result = rc == 0 ? json_pack("{s:b, s:i}", "ok", 1, "written", (int)count)
                         : s_failure(&error);
        if (rc != 0)
            json_object_set_new(result, "unprocessed",
                                json_integer((json_int_t)json_array_size(unprocessed)));
        json_decref(unprocessed);
        json_decref(puts);
    } else if (strcmp(verb, "call") == 0 && argc > 3) {
        json_t *request = s_parse(argv[3]);
        json_t *reply = request ? dynamo_call(dynamo, table, request, &error) : NULL;
        result = reply ? json_pack("{s:b, s:o}", "ok", 1, "reply", reply) : s_failure(&error);
        json_decref(request);
    } else {
        fprintf(stderr, "unknown dynamo command; see the top of store_probe.c\n");
        dynamo_destroy(&dynamo);
        return 2;
    }
    dynamo_destroy(&dynamo);
    return s_print(result);
}

static json_t *s_reply_json(const redisReply *reply)
{
    switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        return json_stringn(reply->str, reply->len);
    case REDIS_REPLY_INTEGER:
        return json_integer(reply->integer);
    case REDIS_REPLY_NIL:
        return json_null();
    case REDIS_REPLY_ERROR:
        return json_pack("{s:s%}", "error", reply->str, reply->len);
    case REDIS_REPLY_ARRAY: {
        json_t *array = json_array();
        for (size_t i = 0; i < reply->elements; i++)
            json_array_append_new(array, s_reply_json(reply->element[i]));
        return array;
    }
    default:
        return json_string("?");
    }
}

static int s_redis(int argc, char **argv)
{
    redis_client_config_t config;
    config_table_t tables[] = {{"Redis", redis_client_config_options,
                                redis_client_config_option_count, &config}};
    char *no_args[] = {argv[0]};
    if (argc < 2 || config_load(tables, 1, 1, no_args, "store-probe") != 0)
        return 2;
    char why[256];
    redis_client_t *redis = redis_client_new(&config, why, sizeof why);
    if (!redis)
        return s_print(json_pack("{s:b, s:s}", "ok", 0, "error", why));
    redisReply *reply = redis_client_command(redis, argc - 1, (const char **)argv + 1, NULL);
    json_t *result = reply ? json_pack("{s:b, s:o}", "ok", 1, "reply", s_reply_json(reply))
                           : json_pack("{s:b, s:s}", "ok", 0, "error", redis_client_error(redis));
    if (reply)
        freeReplyObject(reply);
    redis_client_destroy(&redis);
    return s_print(result);
}

int main(int argc, char **argv)
{
    plog_init("store-probe", PLOG_WARN);
    if (argc >= 2 && strcmp(argv[1], "dynamo") == 0)
        return s_dynamo(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "redis") == 0)
        return s_redis(argc - 1, argv + 1);
    fprintf(stderr, "usage: store-probe dynamo|redis ...; see the top of store_probe.c\n");
    return 2;
}
