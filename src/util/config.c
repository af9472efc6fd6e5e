#include "util/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static void *field(void *out, const struct config_option *o)
{
    return (char *)out + o->offset;
}

static enum mm_status set_value(const struct config_option *o, void *out, const char *v,
                                const char *source, struct mm_error *err)
{
    switch (o->type) {
    case CONFIG_STRING: {
        char **p = field(out, o);
        free(*p);
        *p = v ? xstrdup(v) : NULL;
        return MM_OK;
    }
    case CONFIG_INT: {
        char *end = NULL;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end || x < o->min || x > o->max)
            return mm_error_set(err, MM_ERR_INVALID, o->flag,
                                "invalid value \"%s\" from %s: want an integer in [%ld, %ld]", v,
                                source, o->min, o->max);
        *(long *)field(out, o) = x;
        return MM_OK;
    }
    case CONFIG_BOOL: {
        bool b;
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
            b = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
            b = false;
        else
            return mm_error_set(err, MM_ERR_INVALID, o->flag,
                                "invalid value \"%s\" from %s: want true or false", v, source);
        *(bool *)field(out, o) = b;
        return MM_OK;
    }
    case CONFIG_LIST: {
        struct config_list *l = field(out, o);
        l->items = xrealloc(l->items, (l->n + 1) * sizeof *l->items);
        l->items[l->n++] = xstrdup(v);
        return MM_OK;
    }
    }
    return MM_ERR_INTERNAL;
}

static const struct config_option *find_long(const struct config_option *opts, size_t n,
                                             const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].flag) == len && !strncmp(opts[i].flag, name, len))
            return &opts[i];
    return NULL;
}

static const struct config_option *find_short(const struct config_option *opts, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (opts[i].short_flag && opts[i].short_flag == c)
            return &opts[i];
    return NULL;
}

enum mm_status config_parse(const struct config_option *opts, size_t n, void *out, int argc,
                            char **argv, struct config_list *positional, bool *help,
                            struct mm_error *err)
{
    enum mm_status st;
    if (help)
        *help = false;
    for (size_t i = 0; i < n; i++) {
        if (opts[i].def && (st = set_value(&opts[i], out, opts[i].def, "the default", err)))
            return st;
        const char *env = opts[i].env ? getenv(opts[i].env) : NULL;
        if (env && opts[i].type == CONFIG_LIST) {
            /* a comma-separated list from the environment */
            char *copy = xstrdup(env), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                if ((st = set_value(&opts[i], out, tok, opts[i].env, err))) {
                    free(copy);
                    return st;
                }
            free(copy);
        } else if (env && (st = set_value(&opts[i], out, env, opts[i].env, err))) {
            return st;
        }
    }
    bool list_overridden[64] = {false};
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        const struct config_option *o = NULL;
        const char *value = NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            if (help)
                *help = true;
            return MM_OK;
        }
        if (!strcmp(arg, "--")) {
            for (a++; a < argc; a++)
                if (positional)
                    (void)set_value(&(struct config_option){.type = CONFIG_LIST}, positional,
                                    argv[a], "argv", err);
            break;
        }
        if (arg[0] == '-' && arg[1] == '-') {
            const char *eq = strchr(arg + 2, '=');
            size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            o = find_long(opts, n, arg + 2, len);
            if (!o)
                return mm_error_set(err, MM_ERR_INVALID, NULL, "unknown flag \"%.*s\"",
                                    (int)len + 2, arg);
            value = eq ? eq + 1 : NULL;
        } else if (arg[0] == '-' && arg[1] && arg[1] != '-') {
            o = find_short(opts, n, arg[1]);
            if (!o)
                return mm_error_set(err, MM_ERR_INVALID, NULL, "unknown flag \"-%c\"", arg[1]);
            value = arg[2] ? arg + 2 : NULL;
        } else {
            if (!positional)
                return mm_error_set(err, MM_ERR_INVALID, NULL, "unexpected argument \"%s\"", arg);
            (void)set_value(&(struct config_option){.type = CONFIG_LIST}, positional, arg, "argv",
                            err);
            continue;
        }
        if (!value) {
            if (o->type == CONFIG_BOOL)
                value = "true";
            else if (a + 1 < argc)
                value = argv[++a];
            else
                return mm_error_set(err, MM_ERR_INVALID, o->flag, "flag --%s needs a value",
                                    o->flag);
        }
        size_t idx = (size_t)(o - opts);
        if (o->type == CONFIG_LIST && idx < 64 && !list_overridden[idx]) {
            /* the command line replaces defaults/environment for lists */
            config_list_cleanup(field(out, o));
            list_overridden[idx] = true;
        }
        if ((st = set_value(o, out, value, "the command line", err)))
            return st;
    }
    return MM_OK;
}

void config_list_cleanup(struct config_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void config_cleanup(const struct config_option *opts, size_t n, void *out)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == CONFIG_STRING) {
            char **p = field(out, &opts[i]);
            free(*p);
            *p = NULL;
        } else if (opts[i].type == CONFIG_LIST) {
            config_list_cleanup(field(out, &opts[i]));
        }
    }
}

void config_print_help(FILE *f, const char *usage, const struct config_option *opts, size_t n)
{
    fprintf(f, "%s\n\nOptions:\n", usage);
    for (size_t i = 0; i < n; i++) {
        char name[96];
        if (opts[i].short_flag)
            snprintf(name, sizeof name, "-%c, --%s", opts[i].short_flag, opts[i].flag);
        else
            snprintf(name, sizeof name, "    --%s", opts[i].flag);
        fprintf(f, "  %-28s %s", name, opts[i].help);
        if (opts[i].def && *opts[i].def)
            fprintf(f, " (default %s)", opts[i].def);
        if (opts[i].env)
            fprintf(f, " [$%s]", opts[i].env);
        fputc('\n', f);
    }
    fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
}

void config_print_markdown(FILE *f, const struct config_option *opts, size_t n)
{
    fputs("| flag | environment | default | meaning |\n|---|---|---|---|\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "| `--%s` | %s%s%s | %s%s%s | %s |\n", opts[i].flag, opts[i].env ? "`" : "",
                opts[i].env ? opts[i].env : "", opts[i].env ? "`" : "",
                opts[i].def && *opts[i].def ? "`" : "", opts[i].def ? opts[i].def : "",
                opts[i].def && *opts[i].def ? "`" : "", opts[i].help);
}
