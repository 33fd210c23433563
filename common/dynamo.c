/*  dynamo.c - see dynamo.h.

    Owns one CURL easy handle (and with it the keep-alive connection) and the response buffer.
    Every error path leaves the handle reusable. */
#include "dynamo.h"
#include "backoff.h"
#include "plog.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T dynamo_config_t
const config_option_t dynamo_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_DYNAMO_ENDPOINT", T, endpoint, "http://127.0.0.1:8000",
                      "DynamoDB endpoint URL (AWS: https://dynamodb.<region>.amazonaws.com)"),
    CONFIG_STR_OPTION("AWS_REGION", T, region, "eu-west-1", "AWS region for signing"),
    CONFIG_SECRET_OPTION("AWS_ACCESS_KEY_ID", T, access_key_id, "local",
                         "AWS access key id"),
    CONFIG_SECRET_OPTION("AWS_SECRET_ACCESS_KEY", T, secret_access_key, "local",
                         "AWS secret access key"),
    CONFIG_SECRET_OPTION("AWS_SESSION_TOKEN", T, session_token, "",
                         "AWS session token, for temporary credentials"),
    CONFIG_INT_OPTION("PARLEY_DYNAMO_TIMEOUT_MS", T, timeout_ms, "2000", 10, 600000,
                      "time limit of one DynamoDB call, its retries included (ms); under the "
                      "broker's liveness (heartbeat x liveness): workers wait on their loop"),
    CONFIG_INT_OPTION("PARLEY_DYNAMO_CONNECT_TIMEOUT_MS", T, connect_timeout_ms, "1000", 10,
                      60000, "time limit to connect to DynamoDB (ms)"),
    CONFIG_INT_OPTION("PARLEY_DYNAMO_RETRY_MAX", T, retry_max, "5", 1, 100,
                      "attempts for throttled, 5xx and network errors"),
    CONFIG_INT_OPTION("PARLEY_DYNAMO_RETRY_BASE_MS", T, retry_base_ms, "50", 1, 60000,
                      "first retry delay bound (ms); doubles with jitter"),
    CONFIG_INT_OPTION("PARLEY_DYNAMO_REPLY_MAX_BYTES", T, reply_max_bytes, "16777216", 1024,
                      268435456, "largest DynamoDB reply accepted (bytes)"),
    CONFIG_INT_OPTION("PARLEY_DYNAMO_BACKOFF_MAX_MS", T, backoff_max_ms, "2000", 0, 600000,
                      "after a call fails for the network (no connection, no answer in time), "
                      "calls fail at once for up to this long before one tries again (ms; 0: "
                      "every call tries)"),
};
#undef T
const size_t dynamo_config_option_count =
    sizeof dynamo_config_options / sizeof dynamo_config_options[0];

#define S_BATCH_MAX 25 /* BatchWriteItem's limit */
#define S_BATCH_GET_MAX 100 /* BatchGetItem's limit */
#define S_UNREACHABLE_MIN_MS 100 /* first fail-at-once period after a network failure */

struct dynamo_t {
    dynamo_config_t config;
    CURL *curl;
    char sigv4[96];      /* "aws:amz:<region>:dynamodb" */
    char userpwd[260];
    char *reply;         /* response body of the current attempt */
    size_t reply_size;
    size_t reply_allocated;
    int reply_overflow;
    backoff_t unreachable; /* after a call ends in a network failure, calls fail at once */
    int64_t retry_at_ms;   /* ... until then (0: none failed since the last success) */
};

static const char *s_status_names[] = {
    "ok",        "transport", "throttled",   "server",   "validation", "condition",
    "not_found", "in_use",    "auth",        "unsupported", "protocol", "other",
};

const char *dynamo_status_name(dynamo_status_t status)
{
    int index = -(int)status;
    return index >= 0 && index < (int)(sizeof s_status_names / sizeof *s_status_names)
               ? s_status_names[index]
               : "unknown";
}

static size_t s_on_body(char *data, size_t size, size_t count, void *arg)
{
    dynamo_t *self = arg;
    size_t n = size * count;
    if (self->reply_size + n > (size_t)self->config.reply_max_bytes) {
        self->reply_overflow = 1;
        return 0; /* makes curl abort the transfer */
    }
    if (self->reply_size + n + 1 > self->reply_allocated) {
        size_t allocated = self->reply_allocated ? self->reply_allocated : 4096;
        while (allocated < self->reply_size + n + 1)
            allocated *= 2;
        char *grown = realloc(self->reply, allocated);
        if (!grown)
            return 0;
        self->reply = grown;
        self->reply_allocated = allocated;
    }
    memcpy(self->reply + self->reply_size, data, n);
    self->reply_size += n;
    self->reply[self->reply_size] = '\0';
    return n;
}

