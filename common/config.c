/*  config.c - loading option tables from the environment; see config.h. */
#include "config.h"
#include "plog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses text into the option's field. Returns 0, or -1 after printing why. */
static int s_set(const config_option_t *opt, void *config, const char *text, const char *source)
{
    char *field = (char *)config + opt->offset;
    if (opt->type == CONFIG_STR) {
        if (strlen(text) >= opt->size) {
            fprintf(stderr, "%s: %s is longer than %zu characters\n", source, opt->env,
                    opt->size - 1);
            return -1;
        }
        strcpy(field, text);
        return 0;
    }
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0') {
        fprintf(stderr, "%s: %s must be an integer, got '%s'\n", source, opt->env, text);
        return -1;
    }
    if (value < opt->min || value > opt->max) {
        fprintf(stderr, "%s: %s must be between %" PRId64 " and %" PRId64 ", got %lld\n", source,
                opt->env, opt->min, opt->max, value);
        return -1;
    }
    *(int64_t *)field = value;
    return 0;
}

static void s_print_help(const config_table_t *tables, size_t count, const char *summary)
{
    printf("%s\n\nConfiguration (environment variables):\n", summary);
    for (size_t t = 0; t < count; t++) {
        printf("\n  %s\n", tables[t].title);
        for (size_t i = 0; i < tables[t].count; i++) {
            const config_option_t *opt = &tables[t].options[i];
            printf("    %-34s %s\n", opt->env, opt->help);
            if (opt->type == CONFIG_INT)
                printf("    %-34s default %s, range %" PRId64 "..%" PRId64 "\n", "",
                       opt->default_value, opt->min, opt->max);
            else if (!opt->secret && *opt->default_value)
                printf("    %-34s default %s\n", "", opt->default_value);
        }
    }
}

int config_load(const config_table_t *tables, size_t count, int argc, char **argv,
                const char *summary)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_print_help(tables, count, summary);
            return 1;
        }
        fprintf(stderr, "unknown argument '%s'; configuration comes from the environment, "
                        "see --help\n", argv[i]);
        return -1;
    }
    for (size_t t = 0; t < count; t++)
        for (size_t i = 0; i < tables[t].count; i++) {
            const config_option_t *opt = &tables[t].options[i];
            if (s_set(opt, tables[t].config, opt->default_value, "default"))
                return -1;
            const char *value = getenv(opt->env);
            if (value && s_set(opt, tables[t].config, value, "environment"))
                return -1;
        }
    return 0;
}

void config_log(const config_table_t *tables, size_t count)
{
    for (size_t t = 0; t < count; t++) {
        char line[1800];
        size_t used = 0;
        line[0] = '\0';
        for (size_t i = 0; i < tables[t].count && used < sizeof line; i++) {
            const config_option_t *opt = &tables[t].options[i];
            const char *field = (const char *)tables[t].config + opt->offset;
            char value[160];
            if (opt->type == CONFIG_INT)
                snprintf(value, sizeof value, "%" PRId64, *(const int64_t *)field);
            else if (opt->secret)
                snprintf(value, sizeof value, "%s", *field ? "****" : "");
            else
                plog_quote(value, sizeof value, field);
            int n = snprintf(line + used, sizeof line - used, "%s%s=%s", used ? " " : "",
                             opt->env, value);
            if (n > 0)
                used += (size_t)n;
        }
        plog_info("config", "%s", line);
    }
}
