/*
 * Internal to src/k8s: the streaming transfer under k8s_watch(). Not for use
 * outside the folder.
 */
#ifndef MM_K8S_REQUEST_H
#define MM_K8S_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/cancel.h"
#include "k8s/client.h"
#include "k8s/status.h"

/*
 * Receives the body of a 2xx streaming answer as it arrives, in chunks of
 * any size. A non-MM_OK return aborts the transfer; k8s_client_stream then
 * returns that status and leaves err to the sink.
 */
typedef enum mm_status (*k8s_sink_fn)(void *ctx, const char *data, size_t len);

struct k8s_stream_opts {
    struct k8s_cancel *cancel; /* fired: MM_ERR_CANCELLED within ~1 s */
    uint64_t deadline_ms;      /* k8s_clock_ms() value; reached: the stream ends, MM_OK; 0: none */
    long idle_timeout_s;       /* < 1 byte/s for this long ends the stream, MM_OK; 0: 300 s */
    long max_time_ms;          /* hard cap on the whole transfer; 0: none */
    /* Called once when a 2xx answer's headers are in, before any body byte: the stream is
     * open (a quiet watch sends nothing for minutes). NULL: not called. */
    void (*on_open)(void *ctx);
    void *open_ctx;
};

/*
 * GET path_query and stream a 2xx body to sink. Returns MM_OK when the server
 * ended the stream, or the deadline or idle timeout ended it (*ended_early,
 * may be NULL, tells those apart); the decoded error for a non-2xx answer;
 * MM_ERR_RETRY/TLS for transport failures; MM_ERR_CANCELLED.
 */
enum mm_status k8s_client_stream(struct k8s_client *c, const char *path_query,
                                 const struct k8s_stream_opts *so, k8s_sink_fn sink, void *ctx,
                                 bool *ended_early, struct k8s_error *err) MM_WUR;

#endif
