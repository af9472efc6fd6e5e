/*
 * --manage-webhook-certs: the operator's own webhook certificates, kept in one
 * Secret (type kubernetes.io/tls) and trusted through the caBundle of our
 * Mutating and Validating webhook configurations. See docs/webhook-certs.md.
 *
 * The Secret holds
 *   tls.crt, tls.key    the serving certificate (ECDSA P-256) and its key;
 *   ca.crt, ca.key      the CA that signs serving certificates;
 *   ca-previous.crt     only during a CA rotation: the CA being retired
 *                       (certificate only, its key is gone), still trusted.
 * The webhook configurations trust ca.crt plus ca-previous.crt while it is there.
 *
 * Who does what:
 *  - the acting replica (is_leader() true, or always without leader election)
 *    creates the Secret when absent, repairs it when unusable, rotates before
 *    expiry and writes the caBundles. Every write is conditional (create, or
 *    update/patch with the resourceVersion it read): a 409 or a failed test is
 *    re-read and decided again, so two replicas acting at once converge on
 *    one certificate and never overwrite each other's fresh one;
 *  - every replica watches the Secret (a reflector with fieldSelector
 *    metadata.name=<secret>) and writes tls.crt/tls.key to the files the
 *    HTTPS server reloads (server/certstore.h), so a rotation needs no restart.
 *
 * A CA rotation is staged so the API server never meets a serving certificate
 * it does not trust: (1) a new CA becomes ca.crt, the old one moves to
 * ca-previous.crt and the serving certificate is kept; the caBundles get both;
 * (2) once every configuration has trusted the new CA for propagation_s, the
 * serving certificate is reissued by the new CA; (3) ca_overlap_s after that
 * certificate's notBefore, ca-previous.crt is dropped and the caBundles follow.
 *
 * The decisions are pure functions (webhookcerts_decide, _wanted_bundle,
 * _bundle_patch), tested without a server; the rest is I/O around them.
 * Secrets and keys are never logged: only serials, times and reasons.
 */
#ifndef MM_OPERATOR_WEBHOOKCERTS_H
#define MM_OPERATOR_WEBHOOKCERTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/client.h"
#include "tls/tls.h"
#include "util/error.h"

#define WEBHOOKCERTS_DEFAULT_SECRET "meshmetric-operator-webhook-tls"
#define WEBHOOKCERTS_DEFAULT_SERVICE "meshmetric-operator"
#define WEBHOOKCERTS_DEFAULT_WEBHOOK "meshmetric-operator"
#define WEBHOOKCERTS_DEFAULT_CERT_DIR "/tmp/k8s-webhook-server/serving-certs"

/* Secret data keys. */
#define WEBHOOKCERTS_TLS_CRT "tls.crt"
#define WEBHOOKCERTS_TLS_KEY "tls.key"
#define WEBHOOKCERTS_CA_CRT "ca.crt"
#define WEBHOOKCERTS_CA_KEY "ca.key"
#define WEBHOOKCERTS_CA_PREVIOUS "ca-previous.crt"

struct webhookcerts_config {
    const char *namespace;       /* the operator's namespace: Secret and Service (required) */
    const char *secret_name;     /* WEBHOOKCERTS_DEFAULT_SECRET */
    const char *service_name;    /* WEBHOOKCERTS_DEFAULT_SERVICE: SANs <svc>, <svc>.<ns>,
                                    <svc>.<ns>.svc, <svc>.<ns>.svc.cluster.local */
    const char *mutating_name;   /* MutatingWebhookConfiguration; NULL or "": none managed */
    const char *validating_name; /* ValidatingWebhookConfiguration; NULL or "": none managed */
    const char *cert_path;       /* the file the HTTPS server reads (serve --tls-cert-file) */
    const char *key_path;        /* its key (serve --tls-key-file) */
    int64_t ca_validity_s;       /* 10 years (3650 days) */
    int64_t serving_validity_s;  /* 1 year (365 days); clamped to the CA's notAfter */
    int64_t rotate_divisor;      /* 3: rotate when less than lifetime/3 is left (CA and serving) */
    int64_t propagation_s;       /* 60: how long every caBundle must have trusted a new CA
                                    before serving certificates signed by it */
    int64_t ca_overlap_s;        /* 86400: how long the retired CA stays trusted after the
                                    serving certificate moved to the new one */
    uint64_t resync_ms;          /* 60000: re-check this often even without events */
    /* NULL: this process always acts. Called from the manager's thread. */
    bool (*is_leader)(void *ctx);
    void *leader_ctx;
    /* NULL: time(NULL). Unix seconds; for tests. */
    int64_t (*now)(void *ctx);
    void *now_ctx;
};

/* The defaults above; namespace NULL (the caller sets it), paths under the default cert dir. */
void webhookcerts_config_init(struct webhookcerts_config *cfg);

