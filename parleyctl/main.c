/*  main.c - parleyctl: the admin command line for Parley's own store (DynamoDB).

      parleyctl init
      parleyctl tenant set  --id ID --base-url URL --auth connect|token
                            [--client-key KEY] [--shared-secret-env VAR]
                            [--api-user EMAIL] [--api-token-env VAR]
      parleyctl tenant show ID
      parleyctl project set --tenant ID --project KEY --issue-type NAME
                            [--secret-key-env VAR] [--anonymous yes|no]
                            [--visibility always|schedule|customer_local|when_online]
                            [--schedule "Zone|days HH:MM-HH:MM,..."]
      parleyctl project show ID KEY
      parleyctl agent set   --tenant ID --account ACCOUNT --projects KEY[,KEY...]
                            [--schedule "Zone|days HH:MM-HH:MM,..."]
      parleyctl agent show  ID ACCOUNT
      parleyctl token customer --tenant ID --project KEY --email EMAIL [--name NAME]
                               [--ttl-s 3600]
      parleyctl token agent    --tenant ID --account ACCOUNT [--ttl-s 3600]

    Secrets never go on the command line (where `ps` would show them): --*-env names an
    environment variable that holds the value. `show` prints JSON with secrets as "set" or
    "unset". `token` prints a signed HS256 JWT for people trying Parley by hand (the demo page,
    the agent console): a customer's, signed with the project's secret key as the customer's
    own website would (claims email, displayName, iat, exp; at most an hour), or an agent's,
    signed with the tenant's Connect shared secret as the Jira panel would (iss = the tenant,
    sub = the account, iat, exp). Exit status: 0 done, 1 not found, no key to sign with, or
    store error, 2 bad arguments. Store settings come from the environment (see --help). */
#include "../common/dynamo.h"
#include "../common/jwt.h"
#include "../common/plog.h"
#include "../common/schedule.h"
#include "../common/secrets.h"
#include "../common/tenant_store.h"
#include "../proto/proto.h"

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_CUSTOMER_TTL_MAX_S 3600 /* the jira worker refuses customer tokens living longer */
#define S_AGENT_TTL_MAX_S 86400

typedef struct {
    char table[64];
    char secrets_key[128];
    char log_level[16];
} s_config_t;

static const config_option_t s_options[] = {
    CONFIG_STR_OPTION("PARLEY_DYNAMO_TABLE", s_config_t, table, "parley", "DynamoDB table name"),
    CONFIG_SECRET_OPTION("PARLEY_SECRETS_KEY", s_config_t, secrets_key, "",
                         "32-byte key (base64) sealing secrets at rest"),
    CONFIG_STR_OPTION("PARLEY_LOG_LEVEL", s_config_t, log_level, "warn",
                      "debug, info, warn or error"),
};

typedef struct {
    s_config_t config;
    dynamo_config_t dynamo_config;
    dynamo_t *dynamo;
    secrets_t *secrets;
    tenant_store_t *store;
} s_ctl_t;

static int s_usage(const char *why)
{
    fprintf(stderr, "parleyctl: %s (see parleyctl --help)\n", why);
    return 2;
}

static int s_store_error(const char *what, int rc, const dynamo_error_t *error)
{
    if (rc == TENANT_STORE_SEALED_BROKEN)
        fprintf(stderr,
                "parleyctl: %s: a sealed secret does not open (wrong "
                "PARLEY_SECRETS_KEY?)\n",
                what);
    else if (error->status == DYNAMO_E_NOT_FOUND)
        fprintf(stderr, "parleyctl: %s: the table does not exist; run parleyctl init\n", what);
    else
        fprintf(stderr, "parleyctl: %s: %s (%s) %s\n", what, dynamo_status_name(error->status),
                error->type, error->message);
    return 1;
}

/* Copies src into dest (size bytes) if it fits and is a valid name. */
static int s_name(char *dest, size_t size, const char *src, const char *what)
{
    if (!src || strlen(src) >= size || !proto_name_valid(src, strlen(src))) {
        fprintf(stderr, "parleyctl: %s must be 1-%zu printable characters without spaces\n", what,
                size - 1);
        return -1;
    }
    strcpy(dest, src);
    return 0;
}

