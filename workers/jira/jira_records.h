/*  jira_records.h - what the jira worker remembers outside Jira: identifiers only, never a
    message's text (see common/DATA-MODEL.md).

    Redis (fast, expiring after a week):
      jmsg|<tenant>|<issue>   hash message id -> "pending" (a write to Jira began) or the
                              comment id Jira gave it: makes conversation.message idempotent
      jown|<tenant>|<comment> string: this comment was written by Parley (webhooks ignore it)
      jseen|<tenant>|<comment> string: this Jira-written comment was already announced
      jid|<tenant>|<hash>      string: an identity's account id, read through (a day)
    DynamoDB (durable, table pk/sk):
      TENANT#<t> / CONV#<conversation>   issue_key, issue_id, conv_state (creating|open),
                                         claimed_ms: conversation id -> issue
      TENANT#<t> / IDENTITY#<sha256 hex> account_id: customer identity -> Jira account

    Borrows a redis_client_t and a dynamo_t; blocking; one thread. */
#ifndef JIRA_RECORDS_H
#define JIRA_RECORDS_H

#include "../../common/dynamo.h"
#include "../../common/redis_client.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct jira_records_t jira_records_t;

jira_records_t *jira_records_new(redis_client_t *redis, dynamo_t *dynamo, const char *table);
void jira_records_destroy(jira_records_t **self_p);

typedef enum { JIRA_MESSAGE_NEW, JIRA_MESSAGE_PENDING, JIRA_MESSAGE_DONE } jira_message_state_t;

/* Each returns 0, or -1 when Redis failed. */
/* Reads a message's mark into *state (and comment, when done) and, when it had none, marks it
   pending (one round trip): the caller is about to write it. */
int jira_records_message_begin(jira_records_t *self, const char *tenant, const char *issue,
                               const char *message, jira_message_state_t *state,
                               char *comment, size_t comment_size);
int jira_records_message_done(jira_records_t *self, const char *tenant, const char *issue,
                              const char *message, const char *comment);
/* *ours: Parley wrote that comment. */
int jira_records_comment_ours(jira_records_t *self, const char *tenant, const char *comment,
                              bool *ours);
/* *first: this is the first time the comment is announced (marks it). */
int jira_records_comment_first_seen(jira_records_t *self, const char *tenant,
                                    const char *comment, bool *first);

typedef struct {
    char issue_key[64];
    char issue_id[64];
    bool open;          /* the issue exists; else a creation was claimed at claimed_ms */
    int64_t claimed_ms;
} jira_conversation_record_t;

/* Returns 0 with *found, or a negative dynamo status. */
int jira_records_conversation_get(jira_records_t *self, const char *tenant,
                                  const char *conversation, jira_conversation_record_t *out,
                                  bool *found);
/* Claims the creation of the conversation's issue: 0 when claimed, 1 when someone else holds
   a claim (or it exists), negative dynamo status on failure. stale_before_ms: an older claim
   may be taken over (its owner died). */
int jira_records_conversation_claim(jira_records_t *self, const char *tenant,
                                    const char *conversation, int64_t now_ms,
                                    int64_t stale_before_ms);
int jira_records_conversation_open(jira_records_t *self, const char *tenant,
                                   const char *conversation, const char *issue_key,
                                   const char *issue_id, int64_t now_ms);

/* Writes into hex (65 bytes) the identity hash of an e-mail address (case-folded, trimmed). */
void jira_records_identity_hash(const char *email, size_t length, char hex[65]);
/* 0 with *found and account filled, or a negative dynamo status. */
int jira_records_identity_get(jira_records_t *self, const char *tenant, const char *hash,
                              char *account, size_t account_size, bool *found);
int jira_records_identity_put(jira_records_t *self, const char *tenant, const char *hash,
                              const char *account);

#endif
