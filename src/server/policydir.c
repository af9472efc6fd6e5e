/* Directory-backed policy source with mtime polling and atomic snapshot swaps. */
#include "server/policydir.h"
#include "server/poller.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mesh.h"
#include "core/meshmetric.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

#define MAX_POLICY_FILE (16u << 20)
#define MAX_FINGERPRINT (64u << 20)

static enum mm_status watch_tick(void *ctx, struct mm_error *err);
static void watch_failed(void *ctx, const char *error);

struct policydir {
    char *dir; /* NULL: empty source */
    char *system_namespace;

    pthread_mutex_t lock; /* guards current */
    struct policy_snapshot *current;
    atomic_bool ready;

    pthread_mutex_t reload_lock; /* serialises reloads; guards fingerprint */
    char *fingerprint;           /* stat facts of the last attempt */

    atomic_ullong reloads_ok;
    atomic_ullong reloads_failed;

    struct poller watcher;
};

static struct policy_snapshot *empty_snapshot(void)
{
    struct policy_set set;
    policy_set_init(&set);
    struct policy_snapshot *snap = policy_snapshot_create(&set);
    policy_set_cleanup(&set);
    return snap;
}

struct policydir *policydir_create(const char *dir, const char *system_namespace)
{
    struct policydir *pd = xcalloc(1, sizeof *pd);
    pd->dir = dir && *dir ? xstrdup(dir) : NULL;
    pd->system_namespace = xstrdup(system_namespace ? system_namespace : "kuma-system");
    pthread_mutex_init(&pd->lock, NULL);
    pthread_mutex_init(&pd->reload_lock, NULL);
    poller_init(&pd->watcher, watch_tick, watch_failed, pd);
    pd->current = empty_snapshot();
    atomic_init(&pd->ready, pd->dir == NULL);
    atomic_init(&pd->reloads_ok, 0);
    atomic_init(&pd->reloads_failed, 0);
    return pd;
}

void policydir_free(struct policydir *pd)
{
    if (!pd)
        return;
    policydir_watch_stop(pd);
    policy_snapshot_unref(pd->current);
    pthread_mutex_destroy(&pd->lock);
    pthread_mutex_destroy(&pd->reload_lock);
    poller_cleanup(&pd->watcher);
    free(pd->fingerprint);
    free(pd->dir);
    free(pd->system_namespace);
    free(pd);
}

static bool wanted_name(const char *name)
{
    if (name[0] == '.')
        return false;
    size_t n = strlen(name);
    static const char *const exts[] = {".yaml", ".yml", ".json"};
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && !strcmp(name + n - e, exts[i]))
            return true;
    }
    return false;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The sorted policy file names of the directory and a fingerprint string of
 * their stat() facts (following symlinks). MM_ERR_IO when the directory
 * cannot be read.
 */
static enum mm_status scan(const char *dir, char ***names_out, size_t *n_out, char **fp_out,
                           struct mm_error *err)
{
    enum mm_status st = MM_OK;
    char **names = NULL;
    size_t n = 0;
    struct strbuf fp;
    DIR *d = opendir(dir);

    strbuf_init(&fp, MAX_FINGERPRINT);
    *names_out = NULL;
    *n_out = 0;
    *fp_out = NULL;
    if (!d) {
        st = mm_error_set(err, MM_ERR_IO, dir, "cannot read the policies directory: %s",
                          strerror(errno));
        goto cleanup;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!wanted_name(e->d_name))
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        struct stat sb;
        bool ok = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
        free(path);
        if (!ok) {
            free(names[i]); /* a directory, or a dangling link mid-swap */
            continue;
        }
        if (!strbuf_printf(&fp, "%s|%lu|%lu|%lld|%lld.%ld|%lld.%ld\n", names[i],
                           (unsigned long)sb.st_dev, (unsigned long)sb.st_ino,
                           (long long)sb.st_size, (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
                           (long long)sb.st_ctim.tv_sec, sb.st_ctim.tv_nsec)) {
            free(names[i]);
            continue;
        }
        names[kept++] = names[i];
    }
    n = kept;
    *names_out = names;
    *n_out = n;
    *fp_out = strbuf_steal(&fp);
    names = NULL;
cleanup:
    if (d)
        closedir(d);
    strbuf_cleanup(&fp);
    free(names);
    return st;
}

/* Log (do not reject) a MeshMetric or Mesh the API server's webhook would have denied. */
static void warn_if_invalid(const json_t *doc, const char *file, size_t index,
                            const char *system_namespace)
{
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    if (!kind || (strcmp(kind, "MeshMetric") && strcmp(kind, "Mesh")))
        return;
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    json_t *copy = json_deep_copy(doc);
    if (!strcmp(kind, "MeshMetric"))
        (void)meshmetric_validate(copy, system_namespace, &errs, &warns);
    else
        (void)mesh_validate(copy, &errs, &warns);
    if (!violations_empty(&errs)) {
        char *msg = violations_join(&errs);
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", index);
        const char *name =
            json_string_value(json_object_get(json_object_get(doc, "metadata"), "name"));
        log_kv(LOG_WARN, "policy file holds an invalid resource (loaded anyway)", "file", file,
               "document", idx, "kind", kind, "name", name ? name : "", "error", msg, NULL);
        free(msg);
    }
    json_decref(copy);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
}

