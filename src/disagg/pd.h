/* The PD disaggregation manager (SGLang's KVManager, KVSender, KVReceiver and bootstrap server
 * in one object per process): it knows the KV buffers, slot ids and rooms, never requests.
 *
 * Prefill side: a bootstrap HTTP server on the bootstrap port (PUT/GET /route, GET /health as
 * SGLang's, plus this build's control routes POST /kv/session and POST /kv/transfer, through
 * which a decode server hands over its segment and, per room, the slots it set aside); a sender
 * per room; a transfer thread that writes a finished prompt's KV into the decode server's
 * buffers (contiguous slot runs merged per buffer) and its aux record, then notifies.
 * Decode side: a receiver per room; an HTTP client loop that finds the prefill rank through
 * its bootstrap server, registers this process's segment once per prefill rank, sends each
 * room's slots, and sends the heartbeat; the notification (through the transfer engine, after
 * the data) ends the room.
 *
 * Threads: pd_* calls come from the scheduler thread; the HTTP loop, the transfer thread and
 * the transfer engine's progress thread change room states under one mutex and then call
 * on_change, so the scheduler can sleep until something happens. The transfer thread reads only
 * the slots handed to pd_sender_send; the scheduler keeps them until the room ends.
 * Errors: creation fails with a message (port in use, backend missing); a room that fails gets
 * KVPOLL_FAILED and a message (pd_poll). */
#ifndef SGLC_DISAGG_PD_H
#define SGLC_DISAGG_PD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SGLang's KVPoll values. */
typedef enum {
    KVPOLL_FAILED = 0,
    KVPOLL_BOOTSTRAPPING = 1,
    KVPOLL_WAITING = 2, /* WaitingForInput */
    KVPOLL_TRANSFERRING = 3,
    KVPOLL_SUCCESS = 4,
} kv_poll;

typedef enum { PD_PREFILL = 1, PD_DECODE = 2 } pd_mode;

#define PD_AUX_TOP 20 /* top logprobs carried with the first token (OpenAI's maximum) */
#define PD_FAKE_HOST "2.2.2.2" /* SGLang's FAKE_BOOTSTRAP_HOST: warm-up and health checks */

/* What prefill hands decode besides the KV: the first output token and its logprobs. */
typedef struct {
    uint64_t room;
    int64_t n_prompt, cached_tokens;
    int32_t first_token, n_top;
    float logprob;
    int32_t top_ids[PD_AUX_TOP];
    float top_lp[PD_AUX_TOP];
} pd_aux;

typedef struct {
    pd_mode mode;
    const char *backend;   /* "ucx" | "fake" (others refused by the transfer engine) */
    const char *host;      /* prefill: where the bootstrap server listens */
    const char *advertise; /* prefill: the host decode servers reach this rank at (NULL: host) */
    int bootstrap_port;
    /* the KV buffers (the array is copied): n_bufs buffers (K and V of every layer), slot s of
     * each at s * slot_bytes */
    int n_bufs;
    void **bufs;
    size_t buf_bytes, slot_bytes;
    int n_aux;             /* decode: aux records (one per request in flight) */
    double bootstrap_timeout_s, waiting_timeout_s, heartbeat_s;
    int heartbeat_max_failures;
    double failure_prob;   /* DISAGGREGATION_TEST_FAILURE_PROB */
    void (*on_change)(void *ud);
    void *ud;
} pd_opts;

typedef struct {
    int64_t transfers_ok, transfers_failed; /* prefill: rooms written, rooms that failed */
    double bytes_total, transfer_seconds_total; /* over successful transfers */
    double last_speed_gbs, last_latency_ms;
} pd_stats;

typedef struct pd_manager pd_manager;

/* Fills the defaults and the SGLANG_DISAGGREGATION_* environment variables. */
void pd_opts_default(pd_opts *o, pd_mode mode);
pd_manager *pd_create(const pd_opts *o, char *err, size_t err_len);
void pd_destroy(pd_manager *m);
int pd_bootstrap_port(const pd_manager *m);
void pd_get_stats(pd_manager *m, pd_stats *st);

/* The state of room (KVPOLL_FAILED with a message in err for an unknown room). */
kv_poll pd_poll(pd_manager *m, uint64_t room, char *err, size_t err_len);
/* Forgets a room. Refused (-1) while the transfer thread still works on it. */
int pd_drop(pd_manager *m, uint64_t room);
/* Marks a room failed (timeouts seen by the scheduler). */
void pd_fail(pd_manager *m, uint64_t room, const char *why);

/* ---- prefill side ---- */
/* A sender for room: BOOTSTRAPPING until the decode server's slots for it arrive, then
 * WAITING. -1 if the room has a sender already. (Rooms of SGLang's fake bootstrap host never
 * reach the manager: the scheduler runs them as ordinary requests.) */
int pd_sender_new(pd_manager *m, uint64_t room);
/* Slots the decode side set aside (valid in WAITING): their number. */
int64_t pd_sender_dst_tokens(pd_manager *m, uint64_t room);
/* Queues the write of slots[0..n) and aux; the room ends SUCCESS or FAILED. */
int pd_sender_send(pd_manager *m, uint64_t room, const int32_t *slots, int64_t n,
                   const pd_aux *aux);

/* The request of room ended without its KV being sent (aborted, failed): the decode server is
 * told (when it has asked for the room) and the room is forgotten. */
void pd_sender_abort(pd_manager *m, uint64_t room, const char *why);

/* ---- decode side ---- */
/* A receiver for room whose prefill server's bootstrap server is host:port: BOOTSTRAPPING
 * while the prefill rank is looked up and this segment registered, then WAITING. */
int pd_receiver_new(pd_manager *m, uint64_t room, const char *host, int port);
/* Asks prefill to write room's KV into slots[0..n) and its aux into record aux_idx. */
int pd_receiver_init(pd_manager *m, uint64_t room, const int32_t *slots, int64_t n, int aux_idx);
/* Aux record idx (read it after SUCCESS). */
const pd_aux *pd_aux_record(pd_manager *m, int idx);

#endif
