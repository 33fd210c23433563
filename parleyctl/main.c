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

    Secrets never go on the command line (where `ps` would show them): --*-env names an
    environment variable that holds the value. `show` prints JSON with secrets as "set" or
    "unset". Exit status: 0 done, 1 not found or store error, 2 bad arguments. Store settings
    come from the environment (see --help). */
#include "../common/dynamo.h"
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
                         "parleyctl init | tenant set|show | project set|show | agent set|show\n"
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
    else
        rc = s_usage("unknown command");
    tenant_store_destroy(&ctl.store);
    dynamo_destroy(&ctl.dynamo);
    secrets_destroy(&ctl.secrets);
    return rc;
}
