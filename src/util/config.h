/*
 * One table of {flag, short flag, env var, type, default, help} entries per
 * command (redis static_configs), parsed once into a caller-provided struct
 * through offsetof. Precedence: default < environment < command line.
 * --help text is generated from the same table.
 */
#ifndef MM_UTIL_CONFIG_H
#define MM_UTIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/error.h"

enum config_type {
    CONFIG_STRING, /* char * (owned by the struct, freed by config_cleanup) */
    CONFIG_INT,    /* long */
    CONFIG_BOOL,   /* bool; "--flag" alone means true */
    CONFIG_LIST,   /* struct config_list; the flag may repeat */
};

struct config_list {
    char **items;
    size_t n;
};

struct config_option {
    const char *flag;  /* long name without "--", e.g. "webhook-addr" */
    char short_flag;   /* e.g. 'f', or 0 */
    const char *env;   /* e.g. "MM_WEBHOOK_ADDR", or NULL */
    enum config_type type;
    const char *def;   /* default as text, or NULL */
    const char *help;
    size_t offset;     /* offsetof(struct ..., field) */
    long min, max;     /* CONFIG_INT bounds (inclusive) */
};

/*
 * Fill out from defaults, the environment and argv[0..argc). Non-option
 * arguments are collected in *positional (may be NULL: then they are errors).
 * Returns MM_ERR_INVALID with err naming the flag and value on bad input.
 * "--help"/"-h" sets *help (when non-NULL) and stops parsing.
 */
enum mm_status config_parse(const struct config_option *opts, size_t n, void *out, int argc,
                            char **argv, struct config_list *positional, bool *help,
                            struct mm_error *err) MM_WUR;
void config_cleanup(const struct config_option *opts, size_t n, void *out);
void config_list_cleanup(struct config_list *l);
void config_print_help(FILE *f, const char *usage, const struct config_option *opts, size_t n);
/* Markdown table rows ("| --flag | ENV | default | help |") for the README. */
void config_print_markdown(FILE *f, const struct config_option *opts, size_t n);

#endif
