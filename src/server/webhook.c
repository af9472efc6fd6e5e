/* The admission webhook on the HTTP layer: admission, health and metrics handlers. */
#include "server/webhook.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admission.h"
#include "server/admit.h"
#include "server/procmetrics.h"
#include "server/replay.h"
#include "server/webmetrics.h"
#include "util/log.h"
#include "util/xalloc.h"

#define METRICS_MAX (4u << 20) /* cap of one /metrics answer */

static const char JSON_TYPE[] = "application/json";
static const char TEXT_TYPE[] = "text/plain; charset=utf-8";
static const char PROM_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";

/* Route indices of the HTTPS listener (observe() relies on the first two). */
enum { ROUTE_MUTATE = 0, ROUTE_VALIDATE, ROUTE_HEALTHZ, ROUTE_READYZ, ROUTE_METRICS, N_ROUTES };

struct webhook_server {
    struct webhook_config cfg; /* addresses copied below */
    char *addr;
    char *metrics_addr; /* NULL: no plain listener */
    struct http_server *https;
    struct http_server *plain; /* NULL: none */
    atomic_bool stopping;
    struct webmetrics metrics;
    struct admit_env env;
};

/* ---------------------------------------------------------------- admission */

static void admission(struct webhook_server *s, enum webhook_endpoint ep,
                      const struct http_request *req, struct http_reply *out)
{
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    struct admit_reply reply;
    if (ep == WEBHOOK_EP_MUTATE)
        admit_mutate(&s->env, body, len, &reply);
    else
        admit_validate(&s->env, body, len, &reply);
    webmetrics_admission(&s->metrics, ep, reply.outcome);

    if (reply.log != ADMIT_LOG_NONE || log_enabled(LOG_DEBUG)) {
        enum log_level lvl = reply.log == ADMIT_LOG_ERROR  ? LOG_ERROR
                             : reply.log == ADMIT_LOG_WARN ? LOG_WARN
                             : reply.log == ADMIT_LOG_INFO ? LOG_INFO
                                                           : LOG_DEBUG;
        char code[8], ms[32];
        snprintf(code, sizeof code, "%u", reply.status);
        snprintf(ms, sizeof ms, "%.3f", http_request_elapsed(req) * 1e3);
        log_kv(lvl, reply.log == ADMIT_LOG_NONE ? "admission answered" : reply.reason, "path",
               http_request_path(req), "code", code, "uid", reply.uid, "object", reply.object,
               "patched", reply.patched ? "true" : "false", "dry_run",
               reply.dry_run ? "true" : "false", "ms", ms, NULL);
    }
    http_reply_set(out, reply.status, JSON_TYPE, reply.body);
    reply.body = NULL;
    admit_reply_cleanup(&reply);
}

static void handle_mutate(void *ctx, const struct http_request *req, struct http_reply *out)
{
    admission(ctx, WEBHOOK_EP_MUTATE, req, out);
}

static void handle_validate(void *ctx, const struct http_request *req, struct http_reply *out)
{
    admission(ctx, WEBHOOK_EP_VALIDATE, req, out);
}

/* The admission latency histogram counts every answer of /mutate and /validate. */
static void observe(void *ctx, int route, unsigned status, double seconds)
{
    struct webhook_server *s = ctx;
    (void)status;
    if (route == ROUTE_MUTATE)
        webmetrics_observe(&s->metrics, WEBHOOK_EP_MUTATE, seconds);
    else if (route == ROUTE_VALIDATE)
        webmetrics_observe(&s->metrics, WEBHOOK_EP_VALIDATE, seconds);
}

/* ---------------------------------------------------------------- health */

static void handle_healthz(void *ctx, const struct http_request *req, struct http_reply *out)
{
    (void)ctx;
    (void)req;
    http_reply_set(out, 200, TEXT_TYPE, xstrdup("ok\n"));
}