/* Load every file into set. On error err says "file: document N: ..." */
static enum mm_status load_all(const char *dir, char **names, size_t n,
                               const char *system_namespace, struct policy_set *set, size_t *n_docs,
                               struct mm_error *err)
{
    enum mm_status st = MM_OK;
    *n_docs = 0;
    for (size_t i = 0; i < n && !st; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        char *data = NULL;
        size_t len = 0;
        json_t *docs = NULL;
        struct mm_error e;
        mm_error_clear(&e);
        if ((st = fileio_read(path, MAX_POLICY_FILE, &data, &len, &e))) {
            mm_error_set(err, st, names[i], "%s", e.message);
        } else if ((st = yamljson_load(data, len, &yamljson_default_limits, &docs, &e))) {
            mm_error_set(err, st, names[i], "%s", e.message);
        } else {
            size_t k;
            json_t *doc;
            json_array_foreach(docs, k, doc)
            {
                bool ignored = false;
                if (json_is_object(doc))
                    warn_if_invalid(doc, names[i], k + 1, system_namespace);
                if ((st = policy_set_add(set, json_incref(doc), &ignored, &e))) {
                    char buf[1100];
                    mm_error_set(err, st, names[i], "document %zu: %s", k + 1,
                                 mm_error_str(&e, buf, sizeof buf));
                    break;
                }
                (*n_docs)++;
                if (ignored) {
                    const char *kind = json_string_value(json_object_get(doc, "kind"));
                    char idx[32];
                    snprintf(idx, sizeof idx, "%zu", k + 1);
                    log_kv(LOG_DEBUG, "policy file document ignored", "file", names[i], "document",
                           idx, "kind", kind ? kind : "", NULL);
                }
            }
        }
        json_decref(docs);
        free(data);
        free(path);
    }
    return st;
}

enum mm_status policydir_reload(struct policydir *pd, bool force, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    char **names = NULL;
    size_t n = 0, n_docs = 0;
    char *fp = NULL;
    struct policy_set set;

    policy_set_init(&set);
    mm_error_clear(err);
    if (!pd->dir)
        goto cleanup;
    pthread_mutex_lock(&pd->reload_lock);
    if ((st = scan(pd->dir, &names, &n, &fp, err))) {
        free(pd->fingerprint);
        pd->fingerprint = NULL; /* retry the whole load when the directory returns */
        goto failed;
    }
    if (!force && pd->fingerprint && !strcmp(fp, pd->fingerprint)) {
        st = atomic_load(&pd->ready)
                 ? MM_OK
                 : mm_error_set(err, MM_ERR_INVALID, pd->dir,
                                "no good policy snapshot yet (files unchanged)");
        goto unlock;
    }
    free(pd->fingerprint);
    pd->fingerprint = fp;
    fp = NULL;
    if ((st = load_all(pd->dir, names, n, pd->system_namespace, &set, &n_docs, err)))
        goto failed;

    size_t mm = json_array_size(set.meshmetrics), meshes = json_array_size(set.meshes),
           nss = json_array_size(set.namespaces), svcs = json_array_size(set.services);
    struct policy_snapshot *fresh = policy_snapshot_create(&set);
    pthread_mutex_lock(&pd->lock);
    struct policy_snapshot *old = pd->current;
    pd->current = fresh;
    pthread_mutex_unlock(&pd->lock);
    policy_snapshot_unref(old); /* requests that hold it keep their own reference */
    atomic_store(&pd->ready, true);
    atomic_fetch_add(&pd->reloads_ok, 1);
    char files[24], a[24], b[24], c[24], d[24];
    snprintf(files, sizeof files, "%zu", n);
    snprintf(a, sizeof a, "%zu", mm);
    snprintf(b, sizeof b, "%zu", meshes);
    snprintf(c, sizeof c, "%zu", nss);
    snprintf(d, sizeof d, "%zu", svcs);
    log_kv(LOG_INFO, "policies loaded", "dir", pd->dir, "files", files, "meshmetrics", a, "meshes",
           b, "namespaces", c, "services", d, NULL);
    goto unlock;
failed:
    atomic_fetch_add(&pd->reloads_failed, 1);
unlock:
    pthread_mutex_unlock(&pd->reload_lock);
cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(fp);
    policy_set_cleanup(&set);
    return st;
}

static enum mm_status watch_tick(void *ctx, struct mm_error *err)
{
    return policydir_reload(ctx, false, err);
}

static void watch_failed(void *ctx, const char *error)
{
    const struct policydir *pd = ctx;
    log_kv(LOG_ERROR, "policy reload failed; keeping the last good policies", "dir", pd->dir,
           "error", error, NULL);
}

void policydir_watch_start(struct policydir *pd, unsigned interval_ms)
{
    if (!pd->dir)
        return;
    if (!poller_start(&pd->watcher, interval_ms))
        log_kv(LOG_ERROR, "cannot start the policy watcher", NULL);
}

void policydir_watch_stop(struct policydir *pd)
{
    poller_stop(&pd->watcher);
}

static struct policy_snapshot *source_acquire(void *ctx)
{
    struct policydir *pd = ctx;
    pthread_mutex_lock(&pd->lock);
    struct policy_snapshot *snap = policy_snapshot_ref(pd->current);
    pthread_mutex_unlock(&pd->lock);
    return snap;
}

static bool source_ready(void *ctx)
{
    struct policydir *pd = ctx;
    return atomic_load(&pd->ready);
}

struct policy_source policydir_source(struct policydir *pd)
{
    return (struct policy_source){.acquire = source_acquire, .ready = source_ready, .ctx = pd};
}

void policydir_reload_counts(const struct policydir *cpd, uint64_t *ok, uint64_t *failed)
{
    struct policydir *pd = (struct policydir *)(uintptr_t)cpd;
    *ok = atomic_load(&pd->reloads_ok);
    *failed = atomic_load(&pd->reloads_failed);
}
