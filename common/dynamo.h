/*  dynamo.h - a DynamoDB client over libcurl with its built-in AWS SigV4 signing.

    Speaks the DynamoDB JSON protocol (POST /, X-Amz-Target: DynamoDB_20120810.<Operation>,
    application/x-amz-json-1.0) to AWS or to any compatible endpoint (dynalite in tests). One
    CURL easy handle is kept and reused, so calls share a keep-alive connection. Requests are
    signed by curl (CURLOPT_AWS_SIGV4 "aws:amz:<region>:dynamodb") with credentials from the
    usual AWS environment variables.

    Errors are typed (dynamo_status_t). Throttling, 5xx and transport errors are retried with
    jittered exponential backoff up to retry_max attempts; validation, conditional-check,
    missing-resource and authentication errors are returned at once. Replies are size-capped
    and must be JSON objects, or the call fails with DYNAMO_E_PROTOCOL: a broken or hostile
    endpoint costs an error, never a crash.

    Blocking: each call waits for its answer, about timeout_ms at most in all (a retry that
    would run past it is not made), and after a call fails for the network (no connection,
    no answer in time) calls fail at once (DYNAMO_E_TRANSPORT, type "BackingOff") for 100 ms
    doubling up to backoff_max_ms, so that an endpoint that hangs costs a caller one time
    limit per backoff, not one per call. Callers on an event loop (the jira worker, the
    presence service) rely on both. Not thread-safe: one dynamo_t per thread. */
#ifndef DYNAMO_H
#define DYNAMO_H

#include "config.h"

#include <jansson.h>
#include <stdint.h>

typedef struct {
    char endpoint[256];            /* e.g. https://dynamodb.eu-west-1.amazonaws.com */
    char region[32];
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[2048];      /* optional (temporary credentials) */
    int64_t timeout_ms;            /* per attempt, and about the whole call's (retries) */
    int64_t connect_timeout_ms;
    int64_t retry_max;             /* attempts for retryable errors, the first included */
    int64_t retry_base_ms;         /* first backoff bound; doubles with jitter */
    int64_t reply_max_bytes;
    int64_t backoff_max_ms;        /* fail-at-once period after a network failure, at most */
} dynamo_config_t;

extern const config_option_t dynamo_config_options[];
extern const size_t dynamo_config_option_count;

typedef enum {
    DYNAMO_OK = 0,
    DYNAMO_E_TRANSPORT = -1,   /* connect, timeout, reset: retried */
    DYNAMO_E_THROTTLED = -2,   /* throughput exceeded, throttling: retried */
    DYNAMO_E_SERVER = -3,      /* HTTP 5xx, InternalServerError: retried */
    DYNAMO_E_VALIDATION = -4,  /* the request was wrong: not retried */
    DYNAMO_E_CONDITION = -5,   /* ConditionalCheckFailedException */
    DYNAMO_E_NOT_FOUND = -6,   /* ResourceNotFoundException (table) */
    DYNAMO_E_IN_USE = -7,      /* ResourceInUseException (table exists) */
    DYNAMO_E_AUTH = -8,        /* signature or credentials refused */
    DYNAMO_E_UNSUPPORTED = -9, /* UnknownOperationException (e.g. dynalite and TTL) */
    DYNAMO_E_PROTOCOL = -10,   /* the reply was not what DynamoDB sends */
    DYNAMO_E_OTHER = -11,      /* any other error DynamoDB reported */
} dynamo_status_t;

typedef struct {
    dynamo_status_t status;
    long http_status;          /* 0 when no HTTP answer */
    int attempts;
    char type[96];             /* DynamoDB's __type after '#', or a curl error name */
    char message[256];         /* for logs: never contains item data */
} dynamo_error_t;

typedef struct dynamo_t dynamo_t;

/* Returns a client for config (copied), or NULL when curl cannot be set up. */
dynamo_t *dynamo_new(const dynamo_config_t *config);

/* Frees the client and its connection; sets *self_p to NULL. Accepts NULL. */
void dynamo_destroy(dynamo_t **self_p);

/* Stable lower-case name of a status, for logs and counters. */
const char *dynamo_status_name(dynamo_status_t status);

/* Calls operation (e.g. "PutItem") with request (borrowed). Returns the reply object (the
   caller owns it, json_decref) or NULL with *error filled (error may not be NULL). */
json_t *dynamo_call(dynamo_t *self, const char *operation, json_t *request,
                    dynamo_error_t *error);

/* GetItem with ConsistentRead. Returns 0 and sets *item (owned; NULL when there is none), or
   a negative dynamo_status_t. key is borrowed. */
int dynamo_get_item(dynamo_t *self, const char *table, json_t *key, json_t **item,
                    dynamo_error_t *error);

/* PutItem; condition (may be NULL) is a ConditionExpression, values (may be NULL, borrowed)
   its ExpressionAttributeValues. Returns 0 or a negative dynamo_status_t. */
int dynamo_put_item(dynamo_t *self, const char *table, json_t *item, const char *condition,
                    json_t *values, dynamo_error_t *error);

/* Writes puts (array of items) and deletes (array of keys), both borrowed and either NULL, in
   BatchWriteItem requests of at most 25, resending UnprocessedItems with backoff until all are
   accepted or retry_max rounds pass. Returns 0 when every item was accepted; otherwise a
   negative status, with *unprocessed (owned, may be NULL on input to ignore) set to the
   WriteRequests still not written, so the caller can keep them dirty. */
int dynamo_batch_write(dynamo_t *self, const char *table, json_t *puts, json_t *deletes,
                       json_t **unprocessed, dynamo_error_t *error);

/* Reads keys (array of key objects, borrowed) with ConsistentRead in BatchGetItem requests of
   at most 100, asking again for UnprocessedKeys with backoff up to retry_max rounds while
   timeout_ms since the first request lasts (callers wait on their event loop). Returns
   0 with *items (owned) the items that exist, in no particular order (match them by key), or
   a negative status with *items NULL. */
int dynamo_batch_get(dynamo_t *self, const char *table, json_t *keys, json_t **items,
                     dynamo_error_t *error);

/* Creates a table with string partition key "pk" and sort key "sk" (PAY_PER_REQUEST) unless
   it exists, waits until it is ACTIVE, and enables TTL on ttl_attribute where the store
   supports it (UnknownOperationException is taken as "not supported here" and ignored).
   Returns 0 or a negative status. */
int dynamo_ensure_table(dynamo_t *self, const char *table, const char *ttl_attribute,
                        dynamo_error_t *error);

#endif
