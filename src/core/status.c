/* Pod sync states and MeshMetric conditions (see status.h). */
#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

enum pod_sync status_pod_sync(const struct pod_sync_input *in)
{
    bool recorded = in->recorded_hash && *in->recorded_hash;
    if (in->want_empty) {
        /* Nothing to apply: in sync unless a config is still recorded (a policy went away). */
        if (recorded && (!in->want_hash || strcmp(in->recorded_hash, in->want_hash)))
            return POD_SYNC_OUTDATED;
    } else {
        if (!recorded)
            return POD_SYNC_NOT_APPLIED;
        if (!in->want_hash || strcmp(in->recorded_hash, in->want_hash))
            return POD_SYNC_OUTDATED;
    }
    return in->drift && *in->drift ? POD_SYNC_DATAPLANE_DRIFT : POD_SYNC_IN_SYNC;
}

const char *status_pod_reason(enum pod_sync s)
{
    switch (s) {
    case POD_SYNC_IN_SYNC:
        return "MetricsConfigApplied";
    case POD_SYNC_NOT_APPLIED:
        return "MetricsConfigNotApplied";
    case POD_SYNC_OUTDATED:
        return "MetricsConfigOutdated";
    case POD_SYNC_DATAPLANE_DRIFT:
        return "DataplaneDiffers";
    }
    return "MetricsConfigUnknown";
}

const char *status_pod_phrase(enum pod_sync s)
{
    switch (s) {
    case POD_SYNC_IN_SYNC:
        return "in sync";
    case POD_SYNC_NOT_APPLIED:
        return "created while the webhook was down";
    case POD_SYNC_OUTDATED:
        return "config changed";
    case POD_SYNC_DATAPLANE_DRIFT:
        return "Kuma's Dataplane differs";
    }
    return "unknown";
}

const char *status_figures_reason(const struct status_figures *f, char *buf, size_t len)
{
    snprintf(buf, len, "InSync:%zu,OutOfSync:%zu", f->in_sync, f->out_of_sync);
    return buf;
}

static int cmp_members(const void *a, const void *b)
{
    return strcmp(((const struct status_member *)a)->name, ((const struct status_member *)b)->name);
}

/* s cut to at most max bytes without splitting a UTF-8 sequence. New string. */
static json_t *bounded_string(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return json_string(s);
    while (n > 0 && (n > max || ((unsigned char)s[n] & 0xC0) == 0x80))
        n--;
    json_t *out = json_stringn(s, n);
    return out ? out : json_string("");
}

static json_t *condition(const char *type, const char *status, const char *reason,
                         const char *message)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "type", type, "status", status, "reason", reason,
                     "message", bounded_string(message, STATUS_MESSAGE_MAX));
}

json_t *status_conditions(const char *errors, const struct status_member *members, size_t n,
                          struct status_figures *figures)
{
    json_t *out = json_array();
    struct status_figures f = {n, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (members[i].sync == POD_SYNC_IN_SYNC)
            f.in_sync++;
        else
            f.out_of_sync++;
    }
    if (figures)
        *figures = f;
    if (errors) {
        char *msg = xasprintf("Kuma would reject this policy, so it is not applied: %s", errors);
        json_array_append_new(out, condition(STATUS_COND_VALID, "False", "Invalid", msg));
        free(msg);
        json_array_append_new(out, condition(STATUS_COND_IN_SYNC, "Unknown", "PolicyInvalid",
                                             "the policy is invalid and applies to no dataplane"));
        return out;
    }
    json_array_append_new(
        out, condition(STATUS_COND_VALID, "True", "Valid", "the policy passes Kuma's validation"));

