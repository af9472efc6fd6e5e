/*
 * A policy_source backed by a directory of YAML/JSON files (--policies-dir):
 * every *.yaml, *.yml and *.json file (names starting with "." skipped, so a
 * mounted ConfigMap's ..data links are not read twice), multi-document,
 * holding MeshMetric, Mesh, Namespace and Service objects (or Lists of them).
 *
 * A watcher thread polls the files' stat() facts every interval and reloads
 * the whole directory when anything changed. A reload that fails (unreadable
 * file, YAML error, a document view_builder_add rejects) keeps the last good
 * view and logs the file and document. Views are swapped atomically
 * and reference-counted, so a request keeps the one it acquired.
 */
#ifndef MM_SERVER_POLICYDIR_H
#define MM_SERVER_POLICYDIR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/source.h"
#include "core/view.h"
#include "util/error.h"

struct policydir;

/*
 * dir is copied; NULL or "" makes a source that is always ready and empty.
 * opt (copied; may be NULL) gives the system namespace and zone the views are
 * built with. Policies Kuma would reject are left out of the view, logged
 * once (when they first appear or change) and listed by view_rejections().
 * Never NULL; nothing is read yet.
 */
struct policydir *policydir_create(const char *dir, const struct view_options *opt);

/* Stop the watcher and free. Snapshots still held by callers stay valid. NULL is a no-op. */
void policydir_free(struct policydir *pd);

/*
 * Reload when anything changed since the last attempt (force: always).
 * MM_OK when the current view is up to date; otherwise the last good
 * view stays and err names the file and document ("a.yaml: document 2:
 * kind: missing or not a string").
 */
enum mm_status policydir_reload(struct policydir *pd, bool force, struct mm_error *err) MM_WUR;

/* Poll every interval_ms in a thread (logging reloads and errors); stop it. */
void policydir_watch_start(struct policydir *pd, unsigned interval_ms);
void policydir_watch_stop(struct policydir *pd);

/* The policy_source view (ctx = pd); valid while pd lives. */
struct policy_source policydir_source(struct policydir *pd);

/* Reloads that succeeded / failed so far, and the unix time of the last success (0: none; may be NULL). */
void policydir_reload_counts(const struct policydir *pd, uint64_t *ok, uint64_t *failed,
                             int64_t *last_ok);

#endif