dynamo_t *dynamo_new(const dynamo_config_t *config)
{
    static int curl_ready = 0;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return NULL;
        curl_ready = 1;
    }
    dynamo_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->curl = curl_easy_init();
    if (!self->curl) {
        free(self);
        return NULL;
    }
    if (config->backoff_max_ms > 0)
        backoff_init(&self->unreachable,
                     S_UNREACHABLE_MIN_MS < config->backoff_max_ms ? S_UNREACHABLE_MIN_MS
                                                                   : config->backoff_max_ms,
                     config->backoff_max_ms);
    snprintf(self->sigv4, sizeof self->sigv4, "aws:amz:%s:dynamodb", config->region);
    snprintf(self->userpwd, sizeof self->userpwd, "%s:%s", config->access_key_id,
             config->secret_access_key);
    return self;
}

void dynamo_destroy(dynamo_t **self_p)
{
    dynamo_t *self = *self_p;
    if (!self)
        return;
    curl_easy_cleanup(self->curl);
    free(self->reply);
    free(self);
    *self_p = NULL;
}

static void s_set_error(dynamo_error_t *error, dynamo_status_t status, long http_status,
                        const char *type, const char *message)
{
    error->status = status;
    error->http_status = http_status;
    snprintf(error->type, sizeof error->type, "%s", type ? type : "");
    snprintf(error->message, sizeof error->message, "%s", message ? message : "");
}

/* Maps DynamoDB's __type (after '#') to a status. */
static dynamo_status_t s_classify(const char *type, long http_status)
{
    static const struct {
        const char *type;
        dynamo_status_t status;
    } table[] = {
        {"ProvisionedThroughputExceededException", DYNAMO_E_THROTTLED},
        {"ThrottlingException", DYNAMO_E_THROTTLED},
        {"RequestLimitExceeded", DYNAMO_E_THROTTLED},
        {"InternalServerError", DYNAMO_E_SERVER},
        {"ServiceUnavailable", DYNAMO_E_SERVER},
        {"ValidationException", DYNAMO_E_VALIDATION},
        {"SerializationException", DYNAMO_E_VALIDATION},
        {"ConditionalCheckFailedException", DYNAMO_E_CONDITION},
        {"ResourceNotFoundException", DYNAMO_E_NOT_FOUND},
        {"ResourceInUseException", DYNAMO_E_IN_USE},
        {"UnknownOperationException", DYNAMO_E_UNSUPPORTED},
        {"InvalidSignatureException", DYNAMO_E_AUTH},
        {"UnrecognizedClientException", DYNAMO_E_AUTH},
        {"MissingAuthenticationTokenException", DYNAMO_E_AUTH},
        {"IncompleteSignatureException", DYNAMO_E_AUTH},
        {"AccessDeniedException", DYNAMO_E_AUTH},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(type, table[i].type) == 0)
            return table[i].status;
    if (http_status >= 500)
        return DYNAMO_E_SERVER;
    return DYNAMO_E_OTHER;
}

static bool s_retryable(dynamo_status_t status)
{
    return status == DYNAMO_E_TRANSPORT || status == DYNAMO_E_THROTTLED ||
           status == DYNAMO_E_SERVER;
}