/*
 * Check cfg: namespace and names set and DNS-1123 shaped, validities > 0 and
 * the serving one not above the CA's, rotate_divisor >= 2, paths set.
 * MM_ERR_INVALID naming the field.
 */
enum mm_status webhookcerts_config_validate(const struct webhookcerts_config *cfg,
                                            struct mm_error *err) MM_WUR;

/* ---- pure decisions ---- */

enum webhookcerts_action {
    WEBHOOKCERTS_KEEP = 0,       /* nothing to write */
    WEBHOOKCERTS_CREATE,         /* no Secret: new CA and serving certificate */
    WEBHOOKCERTS_REPAIR,         /* the CA is unusable: regenerate everything */
    WEBHOOKCERTS_REPAIR_SERVING, /* the CA is fine, the serving certificate is not: reissue it */
    WEBHOOKCERTS_ROTATE_SERVING, /* less than lifetime/divisor left, or the staged switch to a new
                                    CA */
    WEBHOOKCERTS_ROTATE_CA, /* less than lifetime/divisor of the CA left: start a CA rotation */
    WEBHOOKCERTS_DROP_PREVIOUS_CA, /* the overlap is over (or ca-previous.crt is unusable) */
};

/* "keep", "create", "repair", "repair-serving", "rotate-serving", "rotate-ca", "drop-previous-ca".
 */
const char *webhookcerts_action_name(enum webhookcerts_action a);

struct webhookcerts_decision {
    enum webhookcerts_action action;
    char reason[400];   /* one sentence for the log, naming the key and the problem */
    int64_t next_check; /* KEEP: the unix time at which the decision changes by itself (a
                           rotation becomes due, the overlap ends); 0: not time-bound */
};

/*
 * Decide what the Secret needs at now. secret is the Secret object as read
 * (NULL: it does not exist; borrowed). trusted_since is the time since which
 * every managed webhook configuration is known to trust the Secret's current
 * ca.crt (0: not known); it gates only the staged switch to a new CA.
 *
 * Rules, first match wins:
 *  1. no Secret                                              -> create
 *  2. ca.crt/ca.key missing, not base64, not PEM, key mismatch,
 *     not a CA, expired                                      -> repair (reason)
 *  3. tls.crt/tls.key missing, unparsable, key mismatch, expired,
 *     SANs not exactly the service's four names, signed neither
 *     by ca.crt nor by ca-previous.crt                       -> repair-serving (reason)
 *  4. tls.crt signed by ca-previous.crt (a CA rotation in progress):
 *     rotate-serving once trusted_since + propagation_s <= now, else keep
 *  5. less than 1/divisor of the CA's lifetime left           -> rotate-ca
 *  6. less than 1/divisor of the serving lifetime left        -> rotate-serving
 *  7. ca-previous.crt unparsable, expired, or tls.crt's
 *     notBefore + ca_overlap_s <= now                        -> drop-previous-ca
 *  8. otherwise keep, next_check = the earliest time 5-7 become due.
 * Lifetime is notAfter - notBefore of the certificate itself.
 */
void webhookcerts_decide(const struct webhookcerts_config *cfg, const json_t *secret, int64_t now,
                         int64_t trusted_since, struct webhookcerts_decision *out);

/*
 * The caBundle (PEM) the webhook configurations should carry for secret:
 * ca.crt, then ca-previous.crt when present, parsable and not expired at now.
 * NULL when the Secret has no parsable ca.crt. Caller frees.
 */
char *webhookcerts_wanted_bundle(const json_t *secret, int64_t now);

/*
 * Whether two PEM texts hold the same set of certificates (DER compared;
 * order, line wrapping, duplicates and text outside the PEM blocks do not
 * matter). A block that is not a CERTIFICATE or does not decode makes the
 * text unequal to anything (so a damaged bundle is rewritten).
 */
bool webhookcerts_pem_set_equal(const char *a, size_t alen, const char *b, size_t blen);

/*
 * The JSON patch that makes every entry of whc's webhooks[] whose
 * clientConfig.service is ns/svc carry caBundle = base64(wanted_pem), or
 * NULL when they all already hold that set of certificates (compared with
 * webhookcerts_pem_set_equal, so equal bundles are never rewritten). The
 * patch starts with a test of /metadata/resourceVersion, then one "add" of
 * /webhooks/<i>/clientConfig/caBundle per stale entry. *matched (may be NULL)
 * gets the number of entries for ns/svc. whc is borrowed; caller decrefs.
 */
json_t *webhookcerts_bundle_patch(const json_t *whc, const char *ns, const char *svc,
                                  const char *wanted_pem, size_t *matched);

/* ---- certificates and the Secret (not pure: they make keys) ---- */

/*
 * A CA valid from now - min(300 s, validity/10) to now + ca_validity_s, CN
 * "<service>-webhook-ca@<now>" (every CA gets its own name). ECDSA P-256.
 * out is filled (caller cleans up). MM_ERR_TLS on OpenSSL failure.
 */
