/* Directory-backed policy source with mtime polling and atomic view swaps. */
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
#include "util/published.h"
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
    char *zone;

    struct view_cell cell; /* the published view, ready, reload counters */
    uint64_t generation;   /* of the last view built (under reload_lock) */

    pthread_mutex_t reload_lock; /* serialises reloads; guards fingerprint */
    char *fingerprint;           /* stat facts of the last attempt */

    struct poller watcher;
};

struct policydir *policydir_create(const char *dir, const struct view_options *opt)
{
    struct policydir *pd = xcalloc(1, sizeof *pd);
    pd->dir = dir && *dir ? xstrdup(dir) : NULL;
    pd->system_namespace =
        xstrdup(opt && opt->system_namespace ? opt->system_namespace : "kuma-system");
    pd->zone = xstrdup(opt && opt->zone ? opt->zone : "default");
    pthread_mutex_init(&pd->reload_lock, NULL);
    poller_init(&pd->watcher, watch_tick, watch_failed, pd);
    struct view_options vo = {.system_namespace = pd->system_namespace, .zone = pd->zone};
    view_cell_init(&pd->cell, view_empty(&vo), pd->dir == NULL);
    return pd;
}

void policydir_free(struct policydir *pd)
{
    if (!pd)
        return;
    policydir_watch_stop(pd);
    view_cell_cleanup(&pd->cell);
    pthread_mutex_destroy(&pd->reload_lock);
    poller_cleanup(&pd->watcher);
    free(pd->fingerprint);
    free(pd->dir);
    free(pd->system_namespace);
    free(pd->zone);
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

/* Load every file into b. On error err says "file: document N: ..." */
static enum mm_status load_all(const char *dir, char **names, size_t n, struct view_builder *b,
                               size_t *n_docs, struct mm_error *err)
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
                if ((st = view_builder_add(b, doc, &ignored, &e))) {
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

/* Log the policies left out of fresh that old did not leave out the same way ("logged once"). */
/* Log what is new in fresh (each rejection and note once, not on every reload). */
static void log_new_rejections(const struct policydir *pd, const struct policy_view *old,
                               const struct policy_view *fresh)
{
    const struct view_rejection *rej = NULL;
    const struct view_note *notes = NULL;
    size_t *idx = NULL;
    view_rejections(fresh, &rej);
    view_notes(fresh, &notes);
    size_t n = view_new_rejections(old, fresh, &idx);
    for (size_t i = 0; i < n; i++)
        log_kv(LOG_WARN, "invalid policy left out: Kuma would reject it", "dir", pd->dir, "kind",
               rej[idx[i]].kind, "policy", rej[idx[i]].id, "error", rej[idx[i]].errors, NULL);
    free(idx);
    n = view_new_notes(old, fresh, &idx);
    for (size_t i = 0; i < n; i++)
        log_kv(LOG_WARN, "policy selects nothing here", "dir", pd->dir, "policy", notes[idx[i]].id,
               "reason", notes[idx[i]].text, NULL);
    free(idx);
}

enum mm_status policydir_reload(struct policydir *pd, bool force, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    char **names = NULL;
    size_t n = 0, n_docs = 0;
    char *fp = NULL;
    struct view_builder *b = NULL;

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
        st = view_cell_ready(&pd->cell)
                 ? MM_OK
                 : mm_error_set(err, MM_ERR_INVALID, pd->dir,
                                "no good set of policies yet (files unchanged)");
        goto unlock;
    }
    free(pd->fingerprint);
    pd->fingerprint = fp;
    fp = NULL;
    struct view_options vo = {.system_namespace = pd->system_namespace, .zone = pd->zone};
    b = view_builder_create(&vo);
    if ((st = load_all(pd->dir, names, n, b, &n_docs, err)))
        goto failed;

    struct policy_view *fresh = view_builder_finish(b, ++pd->generation);
    b = NULL;
    struct view_counts c;
    view_counts(fresh, &c);
    struct policy_view *old =
        view_cell_publish(&pd->cell, view_ref(fresh), pd->generation, (long long)time(NULL));
    view_cell_set_ready(&pd->cell);
    log_new_rejections(pd, old, fresh);
    view_unref(old);
    view_unref(fresh);
    char files[24], mm[24], meshes[24], nss[24], svcs[24], owners[24], rej[24], gen[24];
    snprintf(files, sizeof files, "%zu", n);
    snprintf(mm, sizeof mm, "%zu", c.meshmetrics);
    snprintf(meshes, sizeof meshes, "%zu", c.meshes);
    snprintf(nss, sizeof nss, "%zu", c.namespaces);
    snprintf(svcs, sizeof svcs, "%zu", c.services);
    snprintf(owners, sizeof owners, "%zu", c.owners);
    snprintf(rej, sizeof rej, "%zu", c.rejected);
    snprintf(gen, sizeof gen, "%llu", (unsigned long long)pd->generation);
    log_kv(LOG_INFO, "policies loaded", "dir", pd->dir, "files", files, "generation", gen,
           "meshmetrics", mm, "meshes", meshes, "namespaces", nss, "services", svcs, "owners",
           owners, "invalid_left_out", rej, NULL);
    goto unlock;
failed:
    view_cell_failed(&pd->cell);
unlock:
    pthread_mutex_unlock(&pd->reload_lock);
cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(fp);
    view_builder_free(b);
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

struct policy_source policydir_source(struct policydir *pd)
{
    return view_cell_source(&pd->cell);
}

void policydir_reload_counts(const struct policydir *pd, uint64_t *ok, uint64_t *failed,
                             int64_t *last_ok)
{
    view_cell_reload_counts(&pd->cell, ok, failed, last_ok);
}
