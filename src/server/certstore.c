/* Serving credentials: reload from files, hand out per handshake, free when unused. */
#include "server/certstore.h"
#include "server/poller.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tls/tls.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/xalloc.h"

#define MAX_CHAIN 8
#define MAX_PEM_FILE (1u << 20)

static enum mm_status watch_tick(void *ctx, struct mm_error *err);
static void watch_failed(void *ctx, const char *error);

/* One immutable set of credentials. */
struct cert_creds {
    atomic_int refs;
    gnutls_pcert_st pcerts[MAX_CHAIN];
    unsigned n_pcerts;
    gnutls_privkey_t key;
};

/* stat() facts of both files; any change triggers a content check. */
struct fingerprint {
    dev_t dev[2];
    ino_t ino[2];
    off_t size[2];
    struct timespec mtime[2];
    struct timespec ctime[2];
    bool exists[2];
};

struct cert_store {
    char *cert_path;
    char *key_path;

    pthread_mutex_t lock; /* guards current, serial */
    struct cert_creds *current;
    char serial[80];
    atomic_llong not_after;

    pthread_mutex_t reload_lock; /* serialises reloads; guards fp, hash */
    struct fingerprint fp;
    bool have_fp;
    uint8_t hash[32];
    bool have_hash;

    atomic_ullong reloads_ok;
    atomic_ullong reloads_failed;

    struct poller watcher;
};

void cert_creds_release(struct cert_creds *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < c->n_pcerts; i++)
        gnutls_pcert_deinit(&c->pcerts[i]);
    if (c->key)
        gnutls_privkey_deinit(c->key);
    free(c);
}

struct cert_store *cert_store_create(const char *cert_path, const char *key_path)
{
    struct cert_store *s = xcalloc(1, sizeof *s);
    s->cert_path = xstrdup(cert_path);
    s->key_path = xstrdup(key_path);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->reload_lock, NULL);
    poller_init(&s->watcher, watch_tick, watch_failed, s);
    atomic_init(&s->not_after, 0);
    atomic_init(&s->reloads_ok, 0);
    atomic_init(&s->reloads_failed, 0);
    return s;
}

void cert_store_free(struct cert_store *s)
{
    if (!s)
        return;
    cert_store_watch_stop(s);
    cert_creds_release(s->current);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->reload_lock);
    poller_cleanup(&s->watcher);
    free(s->cert_path);
    free(s->key_path);
    free(s);
}

static void take_fingerprint(const struct cert_store *s, struct fingerprint *fp)
{
    memset(fp, 0, sizeof *fp);
    const char *paths[2] = {s->cert_path, s->key_path};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0)
            continue; /* stat follows the ..data symlinks of a mounted Secret */
        fp->exists[i] = true;
        fp->dev[i] = st.st_dev;
        fp->ino[i] = st.st_ino;
        fp->size[i] = st.st_size;
        fp->mtime[i] = st.st_mtim;
        fp->ctime[i] = st.st_ctim;
    }
}

static bool same_fingerprint(const struct fingerprint *a, const struct fingerprint *b)
{
    for (int i = 0; i < 2; i++)
        if (a->exists[i] != b->exists[i] || a->dev[i] != b->dev[i] || a->ino[i] != b->ino[i] ||
            a->size[i] != b->size[i] || a->mtime[i].tv_sec != b->mtime[i].tv_sec ||
            a->mtime[i].tv_nsec != b->mtime[i].tv_nsec ||
            a->ctime[i].tv_sec != b->ctime[i].tv_sec || a->ctime[i].tv_nsec != b->ctime[i].tv_nsec)
            return false;
    return true;
}

