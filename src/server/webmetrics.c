/* Prometheus text rendering of the webhook's counters. */
#include "server/webmetrics.h"

#include <stdio.h>
#include <string.h>

static const unsigned codes[WEBMETRICS_CODES - 1] = {200, 400, 404, 405, 408, 413, 415, 500, 503};
static const double buckets[WEBMETRICS_BUCKETS] = {
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
static const char *const kinds[WEBMETRICS_KINDS] = {"MeshMetric", "Mesh", "other"};

const char *webhook_endpoint_name(enum webhook_endpoint ep)
{
    static const char *const names[WEBHOOK_EP_COUNT] = {"mutate", "validate", "healthz",
                                                        "readyz", "metrics",  "other"};
    return (unsigned)ep < WEBHOOK_EP_COUNT ? names[ep] : "other";
}

void webmetrics_init(struct webmetrics *m)
{
    memset(m, 0, sizeof *m); /* all-zero is a valid atomic_ullong zero on this platform */
}

static unsigned code_index(unsigned code)
{
    for (unsigned i = 0; i < WEBMETRICS_CODES - 1; i++)
        if (codes[i] == code)
            return i;
    return WEBMETRICS_CODES - 1;
}

void webmetrics_request(struct webmetrics *m, enum webhook_endpoint ep, unsigned code,
                        double seconds)
{
    if ((unsigned)ep >= WEBHOOK_EP_COUNT)
        ep = WEBHOOK_EP_OTHER;
    atomic_fetch_add_explicit(&m->requests[ep][code_index(code)], 1, memory_order_relaxed);
    if (ep != WEBHOOK_EP_MUTATE && ep != WEBHOOK_EP_VALIDATE)
        return;
    unsigned b = 0;
    while (b < WEBMETRICS_BUCKETS && seconds > buckets[b])
        b++;
    atomic_fetch_add_explicit(&m->latency_bucket[ep][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_ns[ep],
                              (unsigned long long)(seconds > 0 ? seconds * 1e9 : 0),
                              memory_order_relaxed);
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
    if (ep == WEBHOOK_EP_MUTATE || ep == WEBHOOK_EP_VALIDATE)
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

bool webmetrics_render(const struct webmetrics *m, const struct webmetrics_gauges *g,
                       struct strbuf *out)
{
    bool ok = true;
    ok = ok && strbuf_puts(out, "# HELP meshmetric_webhook_requests_total HTTP requests answered, "
                                "by endpoint and status code.\n"
                                "# TYPE meshmetric_webhook_requests_total counter\n");
    for (unsigned ep = 0; ep < WEBHOOK_EP_COUNT; ep++)
        for (unsigned c = 0; c < WEBMETRICS_CODES; c++) {
            unsigned long long v = get(&m->requests[ep][c]);
            if (!v && !(c == 0 && ep <= WEBHOOK_EP_VALIDATE))
                continue; /* keep the series set small; always show mutate/validate 200 */
            char code[16];
            if (c < WEBMETRICS_CODES - 1)
                snprintf(code, sizeof code, "%u", codes[c]);
            else
                snprintf(code, sizeof code, "other");
            ok = ok &&
                 strbuf_printf(
                     out, "meshmetric_webhook_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
                     webhook_endpoint_name((enum webhook_endpoint)ep), code, v);
        }
    ok = ok && strbuf_puts(out, "# HELP meshmetric_webhook_admission_duration_seconds Time to "
                                "answer an admission request, body received to response queued.\n"
                                "# TYPE meshmetric_webhook_admission_duration_seconds histogram\n");
    for (unsigned ep = 0; ep < 2; ep++) {
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
        ok = ok &&
             strbuf_printf(out,
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
                           g->policies_meshmetric, g->policies_mesh, g->namespaces, g->services,
                           g->policies_rejected);
    ok = ok && strbuf_printf(out,
                             "# HELP meshmetric_webhook_ready 1 when certificates and policies "
                             "are loaded.\n"
                             "# TYPE meshmetric_webhook_ready gauge\n"
                             "meshmetric_webhook_ready %d\n"
                             "# HELP meshmetric_webhook_open_connections Open client connections.\n"
                             "# TYPE meshmetric_webhook_open_connections gauge\n"
                             "meshmetric_webhook_open_connections %u\n"
                             "# HELP meshmetric_webhook_in_flight_requests Requests being read or "
                             "answered.\n"
                             "# TYPE meshmetric_webhook_in_flight_requests gauge\n"
                             "meshmetric_webhook_in_flight_requests %u\n"
                             "# HELP meshmetric_build_info Build information.\n"
                             "# TYPE meshmetric_build_info gauge\n"
                             "meshmetric_build_info{version=\"%s\",component=\"webhook\"} 1\n",
                             g->ready ? 1 : 0, g->connections, g->in_flight, MM_VERSION);
    return ok;
}
