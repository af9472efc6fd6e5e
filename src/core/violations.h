/*
 * An ordered list of validation violations, each a (field, message) pair, as
 * Kuma's validators.ValidationError keeps them. Joined with "; " it gives the
 * exact text Kuma returns: "<field>: <message>; <field>: <message>".
 */
#ifndef MM_CORE_VIOLATIONS_H
#define MM_CORE_VIOLATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct violation {
    char *field;
    char *message;
};

struct violations {
    struct violation *items;
    size_t len;
    size_t cap;
};

void violations_init(struct violations *v);
void violations_cleanup(struct violations *v);
/* Append a copy of field and the formatted message. */
void violations_add(struct violations *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append every item of src, prefixing each field with prefix (may be NULL). */
void violations_extend(struct violations *v, const struct violations *src);
bool violations_empty(const struct violations *v);
/* "<field>: <message>; ..." (Kuma's ValidationError.Error()); caller frees. */
char *violations_join(const struct violations *v);
/* [{"field":..,"message":..},...]; new reference. */
json_t *violations_to_json(const struct violations *v);

#endif