static void handle_readyz(void *ctx, const struct http_request *req, struct http_reply *out)
{
    struct webhook_server *s = ctx;
    bool certs = cert_store_ready(s->cfg.certs);
    bool policies = s->cfg.source.ready(s->cfg.source.ctx);
    bool stopping = atomic_load(&s->stopping);
    bool ok = certs && policies && !stopping;
    if (!http_request_query(req, "verbose")) { /* "?verbose" has no value: presence counts */
        if (ok)
            http_reply_set(out, 200, TEXT_TYPE, xstrdup("ok\n"));
        else
            http_reply_set(out, 503, TEXT_TYPE,
                           xasprintf("not ready:%s%s%s\n", certs ? "" : " no serving certificate",
                                     policies ? "" : " policies not loaded",
                                     stopping ? " shutting down" : ""));
        return;
    }
    /* Kubernetes' verbose health format: one [+]/[-] line per check. */
    struct strbuf text;
    strbuf_init(&text, 1u << 20);
    struct policy_view *view = s->cfg.source.acquire(s->cfg.source.ctx);
    const struct view_rejection *rej = NULL;
    size_t n_rej = view_rejections(view, &rej);
    bool fits = strbuf_printf(&text, "[%c]certificate %s\n", certs ? '+' : '-',
                              certs ? "ok" : "failed: no serving certificate loaded") &&
                strbuf_printf(&text, "[%c]policies %s (generation %llu)\n", policies ? '+' : '-',
                              policies ? "ok" : "failed: not loaded",
                              (unsigned long long)view_generation(view)) &&
                strbuf_printf(&text, "[%c]shutdown %s\n", stopping ? '-' : '+',
                              stopping ? "failed: shutting down" : "ok") &&
                strbuf_printf(&text, "[+]invalid-policies ok: %zu left out%s\n", n_rej,
                              n_rej ? " (Kuma would reject them; the others apply)" : "");
    for (size_t i = 0; fits && i < n_rej; i++)
        fits = strbuf_printf(&text, "    %s %s: %s\n", rej[i].kind, rej[i].id, rej[i].errors);
    /* Valid policies that select nothing here (another zone's): informational, never failing. */
    const struct view_note *notes = NULL;
    size_t n_notes = view_notes(view, &notes);
    fits = fits && strbuf_printf(&text, "[+]policy-notes ok: %zu%s\n", n_notes,
                                 n_notes ? " valid policies select no data plane proxy here" : "");
    for (size_t i = 0; fits && i < n_notes; i++)
        fits = strbuf_printf(&text, "    %s: %s\n", notes[i].id, notes[i].text);
    view_unref(view);
    fits = fits && strbuf_printf(&text, "readyz check %s\n", ok ? "passed" : "failed");
    if (!fits) { /* cut at the cap: the checks are listed first */
        const char cut[] = "\n(output truncated)\n";
        if (text.len + sizeof cut < text.limit && !strbuf_puts(&text, cut))
            text.len = text.len; /* cannot fail: checked above */
    }
    http_reply_set(out, ok ? 200 : 503, TEXT_TYPE, strbuf_steal(&text));
}

/* ---------------------------------------------------------------- metrics */

bool webhook_server_render_metrics(struct webhook_server *s, struct strbuf *out)
{
    struct webmetrics_gauges g;
    memset(&g, 0, sizeof g);
    g.cert_not_after = cert_store_not_after(s->cfg.certs);
    cert_store_reload_counts(s->cfg.certs, &g.cert_reloads_ok, &g.cert_reloads_failed);
    struct policy_view *view = s->cfg.source.acquire(s->cfg.source.ctx);
    struct view_counts vc;
    view_counts(view, &vc);
    g.policies_meshmetric = (long)vc.meshmetrics;
    g.policies_mesh = (long)vc.meshes;
    g.namespaces = (long)vc.namespaces;
    g.services = (long)vc.services;
    g.policies_rejected = (long)vc.rejected;
    view_unref(view);
    if (s->cfg.reload_stats) {
        g.have_policy_reloads = true;
        s->cfg.reload_stats(s->cfg.reload_stats_ctx, &g.policy_reloads_ok, &g.policy_reloads_failed,
                            &g.policy_last_ok);
    }
    g.ready = cert_store_ready(s->cfg.certs) && s->cfg.source.ready(s->cfg.source.ctx) &&
              !atomic_load(&s->stopping);
    struct procmetrics pm;
    procmetrics_read(&pm);
    bool ok = http_server_render(s->https, "meshmetric_webhook", out) &&
              webmetrics_render(&s->metrics, &g, out);
    if (ok && s->plain)
        ok = http_server_render(s->plain, "meshmetric_metrics_listener", out);
    ok = ok && procmetrics_render(&pm, out);
    if (ok && s->cfg.render_extra)
        ok = s->cfg.render_extra(s->cfg.render_extra_ctx, out);
    return ok;
}

static void handle_metrics(void *ctx, const struct http_request *req, struct http_reply *out)
{
    struct webhook_server *s = ctx;
    (void)req;
    struct strbuf text;
    strbuf_init(&text, METRICS_MAX);
    if (!webhook_server_render_metrics(s, &text)) {
        strbuf_cleanup(&text);
        http_reply_error(out, 500, "metrics output too large", NULL);
        return;
    }
    http_reply_set(out, 200, PROM_TYPE, strbuf_steal(&text));
}

/* ---------------------------------------------------------------- lifecycle */

