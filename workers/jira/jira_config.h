/*  jira_config.h - the jira worker's configuration: its own options plus the worker runtime's,
    Redis's and DynamoDB's tables. */
#ifndef JIRA_CONFIG_H
#define JIRA_CONFIG_H

#include "../../common/dynamo.h"
#include "../../common/redis_client.h"
#include "../../common/worker.h"
#include "jira_client.h"

typedef struct {
    worker_config_t worker;
    redis_client_config_t redis;
    dynamo_config_t dynamo;
    jira_client_config_t client;
    char table[64];
    char secrets_key[128];
    char app_key[64];            /* Atlassian Connect app key (JWT iss) */
    char app_base_url[256];      /* the gateway's public URL: the aud and qsh base of JWTs */
    char install_keys_url[256];  /* where Connect's lifecycle signing keys are served */
    int64_t allow_http;          /* 1: tenants may use http:// base URLs (local sandbox) */
    int64_t config_cache_ttl_s;
    int64_t visitors_per_min;    /* new anonymous visitors per tenant per minute (a bucket) */
} jira_config_t;

extern const config_option_t jira_config_options[];
extern const size_t jira_config_option_count;
extern const config_option_t jira_client_config_options[];
extern const size_t jira_client_config_option_count;

#endif
