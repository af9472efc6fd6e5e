/* Prometheus text rendering of the webhook's counters. */
#include "server/webmetrics.h"

#include <stdio.h>
#include <string.h>

static const double buckets[WEBMETRICS_BUCKETS] = {
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
static const char *const kinds[WEBMETRICS_KINDS] = {"MeshMetric", "Mesh", "other"};

/* The outcomes each endpoint can have, in the order they are rendered. */
static const enum webhook_outcome outcomes[WEBHOOK_EP_COUNT][4] = {
    {WEBHOOK_PATCHED, WEBHOOK_UNCHANGED, WEBHOOK_WARNED, WEBHOOK_ERROR},
    {WEBHOOK_ALLOWED, WEBHOOK_WARNED, WEBHOOK_DENIED, WEBHOOK_ERROR},
};

const char *webhook_endpoint_name(enum webhook_endpoint ep)
{
    static const char *const names[WEBHOOK_EP_COUNT] = {"mutate", "validate"};
    return (unsigned)ep < WEBHOOK_EP_COUNT ? names[ep] : "other";
}

const char *webhook_outcome_name(enum webhook_outcome o)
{
    static const char *const names[WEBHOOK_OUTCOME_COUNT] = {"patched", "unchanged", "warned",
                                                             "denied",  "allowed",   "error"};
    return (unsigned)o < WEBHOOK_OUTCOME_COUNT ? names[o] : "error";
}

void webmetrics_init(struct webmetrics *m)
{
    memset(m, 0, sizeof *m); /* all-zero is a valid atomic_ullong zero on this platform */
}

void webmetrics_observe(struct webmetrics *m, enum webhook_endpoint ep, double seconds)
{
    if ((unsigned)ep >= WEBHOOK_EP_COUNT)
        return;
    unsigned b = 0;
    while (b < WEBMETRICS_BUCKETS && seconds > buckets[b])
        b++;
    atomic_fetch_add_explicit(&m->latency_bucket[ep][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_ns[ep],
                              (unsigned long long)(seconds > 0 ? seconds * 1e9 : 0),
                              memory_order_relaxed);
}

void webmetrics_admission(struct webmetrics *m, enum webhook_endpoint ep,
                          enum webhook_outcome outcome)
{
    if ((unsigned)ep >= WEBHOOK_EP_COUNT || (unsigned)outcome >= WEBHOOK_OUTCOME_COUNT)
        return;
    atomic_fetch_add_explicit(&m->admissions[ep][outcome], 1, memory_order_relaxed);
}

void webmetrics_patch(struct webmetrics *m)
{
    atomic_fetch_add_explicit(&m->patches, 1, memory_order_relaxed);
}

void webmetrics_denial(struct webmetrics *m, const char *kind)
{
    unsigned k = 2;
    if (kind && !strcmp(kind, "MeshMetric"))
        k = 0;
    else if (kind && !strcmp(kind, "Mesh"))
        k = 1;
    atomic_fetch_add_explicit(&m->denials[k], 1, memory_order_relaxed);
}

void webmetrics_warnings(struct webmetrics *m, enum webhook_endpoint ep, uint64_t n)
{
    if ((unsigned)ep < WEBHOOK_EP_COUNT)
        atomic_fetch_add_explicit(&m->warnings[ep], n, memory_order_relaxed);
}

void webmetrics_engine_error(struct webmetrics *m)
{
    atomic_fetch_add_explicit(&m->engine_errors, 1, memory_order_relaxed);
}

static unsigned long long get(const atomic_ullong *a)
{
    return atomic_load_explicit((atomic_ullong *)(uintptr_t)a, memory_order_relaxed);
}

static bool render_latency(const struct webmetrics *m, struct strbuf *out)
{
    bool ok = strbuf_puts(out, "# HELP meshmetric_webhook_admission_duration_seconds Time to "
                               "answer an admission request, headers received to response "
                               "queued.\n"
                               "# TYPE meshmetric_webhook_admission_duration_seconds histogram\n");
    for (unsigned ep = 0; ep < WEBHOOK_EP_COUNT; ep++) {
        const char *name = webhook_endpoint_name((enum webhook_endpoint)ep);
        unsigned long long cum = 0;
        for (unsigned b = 0; b <= WEBMETRICS_BUCKETS; b++) {
            cum += get(&m->latency_bucket[ep][b]);
            if (b < WEBMETRICS_BUCKETS)
                ok = ok && strbuf_printf(out,
                                         "meshmetric_webhook_admission_duration_seconds_bucket{"
                                         "endpoint=\"%s\",le=\"%g\"} %llu\n",
                                         name, buckets[b], cum);
            else
                ok = ok && strbuf_printf(out,
                                         "meshmetric_webhook_admission_duration_seconds_bucket{"
                                         "endpoint=\"%s\",le=\"+Inf\"} %llu\n",
                                         name, cum);
        }
        ok = ok &&
             strbuf_printf(out,
                           "meshmetric_webhook_admission_duration_seconds_sum{endpoint=\"%s\"} "
                           "%.9f\n"
                           "meshmetric_webhook_admission_duration_seconds_count{endpoint=\"%s\"} "
                           "%llu\n",
                           name, (double)get(&m->latency_sum_ns[ep]) / 1e9, name, cum);
    }
    return ok;
}

static bool render_admissions(const struct webmetrics *m, struct strbuf *out)
{
    bool ok = strbuf_puts(out, "# HELP meshmetric_webhook_admissions_total Admission requests "
                               "answered, by endpoint and outcome.\n"
                               "# TYPE meshmetric_webhook_admissions_total counter\n");
    for (unsigned ep = 0; ep < WEBHOOK_EP_COUNT; ep++)
        for (unsigned i = 0; i < sizeof outcomes[ep] / sizeof outcomes[ep][0]; i++) {
            enum webhook_outcome o = outcomes[ep][i];
            ok = ok && strbuf_printf(out,
                                     "meshmetric_webhook_admissions_total{endpoint=\"%s\","
                                     "outcome=\"%s\"} %llu\n",
                                     webhook_endpoint_name((enum webhook_endpoint)ep),
                                     webhook_outcome_name(o), get(&m->admissions[ep][o]));
        }
    return ok;
}

bool webmetrics_render(const struct webmetrics *m, const struct webmetrics_gauges *g,
                       struct strbuf *out)
{
    bool ok = render_latency(m, out) && render_admissions(m, out);
    ok = ok && strbuf_printf(out,
                             "# HELP meshmetric_webhook_patches_total Pods admitted with a metrics "
                             "patch (dry runs excluded).\n"
                             "# TYPE meshmetric_webhook_patches_total counter\n"
                             "meshmetric_webhook_patches_total %llu\n",
                             get(&m->patches));
    ok = ok && strbuf_puts(out, "# HELP meshmetric_webhook_validation_denials_total Resources "
                                "denied by /validate, by kind.\n"
                                "# TYPE meshmetric_webhook_validation_denials_total counter\n");
    for (unsigned k = 0; k < WEBMETRICS_KINDS; k++)
        ok = ok &&
             strbuf_printf(out, "meshmetric_webhook_validation_denials_total{kind=\"%s\"} %llu\n",
                           kinds[k], get(&m->denials[k]));
    ok =
        ok && strbuf_printf(out,
                            "# HELP meshmetric_webhook_warnings_total Warnings returned to API "
                            "clients, by endpoint.\n"
                            "# TYPE meshmetric_webhook_warnings_total counter\n"
                            "meshmetric_webhook_warnings_total{endpoint=\"mutate\"} %llu\n"
                            "meshmetric_webhook_warnings_total{endpoint=\"validate\"} %llu\n"
                            "# HELP meshmetric_webhook_engine_errors_total Pods admitted unchanged "
                            "because the engine failed on them.\n"
                            "# TYPE meshmetric_webhook_engine_errors_total counter\n"
                            "meshmetric_webhook_engine_errors_total %llu\n",
                            get(&m->warnings[0]), get(&m->warnings[1]), get(&m->engine_errors));
    ok = ok &&
         strbuf_printf(out,
                       "# HELP meshmetric_webhook_certificate_expiry_timestamp_seconds "
                       "notAfter of the serving certificate in use (unix seconds).\n"
                       "# TYPE meshmetric_webhook_certificate_expiry_timestamp_seconds gauge\n"
                       "meshmetric_webhook_certificate_expiry_timestamp_seconds %lld\n"
                       "# HELP meshmetric_webhook_certificate_reloads_total Serving "
                       "certificate loads, by result.\n"
                       "# TYPE meshmetric_webhook_certificate_reloads_total counter\n"
                       "meshmetric_webhook_certificate_reloads_total{result=\"success\"} %llu\n"
                       "meshmetric_webhook_certificate_reloads_total{result=\"failure\"} %llu\n",
                       (long long)g->cert_not_after, (unsigned long long)g->cert_reloads_ok,
                       (unsigned long long)g->cert_reloads_failed);
    if (g->policies_meshmetric >= 0)
        ok = ok && strbuf_printf(out,
                                 "# HELP meshmetric_webhook_policy_objects Objects in the policy "
                                 "view in use, by kind.\n"
                                 "# TYPE meshmetric_webhook_policy_objects gauge\n"
                                 "meshmetric_webhook_policy_objects{kind=\"MeshMetric\"} %ld\n"
                                 "meshmetric_webhook_policy_objects{kind=\"Mesh\"} %ld\n"
                                 "meshmetric_webhook_policy_objects{kind=\"Namespace\"} %ld\n"
                                 "meshmetric_webhook_policy_objects{kind=\"Service\"} %ld\n"
                                 "# HELP meshmetric_policy_invalid Policies left out because Kuma "
                                 "would reject them (see /readyz?verbose).\n"
                                 "# TYPE meshmetric_policy_invalid gauge\n"
                                 "meshmetric_policy_invalid %ld\n",
                                 g->policies_meshmetric, g->policies_mesh, g->namespaces,
                                 g->services, g->policies_rejected);
    if (g->have_policy_reloads)
        ok = ok && strbuf_printf(out,
                                 "# HELP meshmetric_policy_reloads_total Policy view rebuilds "
                                 "by the policy source, by result.\n"
                                 "# TYPE meshmetric_policy_reloads_total counter\n"
                                 "meshmetric_policy_reloads_total{result=\"success\"} %llu\n"
                                 "meshmetric_policy_reloads_total{result=\"failure\"} %llu\n"
                                 "# HELP meshmetric_policy_last_reload_success_timestamp_seconds "
                                 "When the policies were last loaded successfully (unix "
                                 "seconds; 0: never).\n"
                                 "# TYPE meshmetric_policy_last_reload_success_timestamp_seconds "
                                 "gauge\n"
                                 "meshmetric_policy_last_reload_success_timestamp_seconds %lld\n",
                                 (unsigned long long)g->policy_reloads_ok,
                                 (unsigned long long)g->policy_reloads_failed,
                                 (long long)g->policy_last_ok);
    ok = ok && strbuf_printf(out,
                             "# HELP meshmetric_webhook_ready 1 when certificates and policies "
                             "are loaded.\n"
                             "# TYPE meshmetric_webhook_ready gauge\n"
                             "meshmetric_webhook_ready %d\n"
                             "# HELP meshmetric_build_info Build information.\n"
                             "# TYPE meshmetric_build_info gauge\n"
                             "meshmetric_build_info{version=\"%s\",component=\"webhook\"} 1\n",
                             g->ready ? 1 : 0, MM_VERSION);
    return ok;
}