/* One HTTP attempt. Returns the reply object, or NULL with error set. */
static json_t *s_attempt(dynamo_t *self, const char *operation, const char *body,
                         dynamo_error_t *error)
{
    char target[96];
    snprintf(target, sizeof target, "X-Amz-Target: DynamoDB_20120810.%s", operation);
    struct curl_slist *headers = curl_slist_append(NULL, target);
    headers = curl_slist_append(headers, "Content-Type: application/x-amz-json-1.0");
    char token[2100];
    if (*self->config.session_token) {
        snprintf(token, sizeof token, "X-Amz-Security-Token: %s", self->config.session_token);
        headers = curl_slist_append(headers, token);
    }
    CURL *curl = self->curl;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, self->config.endpoint);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, self->sigv4);
    curl_easy_setopt(curl, CURLOPT_USERPWD, self->userpwd);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)self->config.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)self->config.connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, self);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    self->reply_size = 0;
    self->reply_overflow = 0;
    if (self->reply)
        self->reply[0] = '\0';
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    long http_status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    if (self->reply_overflow) {
        s_set_error(error, DYNAMO_E_PROTOCOL, http_status, "ReplyTooLarge",
                    "reply larger than PARLEY_DYNAMO_REPLY_MAX_BYTES");
        return NULL;
    }
    if (rc != CURLE_OK) {
        s_set_error(error, DYNAMO_E_TRANSPORT, 0, "transport", curl_easy_strerror(rc));
        return NULL;
    }
    json_error_t parse_error;
    json_t *reply = self->reply_size
                        ? json_loadb(self->reply, self->reply_size, JSON_REJECT_DUPLICATES,
                                     &parse_error)
                        : NULL;
    if (http_status == 200) {
        if (json_is_object(reply))
            return reply;
        json_decref(reply);
        s_set_error(error, DYNAMO_E_PROTOCOL, http_status, "MalformedReply",
                    "200 reply is not a JSON object");
        return NULL;
    }
    const char *type = "";
    const char *message = "";
    if (json_is_object(reply)) {
        const char *full = json_string_value(json_object_get(reply, "__type"));
        if (full) {
            const char *hash = strrchr(full, '#');
            type = hash ? hash + 1 : full;
        }
        const char *m = json_string_value(json_object_get(reply, "message"));
        if (!m)
            m = json_string_value(json_object_get(reply, "Message"));
        if (m)
            message = m;
    }
    dynamo_status_t status =
        *type ? s_classify(type, http_status)
              : (http_status >= 500 ? DYNAMO_E_SERVER
                                    : http_status == 403 ? DYNAMO_E_AUTH : DYNAMO_E_PROTOCOL);
    s_set_error(error, status, http_status, *type ? type : "HttpError",
                *message ? message : "unexpected HTTP status");
    json_decref(reply);
    return NULL;
}

static int64_t s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* True when waiting delay_ms more and trying again keeps an operation begun at started_ms
   within the time limit: callers wait for it on their event loop, and an endpoint that does
   not answer (or keeps answering "later") would hold them retry_max times over. */
static bool s_time_left(const dynamo_t *self, int64_t started_ms, int64_t delay_ms)
{
    return s_now_ms() - started_ms + delay_ms < self->config.timeout_ms;
}

/* True (error set) while calls fail at once after a network failure. */
static bool s_unreachable(dynamo_t *self, dynamo_error_t *error)
{
    if (!self->retry_at_ms || s_now_ms() >= self->retry_at_ms)
        return false;
    s_set_error(error, DYNAMO_E_TRANSPORT, 0, "BackingOff",
                "DynamoDB failed for the network moments ago; not tried again yet");
    error->attempts = 0;
    return true;
}

json_t *dynamo_call(dynamo_t *self, const char *operation, json_t *request,
                    dynamo_error_t *error)
{
    if (s_unreachable(self, error))
        return NULL;
    char *body = json_dumps(request, JSON_COMPACT);
    if (!body) {
        s_set_error(error, DYNAMO_E_VALIDATION, 0, "Encoding", "request does not encode");
        return NULL;
    }
    backoff_t backoff;
    backoff_init(&backoff, self->config.retry_base_ms, self->config.retry_base_ms * 64);
    json_t *reply = NULL;
    int64_t started_ms = s_now_ms();
    int attempt;
    for (attempt = 1; attempt <= self->config.retry_max; attempt++) {
        reply = s_attempt(self, operation, body, error);
        if (reply || !s_retryable(error->status) || attempt == self->config.retry_max)
            break;
        int64_t delay = backoff_next_ms(&backoff);
        if (!s_time_left(self, started_ms, delay)) /* about one time limit in all */
            break;
        plog_warn("dynamo_retry", "operation=%s status=%s http=%ld type=%s attempt=%d delay_ms=%ld",
                  operation, dynamo_status_name(error->status), error->http_status, error->type,
                  attempt, (long)delay);
        usleep((useconds_t)delay * 1000);
    }
    free(body);
    if (reply) {
        error->status = DYNAMO_OK;
        error->http_status = 200;
        if (self->retry_at_ms) {
            self->retry_at_ms = 0;
            backoff_reset(&self->unreachable);
        }
    } else if (error->status == DYNAMO_E_TRANSPORT && self->config.backoff_max_ms > 0)
        self->retry_at_ms = s_now_ms() + backoff_next_ms(&self->unreachable);
    error->attempts = attempt > self->config.retry_max ? (int)self->config.retry_max : attempt;
    return reply;
}