/* Reads a secret from the environment variable named var (NULL: none). */
static int s_secret_from_env(const char *var, char **out, const char *what)
{
    *out = NULL;
    if (!var)
        return 0;
    const char *value = getenv(var);
    if (!value || !*value) {
        fprintf(stderr, "parleyctl: %s: environment variable %s is empty or unset\n", what, var);
        return -1;
    }
    *out = strdup(value);
    return *out ? 0 : -1;
}

/* Checks schedule text with the real parser (zone in the tz database, intervals well formed).
   Returns 0, or 2 after printing why. An empty text is no schedule and passes. */
static int s_check_schedule(const char *text)
{
    if (!*text)
        return 0;
    char why[256];
    schedule_zones_t *zones = schedule_zones_new(NULL, why, sizeof why);
    schedule_t *schedule = zones ? schedule_new(zones, text, why, sizeof why) : NULL;
    int rc = schedule ? 0 : 2;
    if (!schedule)
        fprintf(stderr, "parleyctl: --schedule: %s\n", why);
    schedule_destroy(&schedule);
    schedule_zones_destroy(&zones);
    return rc;
}

static void s_print(json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(value);
}

static int s_tenant(s_ctl_t *ctl, int argc, char **argv)
{
    dynamo_error_t error = {0};
    if (argc == 3 && strcmp(argv[1], "show") == 0) {
        tenant_t tenant;
        int rc = tenant_store_get_tenant(ctl->store, argv[2], &tenant, &error);
        if (rc == 1) {
            fprintf(stderr, "parleyctl: no tenant '%s'\n", argv[2]);
            return 1;
        }
        if (rc != 0)
            return s_store_error("tenant show", rc, &error);
        s_print(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "id", tenant.id,
                          "base_url", tenant.base_url, "auth", tenant.auth, "client_key",
                          tenant.client_key, "api_user", tenant.api_user, "shared_secret",
                          tenant.shared_secret ? "set" : "unset", "api_token",
                          tenant.api_token ? "set" : "unset", "installed_at_ms",
                          (json_int_t)tenant.installed_at_ms, "uninstalled_at_ms",
                          (json_int_t)tenant.uninstalled_at_ms));
        tenant_clear(&tenant);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "set") != 0)
        return s_usage("tenant set|show");
    static struct option options[] = {{"id", required_argument, 0, 'i'},
                                      {"base-url", required_argument, 0, 'u'},
                                      {"auth", required_argument, 0, 'a'},
                                      {"client-key", required_argument, 0, 'k'},
                                      {"shared-secret-env", required_argument, 0, 's'},
                                      {"api-user", required_argument, 0, 'U'},
                                      {"api-token-env", required_argument, 0, 't'},
                                      {0, 0, 0, 0}};
    const char *id = NULL, *base_url = NULL, *auth = NULL, *client_key = "", *secret_env = NULL,
               *api_user = "", *token_env = NULL;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'i':
            id = optarg;
            break;
        case 'u':
            base_url = optarg;
            break;
        case 'a':
            auth = optarg;
            break;
        case 'k':
            client_key = optarg;
            break;
        case 's':
            secret_env = optarg;
            break;
        case 'U':
            api_user = optarg;
            break;
        case 't':
            token_env = optarg;
            break;
        default:
            return s_usage("unknown option for tenant set");
        }
    }
    tenant_t tenant = {0};
    if (s_name(tenant.id, sizeof tenant.id, id, "--id") != 0)
        return 2;
    if (!base_url || strncmp(base_url, "https://", 8) != 0 || strlen(base_url) > TENANT_URL_MAX) {
        if (!(base_url && strncmp(base_url, "http://127.0.0.1", 16) == 0))
            return s_usage("--base-url must be an https:// URL (http://127.0.0.1 for tests)");
    }
    if (!auth || (strcmp(auth, "connect") != 0 && strcmp(auth, "token") != 0))
        return s_usage("--auth must be connect or token");
    snprintf(tenant.base_url, sizeof tenant.base_url, "%s", base_url);
    snprintf(tenant.auth, sizeof tenant.auth, "%s", auth);
    snprintf(tenant.client_key, sizeof tenant.client_key, "%s", client_key);
    snprintf(tenant.api_user, sizeof tenant.api_user, "%s", api_user);
    tenant.installed_at_ms = zclock_time();
    if (s_secret_from_env(secret_env, &tenant.shared_secret, "--shared-secret-env") ||
        s_secret_from_env(token_env, &tenant.api_token, "--api-token-env")) {
        tenant_clear(&tenant);
        return 2;
    }
    if (strcmp(auth, "token") == 0 && (!*tenant.api_user || !tenant.api_token)) {
        tenant_clear(&tenant);
        return s_usage("--auth token needs --api-user and --api-token-env");
    }
    if (strcmp(auth, "connect") == 0 && !tenant.shared_secret) {
        tenant_clear(&tenant);
        return s_usage("--auth connect needs --shared-secret-env");
    }
    int rc = tenant_store_put_tenant(ctl->store, &tenant, &error);
    tenant_clear(&tenant);
    return rc == 0 ? 0 : s_store_error("tenant set", rc, &error);
}