    char reason[64];
    status_figures_reason(&f, reason, sizeof reason);
    struct strbuf msg;
    strbuf_init(&msg, STATUS_MESSAGE_MAX);
    bool fits;
    if (n == 0)
        fits = strbuf_puts(&msg, "no dataplane is selected by this policy");
    else
        fits = strbuf_printf(&msg, "%zu of %zu dataplane%s run%s this config", f.in_sync, n,
                             n == 1 ? "" : "s", n == 1 ? "s" : "");
    if (f.out_of_sync) {
        struct status_member *sorted = xmalloc(n * sizeof *sorted);
        memcpy(sorted, members, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_members);
        size_t listed = 0;
        fits = fits && strbuf_puts(&msg, "; out of sync: ");
        for (size_t i = 0; i < n && fits; i++) {
            if (sorted[i].sync == POD_SYNC_IN_SYNC)
                continue;
            /* Keep room for the ", …and N more" tail. */
            size_t mark = msg.len;
            fits = strbuf_printf(&msg, "%s%s (%s)", listed ? ", " : "", sorted[i].name,
                                 status_pod_phrase(sorted[i].sync)) &&
                   msg.len + 32 <= STATUS_MESSAGE_MAX;
            if (fits) {
                listed++;
            } else {
                msg.len = mark;
                msg.data[mark] = '\0';
            }
        }
        if (listed < f.out_of_sync)
            (void)!strbuf_printf(&msg, "%s…and %zu more", listed ? ", " : "",
                                 f.out_of_sync - listed);
        free(sorted);
    }
    json_array_append_new(out, condition(STATUS_COND_IN_SYNC, f.out_of_sync ? "False" : "True",
                                         reason, strbuf_str(&msg)));
    strbuf_cleanup(&msg);
    return out;
}

static const json_t *find_type(const json_t *conds, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && !strcmp(t, type))
            return c;
    }
    return NULL;
}

static bool same_str(const json_t *a, const json_t *b, const char *key)
{
    const char *x = json_string_value(json_object_get(a, key));
    const char *y = json_string_value(json_object_get(b, key));
    return x && y && !strcmp(x, y);
}

json_t *status_merge_conditions(const json_t *current, const json_t *wanted, bool timestamps,
                                const char *now_rfc3339, long long generation, bool *changed)
{
    json_t *out = json_array();
    bool diff = false;
    size_t i;
    json_t *c;
    /* Every condition we find, in place; ours replaced by the wanted ones. */
    json_array_foreach(json_is_array(current) ? current : NULL, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const json_t *w = type ? find_type(wanted, type) : NULL;
        if (!w) {
            json_array_append(out, c); /* another writer's: kept as is */
            continue;
        }
        if (find_type(out, type)) { /* a duplicate of ours: dropped (conditions are a map) */
            diff = true;
            continue;
        }
        json_t *next = json_deep_copy(w);
        bool status_same = same_str(c, w, "status");
        if (!status_same || !same_str(c, w, "reason") || !same_str(c, w, "message"))
            diff = true;
        if (timestamps) {
            const json_t *ltt = json_object_get(c, "lastTransitionTime");
            if (status_same && json_is_string(ltt))
                json_object_set(next, "lastTransitionTime", (json_t *)ltt);
            else
                json_object_set_new(next, "lastTransitionTime", json_string(now_rfc3339));
            if (!json_is_string(ltt))
                diff = true;
            if (generation >= 0) {
                const json_t *og = json_object_get(c, "observedGeneration");
                if (!json_is_integer(og) || json_integer_value(og) != generation)
                    diff = true;
                json_object_set_new(next, "observedGeneration", json_integer(generation));
            }
        }
        json_array_append_new(out, next);
    }
    /* The wanted ones that were not there yet, in their order. */
    json_array_foreach(wanted, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        if (json_is_array(current) && type && find_type(current, type))
            continue;
        json_t *next = json_deep_copy(c);
        if (timestamps) {
            json_object_set_new(next, "lastTransitionTime", json_string(now_rfc3339));
            if (generation >= 0)
                json_object_set_new(next, "observedGeneration", json_integer(generation));
        }
        json_array_append_new(out, next);
        diff = true;
    }
    if (changed)
        *changed = diff;
    return out;
}