/* GnuTLS credentials from PEM buffers. */
static enum mm_status import_creds(const char *cert, size_t cert_len, const char *key,
                                   size_t key_len, struct cert_creds **out, struct mm_error *err)
{
    struct cert_creds *c = xcalloc(1, sizeof *c);
    atomic_init(&c->refs, 1);
    gnutls_datum_t cd = {(unsigned char *)(uintptr_t)cert, (unsigned)cert_len};
    gnutls_datum_t kd = {(unsigned char *)(uintptr_t)key, (unsigned)key_len};
    unsigned n = MAX_CHAIN;
    int rc = gnutls_pcert_list_import_x509_raw(c->pcerts, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        free(c);
        return mm_error_set(err, MM_ERR_TLS, "tls.crt", "GnuTLS cannot import the certificate: %s",
                            gnutls_strerror(rc));
    }
    c->n_pcerts = n;
    if ((rc = gnutls_privkey_init(&c->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        cert_creds_release(c);
        return mm_error_set(err, MM_ERR_TLS, "tls.key", "GnuTLS cannot import the key: %s",
                            gnutls_strerror(rc));
    }
    *out = c;
    return MM_OK;
}

enum mm_status cert_store_reload(struct cert_store *s, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    struct cert_creds *fresh = NULL, *old = NULL;
    struct tls_cert_info info;
    struct fingerprint fp;

    tls_cert_info_init(&info);
    mm_error_clear(err);
    pthread_mutex_lock(&s->reload_lock);
    take_fingerprint(s, &fp);
    if (s->have_fp && same_fingerprint(&fp, &s->fp)) {
        st = s->current ? MM_OK
                        : mm_error_set(err, MM_ERR_TLS, s->cert_path,
                                       "no usable certificate yet (files unchanged)");
        goto cleanup;
    }
    s->fp = fp;
    s->have_fp = true;
    if ((st = fileio_read(s->cert_path, MAX_PEM_FILE, &cert, &cert_len, err)) ||
        (st = fileio_read(s->key_path, MAX_PEM_FILE, &key, &key_len, err)))
        goto failed;

    uint8_t hash[32];
    char *both = xmalloc(cert_len + key_len + 1);
    memcpy(both, cert, cert_len);
    both[cert_len] = '\0';
    memcpy(both + cert_len + 1, key, key_len);
    sha256(both, cert_len + key_len + 1, hash);
    free(both);
    if (s->have_hash && s->current && !memcmp(hash, s->hash, sizeof hash))
        goto cleanup; /* touched, same content */

    if ((st = tls_pair_check(cert, cert_len, key, key_len, (int64_t)time(NULL), &info, err)))
        goto failed;
    if ((st = import_creds(cert, cert_len, key, key_len, &fresh, err)))
        goto failed;

    pthread_mutex_lock(&s->lock);
    old = s->current;
    s->current = fresh;
    snprintf(s->serial, sizeof s->serial, "%s", info.serial);
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->not_after, (long long)info.not_after);
    memcpy(s->hash, hash, sizeof hash);
    s->have_hash = true;
    bool replaced = old != NULL;
    cert_creds_release(old); /* connections that used it hold their own references */
    atomic_fetch_add(&s->reloads_ok, 1);

    char not_after[32], days[32];
    snprintf(not_after, sizeof not_after, "%lld", (long long)info.not_after);
    snprintf(days, sizeof days, "%lld", (long long)((info.not_after - time(NULL)) / 86400));
    log_kv(LOG_INFO, replaced ? "serving certificate reloaded" : "serving certificate loaded",
           "file", s->cert_path, "serial", info.serial, "key", info.key_type, "not_after",
           not_after, "days_left", days, NULL);
    if (info.not_after - time(NULL) < 7 * 86400)
        log_kv(LOG_WARN, "serving certificate expires within 7 days", "serial", info.serial,
               "not_after", not_after, NULL);
    goto cleanup;
failed:
    atomic_fetch_add(&s->reloads_failed, 1);
cleanup:
    pthread_mutex_unlock(&s->reload_lock);
    tls_cert_info_cleanup(&info);
    free(cert);
    if (key) {
        memset(key, 0, key_len);
        free(key);
    }
    return st;
}

static enum mm_status watch_tick(void *ctx, struct mm_error *err)
{
    return cert_store_reload(ctx, err);
}

static void watch_failed(void *ctx, const char *error)
{
    struct cert_store *s = ctx;
    log_kv(cert_store_ready(s) ? LOG_WARN : LOG_ERROR,
           cert_store_ready(s) ? "certificate reload failed; serving the previous one"
                               : "no usable serving certificate",
           "error", error, NULL);
}

void cert_store_watch_start(struct cert_store *s, unsigned interval_ms)
{
    if (!poller_start(&s->watcher, interval_ms))
        log_kv(LOG_ERROR, "cannot start the certificate watcher", NULL);
}

void cert_store_watch_stop(struct cert_store *s)
{
    poller_stop(&s->watcher);
}

bool cert_store_ready(const struct cert_store *s)
{
    return atomic_load(&((struct cert_store *)(uintptr_t)s)->not_after) != 0;
}

int64_t cert_store_not_after(const struct cert_store *s)
{
    return atomic_load(&((struct cert_store *)(uintptr_t)s)->not_after);
}

void cert_store_serial(const struct cert_store *cs, char *buf, size_t len)
{
    struct cert_store *s = (struct cert_store *)(uintptr_t)cs;
    pthread_mutex_lock(&s->lock);
    snprintf(buf, len, "%s", s->serial);
    pthread_mutex_unlock(&s->lock);
}

void cert_store_reload_counts(const struct cert_store *cs, uint64_t *ok, uint64_t *failed)
{
    struct cert_store *s = (struct cert_store *)(uintptr_t)cs;
    *ok = atomic_load(&s->reloads_ok);
    *failed = atomic_load(&s->reloads_failed);
}

struct cert_creds *cert_store_acquire(struct cert_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct cert_creds *c = s->current;
    if (c)
        atomic_fetch_add(&c->refs, 1);
    pthread_mutex_unlock(&s->lock);
    return c;
}

void cert_creds_get(const struct cert_creds *c, gnutls_pcert_st **pcert, unsigned int *pcert_length,
                    gnutls_privkey_t *privkey)
{
    /* GnuTLS takes non-const pointers but never writes through them (the
     * retrieve callback's contract: the caller keeps ownership). */
    struct cert_creds *m = (struct cert_creds *)(uintptr_t)c;
    *pcert = m->pcerts;
    *pcert_length = m->n_pcerts;
    *privkey = m->key;
}