struct webhook_server *webhook_server_create(const struct webhook_config *cfg)
{
    struct webhook_server *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->addr = xstrdup(cfg->addr ? cfg->addr : ":9443");
    s->cfg.addr = s->addr;
    s->metrics_addr = cfg->metrics_addr && *cfg->metrics_addr ? xstrdup(cfg->metrics_addr) : NULL;
    s->cfg.metrics_addr = s->metrics_addr;
    atomic_init(&s->stopping, false);
    webmetrics_init(&s->metrics);
    s->env.engine = cfg->engine;
    s->env.system_namespace = cfg->system_namespace ? cfg->system_namespace : "kuma-system";
    s->env.source = cfg->source;
    s->env.metrics = &s->metrics;
    /* Answers of repeated pods: 256 entries of at most 64 KiB bodies (<= 16 MiB). */
    s->env.replay = replay_create(256, 64u << 10);

    const struct http_route routes[N_ROUTES] = {
        [ROUTE_MUTATE] = {"/mutate", "mutate", HTTP_POST, handle_mutate, s, ADMISSION_MAX_BODY,
                          true},
        [ROUTE_VALIDATE] = {"/validate", "validate", HTTP_POST, handle_validate, s,
                            ADMISSION_MAX_BODY, true},
        [ROUTE_HEALTHZ] = {"/healthz", "healthz", HTTP_GET, handle_healthz, s, 0, false},
        [ROUTE_READYZ] = {"/readyz", "readyz", HTTP_GET, handle_readyz, s, 0, false},
        [ROUTE_METRICS] = {"/metrics", "metrics", HTTP_GET, handle_metrics, s, 0, false},
    };
    struct http_config hc = {
        .name = "webhook",
        .addr = s->addr,
        .addr_flag = "webhook-addr",
        .certs = cfg->certs,
        .routes = routes,
        .n_routes = N_ROUTES,
        .not_found = "no such path; the webhook serves /mutate and /validate",
        .thread_pool = cfg->thread_pool,
        .connection_limit = cfg->connection_limit,
        .header_timeout_s = cfg->header_timeout_s,
        .idle_timeout_s = cfg->idle_timeout_s,
        .read_timeout_s = cfg->body_timeout_s,
        .observe = observe,
        .observe_ctx = s,
    };
    s->https = http_server_create(&hc);
    if (s->metrics_addr) {
        struct http_config pc = {
            .name = "metrics",
            .addr = s->metrics_addr,
            .addr_flag = "metrics-addr",
            .certs = NULL,
            .routes = routes + ROUTE_HEALTHZ,
            .n_routes = N_ROUTES - ROUTE_HEALTHZ,
            .not_found = "no such path; this port serves /metrics, /healthz and /readyz",
            .thread_pool = 0,
            .connection_limit = WEBHOOK_METRICS_CONNECTION_LIMIT,
            .header_timeout_s = cfg->header_timeout_s,
            .idle_timeout_s = cfg->idle_timeout_s,
            .read_timeout_s = cfg->body_timeout_s,
        };
        s->plain = http_server_create(&pc);
    }
    return s;
}

enum mm_status webhook_server_start(struct webhook_server *s, struct mm_error *err)
{
    enum mm_status st = http_server_start(s->https, err);
    if (st)
        return st;
    if (s->plain && (st = http_server_start(s->plain, err)) != MM_OK) {
        (void)http_server_shutdown(s->https, 0);
        return st;
    }
    return MM_OK;
}

uint16_t webhook_server_port(const struct webhook_server *s)
{
    return http_server_port(s->https);
}

uint16_t webhook_server_metrics_port(const struct webhook_server *s)
{
    return s->plain ? http_server_port(s->plain) : 0;
}

unsigned webhook_server_in_flight(const struct webhook_server *s)
{
    return http_server_in_flight(s->https);
}

const struct http_server *webhook_server_http(const struct webhook_server *s)
{
    return s->https;
}

unsigned webhook_server_shutdown(struct webhook_server *s, unsigned timeout_ms)
{
    atomic_store(&s->stopping, true); /* /readyz: 503 on both listeners from now on */
    unsigned left = http_server_shutdown(s->https, timeout_ms);
    if (s->plain) /* last: the probes keep their answers while requests drain */
        (void)http_server_shutdown(s->plain, 1000);
    return left;
}

void webhook_server_free(struct webhook_server *s)
{
    if (!s)
        return;
    (void)webhook_server_shutdown(s, 10000);
    http_server_free(s->https);
    http_server_free(s->plain);
    replay_free(s->env.replay);
    free(s->addr);
    free(s->metrics_addr);
    free(s);
}