int dynamo_get_item(dynamo_t *self, const char *table, json_t *key, json_t **item,
                    dynamo_error_t *error)
{
    json_t *request = json_pack("{s:s, s:O, s:b}", "TableName", table, "Key", key,
                                "ConsistentRead", 1);
    json_t *reply = dynamo_call(self, "GetItem", request, error);
    json_decref(request);
    *item = NULL;
    if (!reply)
        return error->status;
    json_t *found = json_object_get(reply, "Item");
    if (found && !json_is_object(found)) {
        json_decref(reply);
        s_set_error(error, DYNAMO_E_PROTOCOL, 200, "MalformedReply", "Item is not an object");
        return DYNAMO_E_PROTOCOL;
    }
    *item = json_incref(found);
    json_decref(reply);
    return DYNAMO_OK;
}

int dynamo_put_item(dynamo_t *self, const char *table, json_t *item, const char *condition,
                    json_t *values, dynamo_error_t *error)
{
    json_t *request = json_pack("{s:s, s:O}", "TableName", table, "Item", item);
    if (condition)
        json_object_set_new(request, "ConditionExpression", json_string(condition));
    if (values)
        json_object_set(request, "ExpressionAttributeValues", values);
    json_t *reply = dynamo_call(self, "PutItem", request, error);
    json_decref(request);
    json_decref(reply);
    return reply ? DYNAMO_OK : error->status;
}

/* Sends one BatchWriteItem of at most 25 requests; returns its UnprocessedItems for table as
   a new array (empty when all were taken), or NULL with error set. */
static json_t *s_batch_once(dynamo_t *self, const char *table, json_t *requests,
                            dynamo_error_t *error)
{
    json_t *request = json_pack("{s:{s:O}}", "RequestItems", table, requests);
    json_t *reply = dynamo_call(self, "BatchWriteItem", request, error);
    json_decref(request);
    if (!reply)
        return NULL;
    json_t *left = json_object_get(json_object_get(reply, "UnprocessedItems"), table);
    json_t *result = json_is_array(left) ? json_incref(left) : json_array();
    json_decref(reply);
    return result;
}

int dynamo_batch_write(dynamo_t *self, const char *table, json_t *puts, json_t *deletes,
                       json_t **unprocessed, dynamo_error_t *error)
{
    json_t *pending = json_array();
    size_t i;
    json_t *value;
    json_array_foreach(puts, i, value)
        json_array_append_new(pending, json_pack("{s:{s:O}}", "PutRequest", "Item", value));
    json_array_foreach(deletes, i, value)
        json_array_append_new(pending, json_pack("{s:{s:O}}", "DeleteRequest", "Key", value));
    json_t *failed = json_array(); /* requests that could not be written */
    error->status = DYNAMO_OK;
    backoff_t backoff;
    backoff_init(&backoff, self->config.retry_base_ms, self->config.retry_base_ms * 64);
    for (size_t start = 0; start < json_array_size(pending); start += S_BATCH_MAX) {
        json_t *chunk = json_array();
        for (size_t j = start; j < start + S_BATCH_MAX && j < json_array_size(pending); j++)
            json_array_append(chunk, json_array_get(pending, j));
        for (int round = 1; json_array_size(chunk) > 0; round++) {
            json_t *left = s_batch_once(self, table, chunk, error);
            if (!left) { /* the whole chunk failed after dynamo_call's own retries */
                json_array_extend(failed, chunk);
                break;
            }
            json_decref(chunk);
            chunk = left;
            if (json_array_size(chunk) == 0)
                break;
            if (round >= self->config.retry_max) {
                s_set_error(error, DYNAMO_E_THROTTLED, 200, "UnprocessedItems",
                            "items still unprocessed after the last retry");
                json_array_extend(failed, chunk);
                break;
            }
            usleep((useconds_t)backoff_next_ms(&backoff) * 1000);
        }
        json_decref(chunk);
    }
    json_decref(pending);
    int rc = json_array_size(failed) == 0 ? DYNAMO_OK
                                          : (error->status ? error->status : DYNAMO_E_OTHER);
    if (rc == DYNAMO_OK)
        error->status = DYNAMO_OK;
    if (unprocessed)
        *unprocessed = failed;
    else
        json_decref(failed);
    return rc;
}