static int s_project(s_ctl_t *ctl, int argc, char **argv)
{
    dynamo_error_t error = {0};
    if (argc == 4 && strcmp(argv[1], "show") == 0) {
        tenant_project_t project;
        int rc = tenant_store_get_project(ctl->store, argv[2], argv[3], &project, &error);
        if (rc == 1) {
            fprintf(stderr, "parleyctl: no project '%s' in tenant '%s'\n", argv[3], argv[2]);
            return 1;
        }
        if (rc != 0)
            return s_store_error("project show", rc, &error);
        s_print(json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "tenant", project.tenant,
                          "project", project.project, "issue_type", project.issue_type,
                          "allow_anonymous", project.allow_anonymous, "visibility",
                          project.visibility, "visibility_schedule", project.visibility_schedule,
                          "secret_key", project.secret_key ? "set" : "unset"));
        tenant_project_clear(&project);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "set") != 0)
        return s_usage("project set|show");
    static struct option options[] = {
        {"tenant", required_argument, 0, 't'},     {"project", required_argument, 0, 'p'},
        {"issue-type", required_argument, 0, 'i'}, {"secret-key-env", required_argument, 0, 's'},
        {"anonymous", required_argument, 0, 'a'},  {"visibility", required_argument, 0, 'v'},
        {"schedule", required_argument, 0, 'S'},   {0, 0, 0, 0}};
    const char *tenant = NULL, *key = NULL, *issue_type = NULL, *secret_env = NULL,
               *anonymous = "no", *visibility = "always", *schedule = "";
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 't':
            tenant = optarg;
            break;
        case 'p':
            key = optarg;
            break;
        case 'i':
            issue_type = optarg;
            break;
        case 's':
            secret_env = optarg;
            break;
        case 'a':
            anonymous = optarg;
            break;
        case 'v':
            visibility = optarg;
            break;
        case 'S':
            schedule = optarg;
            break;
        default:
            return s_usage("unknown option for project set");
        }
    }
    tenant_project_t project = {0};
    if (s_name(project.tenant, sizeof project.tenant, tenant, "--tenant") ||
        s_name(project.project, sizeof project.project, key, "--project") ||
        s_name(project.issue_type, sizeof project.issue_type, issue_type, "--issue-type"))
        return 2;
    if (strcmp(anonymous, "yes") != 0 && strcmp(anonymous, "no") != 0)
        return s_usage("--anonymous must be yes or no");
    if (!tenant_visibility_valid(visibility))
        return s_usage("--visibility must be always, schedule, customer_local or when_online");
    if ((strcmp(visibility, "schedule") == 0 || strcmp(visibility, "customer_local") == 0) &&
        !*schedule)
        return s_usage("this --visibility needs --schedule");
    if (strlen(schedule) > TENANT_SCHEDULE_MAX)
        return s_usage("--schedule is too long");
    if (s_check_schedule(schedule) != 0)
        return 2;
    project.allow_anonymous = strcmp(anonymous, "yes") == 0;
    snprintf(project.visibility, sizeof project.visibility, "%s", visibility);
    snprintf(project.visibility_schedule, sizeof project.visibility_schedule, "%s", schedule);
    if (s_secret_from_env(secret_env, &project.secret_key, "--secret-key-env"))
        return 2;
    int rc = tenant_store_put_project(ctl->store, &project, &error);
    tenant_project_clear(&project);
    return rc == 0 ? 0 : s_store_error("project set", rc, &error);
}