enum mm_status webhookcerts_issue_ca(const struct webhookcerts_config *cfg, int64_t now,
                                     struct tls_pem_pair *out, struct mm_error *err) MM_WUR;

/*
 * A serving certificate for the service's four DNS names (CN
 * <svc>.<ns>.svc) signed by ca (borrowed), valid from now - min(300 s,
 * validity/10) to min(now + serving_validity_s, the CA's notAfter).
 */
enum mm_status webhookcerts_issue_serving(const struct webhookcerts_config *cfg,
                                          const struct tls_pem_pair *ca, int64_t now,
                                          struct tls_pem_pair *out, struct mm_error *err) MM_WUR;

/*
 * The Secret to write for action over secret (NULL when absent; borrowed):
 * a new object (create: apiVersion, kind, metadata name/namespace/labels,
 * type kubernetes.io/tls) or a copy of secret with its metadata, including
 * resourceVersion, kept and data replaced. *out: caller decrefs.
 * MM_ERR_INVALID for KEEP or an action the Secret cannot support (e.g.
 * rotate-serving without a usable CA).
 */
enum mm_status webhookcerts_secret_build(const struct webhookcerts_config *cfg,
                                         const json_t *secret, enum webhookcerts_action action,
                                         int64_t now, json_t **out, struct mm_error *err) MM_WUR;

/*
 * Write a serving pair to cert_path and key_path (parent directories made,
 * 0755): both contents go to temporary files next to their targets (0644 and
 * 0600, fsynced) before the two renames, certificate first, back to back, so
 * a reader sees a mixed pair only inside that window of microseconds (and
 * server/certstore.c then keeps its previous credentials and retries at its
 * next poll). MM_ERR_IO naming the path.
 */
enum mm_status webhookcerts_write_pair(const char *cert_path, const char *cert, size_t cert_len,
                                       const char *key_path, const char *key, size_t key_len,
                                       struct mm_error *err) MM_WUR;

/* ---- the manager ---- */

struct webhookcerts;

/*
 * Validate cfg and make a manager (strings copied; client borrowed: it must
 * outlive the manager). Nothing runs until webhookcerts_start().
 */
enum mm_status webhookcerts_create(struct k8s_client *client, const struct webhookcerts_config *cfg,
                                   struct webhookcerts **out, struct mm_error *err) MM_WUR;

/*
 * Start the Secret reflector and the manager thread. The thread runs a pass at
 * once, then on every Secret event, on webhookcerts_kick(), when a rotation
 * or the end of an overlap becomes due, and every resync_ms: when acting,
 * Secret (read, decide, conditional write) and caBundles; always, the files.
 * MM_ERR_INVALID when already started; MM_ERR_INTERNAL when no thread.
 */
enum mm_status webhookcerts_start(struct webhookcerts *wc, struct mm_error *err) MM_WUR;

/* Stop the thread and the reflector (within about a second). Idempotent. */
void webhookcerts_stop(struct webhookcerts *wc);
/* Stop if running, then free. NULL is a no-op. */
void webhookcerts_free(struct webhookcerts *wc);

/* Run a pass now (e.g. from on_started_leading). Safe from any thread. */
void webhookcerts_kick(struct webhookcerts *wc);

/*
 * One pass in the calling thread, without the reflector: when acting, the
 * Secret and the caBundles, then the files from the Secret as read. For
 * tests and one-shot use; do not call while the manager is started.
 * Returns the first error met (the pass goes on after it where it can).
 */
enum mm_status webhookcerts_reconcile(struct webhookcerts *wc, struct mm_error *err) MM_WUR;

/* True once the files hold the Secret's serving pair (written or found equal). Any thread. */
bool webhookcerts_ready(const struct webhookcerts *wc);
/* Wait until ready or timeout_ms passed; returns webhookcerts_ready(). */
bool webhookcerts_wait_ready(struct webhookcerts *wc, uint64_t timeout_ms);

/* Counters for /metrics. */
struct webhookcerts_stats {
    uint64_t passes;           /* manager passes */
    uint64_t creations;        /* Secrets created by this process */
    uint64_t repairs;          /* repair + repair-serving written */
    uint64_t rotations;        /* rotate-serving written (the staged switch included) */
    uint64_t ca_rotations;     /* rotate-ca written */
    uint64_t previous_dropped; /* drop-previous-ca written */
    uint64_t bundle_updates;   /* webhook configurations patched */
    uint64_t conflicts;        /* 409s and failed resourceVersion tests (re-read, decided again) */
    uint64_t errors;           /* failed requests, unusable Secrets seen, failed file writes */
    uint64_t file_writes;      /* serving pairs written to the files */
    int64_t not_after;         /* notAfter of the serving certificate in the files; 0: none yet */
    int64_t ca_not_after;      /* notAfter of the CA that signed it; 0: none yet */
    bool ready;
};
void webhookcerts_stats(const struct webhookcerts *wc, struct webhookcerts_stats *out);

#endif