int dynamo_batch_get(dynamo_t *self, const char *table, json_t *keys, json_t **items,
                     dynamo_error_t *error)
{
    *items = json_array();
    error->status = DYNAMO_OK;
    backoff_t backoff;
    backoff_init(&backoff, self->config.retry_base_ms, self->config.retry_base_ms * 64);
    int rc = *items ? DYNAMO_OK : DYNAMO_E_OTHER;
    int64_t started_ms = s_now_ms();
    for (size_t start = 0; rc == DYNAMO_OK && start < json_array_size(keys);
         start += S_BATCH_GET_MAX) {
        json_t *chunk = json_array();
        for (size_t j = start; chunk && j < start + S_BATCH_GET_MAX && j < json_array_size(keys);
             j++)
            json_array_append(chunk, json_array_get(keys, j));
        for (int round = 1; chunk && json_array_size(chunk) > 0; round++) {
            json_t *request = json_pack("{s:{s:{s:O, s:b}}}", "RequestItems", table, "Keys",
                                        chunk, "ConsistentRead", 1);
            json_t *reply = request ? dynamo_call(self, "BatchGetItem", request, error) : NULL;
            json_decref(request);
            if (!reply) {
                rc = error->status ? error->status : DYNAMO_E_OTHER;
                break;
            }
            json_t *found = json_object_get(json_object_get(reply, "Responses"), table);
            size_t i;
            json_t *item;
            json_array_foreach(found, i, item)
                if (json_is_object(item))
                    json_array_append(*items, item);
            json_t *left = json_object_get(
                json_object_get(json_object_get(reply, "UnprocessedKeys"), table), "Keys");
            json_decref(chunk);
            chunk = json_is_array(left) ? json_incref(left) : NULL;
            json_decref(reply);
            if (!chunk || json_array_size(chunk) == 0)
                break;
            int64_t delay = backoff_next_ms(&backoff);
            if (round >= self->config.retry_max || !s_time_left(self, started_ms, delay)) {
                s_set_error(error, DYNAMO_E_THROTTLED, 200, "UnprocessedKeys",
                            "keys still unprocessed after the last retry");
                rc = DYNAMO_E_THROTTLED;
                break;
            }
            usleep((useconds_t)delay * 1000);
        }
        json_decref(chunk);
    }
    if (rc != DYNAMO_OK) {
        json_decref(*items);
        *items = NULL;
    }
    return rc;
}

int dynamo_ensure_table(dynamo_t *self, const char *table, const char *ttl_attribute,
                        dynamo_error_t *error)
{
    json_t *request = json_pack(
        "{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}, {s:s, s:s}]}", "TableName", table,
        "BillingMode", "PAY_PER_REQUEST", "AttributeDefinitions", "AttributeName", "pk",
        "AttributeType", "S", "AttributeName", "sk", "AttributeType", "S", "KeySchema",
        "AttributeName", "pk", "KeyType", "HASH", "AttributeName", "sk", "KeyType", "RANGE");
    json_t *reply = dynamo_call(self, "CreateTable", request, error);
    json_decref(request);
    json_decref(reply);
    if (!reply && error->status != DYNAMO_E_IN_USE)
        return error->status;
    /* Wait until ACTIVE (CreateTable is asynchronous on AWS). */
    for (int i = 0; i < 120; i++) {
        request = json_pack("{s:s}", "TableName", table);
        reply = dynamo_call(self, "DescribeTable", request, error);
        json_decref(request);
        if (!reply)
            return error->status;
        const char *state =
            json_string_value(json_object_get(json_object_get(reply, "Table"), "TableStatus"));
        int active = state && strcmp(state, "ACTIVE") == 0;
        json_decref(reply);
        if (active)
            break;
        usleep(250 * 1000);
    }
    if (!ttl_attribute)
        return DYNAMO_OK;
    request = json_pack("{s:s, s:{s:b, s:s}}", "TableName", table, "TimeToLiveSpecification",
                        "Enabled", 1, "AttributeName", ttl_attribute);
    reply = dynamo_call(self, "UpdateTimeToLive", request, error);
    json_decref(request);
    json_decref(reply);
    if (reply)
        return DYNAMO_OK;
    if (error->status == DYNAMO_E_UNSUPPORTED) {
        plog_info("dynamo_ttl_unsupported", "table=%s note=\"store has no UpdateTimeToLive\"",
                  table);
        error->status = DYNAMO_OK;
        return DYNAMO_OK;
    }
    /* Already enabled answers ValidationException on AWS: fine too. */
    if (error->status == DYNAMO_E_VALIDATION && strstr(error->message, "already enabled")) {
        error->status = DYNAMO_OK;
        return DYNAMO_OK;
    }
    return error->status;
}