static int s_agent(s_ctl_t *ctl, int argc, char **argv)
{
    dynamo_error_t error = {0};
    if (argc == 4 && strcmp(argv[1], "show") == 0) {
        tenant_agent_t agent;
        int rc = tenant_store_get_agent(ctl->store, argv[2], argv[3], &agent, &error);
        if (rc == 1) {
            fprintf(stderr, "parleyctl: no agent '%s' in tenant '%s'\n", argv[3], argv[2]);
            return 1;
        }
        if (rc != 0)
            return s_store_error("agent show", rc, &error);
        json_t *projects = json_array();
        for (uint32_t i = 0; i < agent.project_count; i++)
            json_array_append_new(projects, json_string(agent.projects[i]));
        s_print(json_pack("{s:s, s:s, s:o, s:s}", "tenant", agent.tenant, "account", agent.account,
                          "projects", projects, "schedule", agent.schedule));
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "set") != 0)
        return s_usage("agent set|show");
    static struct option options[] = {{"tenant", required_argument, 0, 't'},
                                      {"account", required_argument, 0, 'a'},
                                      {"projects", required_argument, 0, 'p'},
                                      {"schedule", required_argument, 0, 'S'},
                                      {0, 0, 0, 0}};
    const char *tenant = NULL, *account = NULL, *projects = NULL, *schedule = "";
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 't':
            tenant = optarg;
            break;
        case 'a':
            account = optarg;
            break;
        case 'p':
            projects = optarg;
            break;
        case 'S':
            schedule = optarg;
            break;
        default:
            return s_usage("unknown option for agent set");
        }
    }
    tenant_agent_t agent = {0};
    if (s_name(agent.tenant, sizeof agent.tenant, tenant, "--tenant") ||
        s_name(agent.account, sizeof agent.account, account, "--account"))
        return 2;
    if (!projects || !*projects)
        return s_usage("--projects needs at least one project key");
    char list[TENANT_PROJECTS_MAX * (TENANT_NAME_MAX + 2)];
    snprintf(list, sizeof list, "%s", projects);
    char *save = NULL;
    for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (agent.project_count == TENANT_PROJECTS_MAX)
            return s_usage("--projects lists too many projects");
        if (s_name(agent.projects[agent.project_count++], TENANT_NAME_MAX + 1, p, "a project"))
            return 2;
    }
    if (strlen(schedule) > TENANT_SCHEDULE_MAX)
        return s_usage("--schedule is too long");
    if (s_check_schedule(schedule) != 0)
        return 2;
    snprintf(agent.schedule, sizeof agent.schedule, "%s", schedule);
    int rc = tenant_store_put_agent(ctl->store, &agent, &error);
    return rc == 0 ? 0 : s_store_error("agent set", rc, &error);
}

