/*  config.h - configuration from environment variables, declared once per process in a table.

    Each process describes its options in one or more tables (name, type, default, bounds, help,
    where in its config struct the value goes), calls config_load() once in main, and from then
    on reads only its struct. `--help` prints every table; config_log() writes the values in
    force at start (secrets masked). Values are read from the environment, twelve-factor style;
    there are no other sources. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CONFIG_INT, CONFIG_STR } config_type_t;

typedef struct {
    const char *env;           /* environment variable, e.g. "PARLEY_HEARTBEAT_MS" */
    config_type_t type;        /* CONFIG_INT fields are int64_t; CONFIG_STR fields char[size] */
    size_t offset;             /* offsetof the field in the config struct */
    size_t size;               /* sizeof the field */
    const char *default_value; /* as text; "" for an empty string */
    int64_t min, max;          /* bounds for CONFIG_INT; ignored for CONFIG_STR */
    int secret;                /* masked by config_log and --help */
    const char *help;          /* one line; say the unit */
} config_option_t;

typedef struct {
    const char *title;               /* heading in --help, e.g. "Broker" */
    const config_option_t *options;  /* borrowed */
    size_t count;
    void *config;                    /* the struct the options write into (borrowed) */
} config_table_t;

#define CONFIG_INT_OPTION(env, type, field, def, min, max, help)                                 \
    {env, CONFIG_INT, offsetof(type, field), sizeof(((type *)0)->field), def, min, max, 0, help}
#define CONFIG_STR_OPTION(env, type, field, def, help)                                           \
    {env, CONFIG_STR, offsetof(type, field), sizeof(((type *)0)->field), def, 0, 0, 0, help}
#define CONFIG_SECRET_OPTION(env, type, field, def, help)                                        \
    {env, CONFIG_STR, offsetof(type, field), sizeof(((type *)0)->field), def, 0, 0, 1, help}

/* Fills every table's struct from defaults and the environment. argv may only hold --help.
   Returns 0 when the configuration is valid; 1 when --help was printed (exit 0); -1 when a
   value is invalid or an argument unknown, after printing why to stderr (exit 2). */
int config_load(const config_table_t *tables, size_t count, int argc, char **argv,
                const char *summary);

/* Logs every option's value in force, one line per table, secrets masked. */
void config_log(const config_table_t *tables, size_t count);

#endif
