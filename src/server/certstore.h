/*
 * A server's serving certificate, reloaded from files without a restart
 * (Secret rotation) and served to each TLS handshake through GnuTLS's
 * certificate retrieve callback, which server/http.c installs
 * (MHD_OPTION_HTTPS_CERT_CALLBACK) and answers from cert_store_acquire.
 *
 * Credentials are immutable and reference-counted: a handshake takes a
 * reference that its connection keeps until it closes, so replaced
 * credentials stay alive while any connection may still use them. A watcher
 * thread polls the files (inode, size, mtime, then a SHA-256 of the content:
 * Kubernetes swaps a `..data` symlink), checks that the key matches the
 * certificate and only then swaps.
 */
#ifndef MM_SERVER_CERTSTORE_H
#define MM_SERVER_CERTSTORE_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct cert_store;

/* Paths are copied. Nothing is loaded yet. Never NULL. */
struct cert_store *cert_store_create(const char *cert_path, const char *key_path);

/*
 * Stop the watcher and free the store. Credentials still referenced by open
 * connections are freed when the last connection releases them; stop the
 * servers that use the store first. NULL is a no-op.
 */
void cert_store_free(struct cert_store *store);

/*
 * Load the files when they changed since the last successful load. Returns
 * MM_OK when the current credentials are up to date (loaded or unchanged);
 * on error (unreadable, unparsable, key mismatch, expired) the previous
 * credentials stay in use and err says why, naming the file.
 */
enum mm_status cert_store_reload(struct cert_store *store, struct mm_error *err) MM_WUR;

/* Start (or stop) a thread that calls cert_store_reload every interval_ms, logging changes. */
void cert_store_watch_start(struct cert_store *store, unsigned interval_ms);
void cert_store_watch_stop(struct cert_store *store);

/* True once credentials have been loaded. */
bool cert_store_ready(const struct cert_store *store);

/* Serving certificate facts: unix notAfter (0 before the first load), serial into buf. */
int64_t cert_store_not_after(const struct cert_store *store);
void cert_store_serial(const struct cert_store *store, char *buf, size_t len);

/* Successful and failed reloads so far (the first load counts as a reload). */
void cert_store_reload_counts(const struct cert_store *store, uint64_t *ok, uint64_t *failed);

/*
 * One immutable set of serving credentials (chain and key), reference-counted.
 * The HTTP layer takes a reference for each TLS handshake from GnuTLS's
 * certificate callback and keeps it until the connection closes, so a reload
 * never frees credentials a handshake may still use.
 */
struct cert_creds;

/* A new reference to the credentials in use; NULL before the first successful load. */
struct cert_creds *cert_store_acquire(struct cert_store *store);

/* Drop a reference from cert_store_acquire. NULL is a no-op. Any thread. */
void cert_creds_release(struct cert_creds *creds);

/*
 * The chain and key of creds in the shape GnuTLS's retrieve callback
 * (gnutls_certificate_retrieve_function2) returns them. Borrowed: valid while
 * the caller holds its reference.
 */
void cert_creds_get(const struct cert_creds *creds, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *privkey);

#endif