/* Prints a token signing claims (taken) with key. Returns 0, or 1 when signing fails. */
static int s_print_token(json_t *claims, const char *key)
{
    char *token = claims ? jwt_sign_hs256(claims, (const uint8_t *)key, strlen(key)) : NULL;
    json_decref(claims);
    if (!token) {
        fprintf(stderr, "parleyctl: token: could not sign (out of memory?)\n");
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

/* True when email looks like an address: something@something, printable, no spaces. */
static bool s_email_ok(const char *email)
{
    const char *at = email ? strchr(email, '@') : NULL;
    if (!at || at == email || !at[1] || strchr(at + 1, '@') || strlen(email) > 254)
        return false;
    for (const char *c = email; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return false;
    return true;
}

/* parleyctl token customer|agent: see the top of this file. */
static int s_token(s_ctl_t *ctl, int argc, char **argv)
{
    bool customer = argc >= 2 && strcmp(argv[1], "customer") == 0;
    bool agent = argc >= 2 && strcmp(argv[1], "agent") == 0;
    if (!customer && !agent)
        return s_usage("token customer|agent");
    static struct option options[] = {{"tenant", required_argument, 0, 't'},
                                      {"project", required_argument, 0, 'p'},
                                      {"email", required_argument, 0, 'e'},
                                      {"name", required_argument, 0, 'n'},
                                      {"account", required_argument, 0, 'a'},
                                      {"ttl-s", required_argument, 0, 'T'},
                                      {0, 0, 0, 0}};
    const char *tenant_id = NULL, *key = NULL, *email = NULL, *name = NULL, *account = NULL,
               *ttl_text = "3600";
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 't':
            tenant_id = optarg;
            break;
        case 'p':
            key = optarg;
            break;
        case 'e':
            email = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'a':
            account = optarg;
            break;
        case 'T':
            ttl_text = optarg;
            break;
        default:
            return s_usage("unknown option for token");
        }
    }
    if (optind < argc)
        return s_usage("token takes options only");
    char tenant_name[TENANT_NAME_MAX + 1], key_name[TENANT_NAME_MAX + 1],
        account_name[PROTO_NAME_MAX + 1];
    if (s_name(tenant_name, sizeof tenant_name, tenant_id, "--tenant") != 0)
        return 2;
    char *rest = NULL;
    long long max_ttl = customer ? S_CUSTOMER_TTL_MAX_S : S_AGENT_TTL_MAX_S;
    long long ttl_s = strtoll(ttl_text, &rest, 10);
    if (!*ttl_text || *rest || ttl_s < 1 || ttl_s > max_ttl) {
        fprintf(stderr, "parleyctl: --ttl-s must be 1-%lld seconds for %s tokens\n", max_ttl,
                customer ? "customer" : "agent");
        return 2;
    }
    json_int_t now = (json_int_t)time(NULL);
    dynamo_error_t error = {0};
    if (customer) {
        if (account)
            return s_usage("--account is for agent tokens");
        if (s_name(key_name, sizeof key_name, key, "--project") != 0)
            return 2;
        if (!s_email_ok(email))
            return s_usage("--email must be an e-mail address");
        if (name && (!*name || strlen(name) > 255))
            return s_usage("--name must be 1-255 bytes");
        tenant_project_t project;
        int rc = tenant_store_get_project(ctl->store, tenant_name, key_name, &project, &error);
        if (rc == 1) {
            fprintf(stderr, "parleyctl: no project '%s' in tenant '%s'\n", key_name, tenant_name);
            return 1;
        }
        if (rc != 0)
            return s_store_error("token customer", rc, &error);
        if (!project.secret_key) {
            fprintf(stderr,
                    "parleyctl: project '%s' of tenant '%s' has no secret key to sign customer "
                    "tokens with (parleyctl project set ... --secret-key-env VAR)\n",
                    key_name, tenant_name);
            tenant_project_clear(&project);
            return 1;
        }
        json_t *claims = json_pack("{s:s}", "email", email);
        if (claims && name)
            json_object_set_new(claims, "displayName", json_string(name));
        if (claims) {
            json_object_set_new(claims, "iat", json_integer(now));
            json_object_set_new(claims, "exp", json_integer(now + ttl_s));
        }
        rc = s_print_token(claims, project.secret_key);
        tenant_project_clear(&project);
        return rc;
    }
    if (key || email || name)
        return s_usage("--project, --email and --name are for customer tokens");
    if (s_name(account_name, sizeof account_name, account, "--account") != 0)
        return 2;
    tenant_t tenant;
    int rc = tenant_store_get_tenant(ctl->store, tenant_name, &tenant, &error);
    if (rc == 1) {
        fprintf(stderr, "parleyctl: no tenant '%s'\n", tenant_name);
        return 1;
    }
    if (rc != 0)
        return s_store_error("token agent", rc, &error);
    const char *problem =
        tenant.uninstalled_at_ms ? "uninstalled Parley"
        : strcmp(tenant.auth, "connect") != 0
            ? "is not an Atlassian Connect installation (it uses an API token), and agent "
              "tokens are signed with a Connect shared secret"
        : !tenant.shared_secret ? "has no Connect shared secret"
                                : NULL;
    if (problem) {
        fprintf(stderr, "parleyctl: tenant '%s' %s\n", tenant_name, problem);
        tenant_clear(&tenant);
        return 1;
    }
    tenant_agent_t agent_config;
    rc = tenant_store_get_agent(ctl->store, tenant_name, account_name, &agent_config, &error);
    if (rc != 0) {
        tenant_clear(&tenant);
        if (rc != 1)
            return s_store_error("token agent", rc, &error);
        fprintf(stderr,
                "parleyctl: no agent '%s' in tenant '%s' (parleyctl agent set ...); the "
                "gateway would refuse the token\n",
                account_name, tenant_name);
        return 1;
    }
    rc = s_print_token(json_pack("{s:s, s:s, s:I, s:I}", "iss", tenant_name, "sub", account_name,
                                 "iat", now, "exp", now + ttl_s),
                       tenant.shared_secret);
    tenant_clear(&tenant);
    return rc;
}

int main(int argc, char **argv)
{
    s_ctl_t ctl = {0};
    config_table_t tables[] = {
        {"parleyctl", s_options, sizeof s_options / sizeof s_options[0], &ctl.config},
        {"DynamoDB", dynamo_config_options, dynamo_config_option_count, &ctl.dynamo_config},
    };
    bool help = argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
    char *no_args[] = {argv[0], help ? "--help" : NULL};
    int rc = config_load(tables, 2, help ? 2 : 1, no_args,
                         "parleyctl init | tenant set|show | project set|show | agent set|show | "
                         "token customer|agent\n"
                         "(the options of each command are at the top of parleyctl/main.c and "
                         "in the README)");
    if (rc != 0)
        return rc > 0 ? (argc < 2 ? 2 : 0) : 2;
    plog_level_t level = PLOG_WARN;
    plog_level_parse(ctl.config.log_level, &level);
    plog_init("parleyctl", level);
    char why[200];
    ctl.secrets = secrets_new(ctl.config.secrets_key, why, sizeof why);
    if (!ctl.secrets) {
        fprintf(stderr, "parleyctl: %s\n", why);
        return 2;
    }
    ctl.dynamo = dynamo_new(&ctl.dynamo_config);
    ctl.store =
        ctl.dynamo ? tenant_store_new(ctl.dynamo, ctl.secrets, ctl.config.table, NULL, 0) : NULL;
    if (!ctl.store)
        rc = 1;
    else if (strcmp(argv[1], "init") == 0) {
        dynamo_error_t error = {0};
        int status = dynamo_ensure_table(ctl.dynamo, ctl.config.table, "expires_at", &error);
        rc = status == 0 ? 0 : s_store_error("init", status, &error);
    } else if (strcmp(argv[1], "tenant") == 0)
        rc = s_tenant(&ctl, argc - 1, argv + 1);
    else if (strcmp(argv[1], "project") == 0)
        rc = s_project(&ctl, argc - 1, argv + 1);
    else if (strcmp(argv[1], "agent") == 0)
        rc = s_agent(&ctl, argc - 1, argv + 1);
    else if (strcmp(argv[1], "token") == 0)
        rc = s_token(&ctl, argc - 1, argv + 1);
    else
        rc = s_usage("unknown command");
    tenant_store_destroy(&ctl.store);
    dynamo_destroy(&ctl.dynamo);
    secrets_destroy(&ctl.secrets);
    return rc;
}
