/* What the files of the PD manager share (pd.c: rooms, creation, the scheduler's calls;
 * pd_prefill.c: bootstrap server, sessions, transfer thread; pd_decode.c: the receiver's HTTP
 * flows, heartbeat, notifications). Not a public interface. Every field marked "mu" is read and
 * written under pd_manager.mu. */
#ifndef SGLC_DISAGG_PD_INTERNAL_H
#define SGLC_DISAGG_PD_INTERNAL_H

#include <pthread.h>

#include "disagg/pd.h"
#include "disagg/transfer.h"
#include "http/http_server.h"

#define PD_BUCKETS 1024
#define PD_NOTE_MAGIC 0x50444b56u /* "PDKV" */

/* The notification prefill sends decode after a room's data (or instead of it, on failure). */
typedef struct {
    uint32_t magic, status; /* KVPOLL_SUCCESS or KVPOLL_FAILED */
    uint64_t room;
    char msg[200];
} pd_note;

/* prefill: one decode process that registered its segment */
typedef struct pd_session {
    struct pd_session *next;
    uint64_t id;
    xfer_peer *peer;
    int n_bufs;
    uint64_t *bases; /* [n_bufs] */
    size_t buf_bytes;
    uint64_t aux_base;
    int n_aux;
    int refs; /* mu: rooms and transfer jobs using it */
    bool dead; /* mu */
} pd_session;

/* decode: one prefill server, by its bootstrap address */
typedef enum { TARGET_UNKNOWN, TARGET_RESOLVING, TARGET_READY } pd_target_state;
typedef struct pd_target {
    struct pd_target *next;
    char host[256];
    int port;
    char rank_url[320]; /* http://rank_ip:rank_port, once resolved */
    pd_target_state state; /* loop thread */
    int misses;            /* loop thread: heartbeats missed in a row */
    bool hb_inflight;      /* loop thread */
} pd_target;

typedef struct pd_room {
    struct pd_room *next;
    uint64_t room;
    kv_poll state;
    char err[256];
    double t_created;
    bool has_sender; /* prefill: the request arrived (else only decode's slots did) */
    bool busy;       /* prefill: the transfer thread works on it */
    /* prefill: where decode wants the data */
    pd_session *session;
    int32_t *dst;
    int64_t n_dst;
    int aux_idx;
    /* decode */
    pd_target *target;
} pd_room;

typedef struct pd_job {
    struct pd_job *next;
    uint64_t room;
    int32_t *src;
    int64_t n;
    pd_aux aux;
    bool abort; /* no data: tell decode the room failed (why), then forget it */
    char why[200];
} pd_job;

struct pd_manager {
    pd_opts o;
    char *host, *advertise, *backend;
    pthread_mutex_t mu;
    pd_room *rooms[PD_BUCKETS]; /* mu */
    xfer_engine *xe;
    http_server *http; /* prefill: the bootstrap server; decode: the client's loop */
    struct event *timer; /* loop thread: heartbeat (decode) / garbage collection (prefill) */
    pd_stats stats;     /* mu */
    uint64_t rng;       /* mu */
    /* prefill */
    pd_session *sessions; /* mu */
    char rank_ip[256];    /* mu: registered through PUT /route */
    int rank_port;
    pthread_t thread;
    bool thread_started, stop; /* stop: mu */
    pthread_cond_t job_cv;
    pd_job *jobs_head, *jobs_tail; /* mu */
    /* decode */
    pd_aux *aux; /* n_aux records, registered with the transfer engine */
    size_t aux_map_bytes;
    uint64_t session_id;
    char *desc_b64;
    pd_target *targets; /* mu (the list); entries' loop-thread fields as marked */
};

/* pd.c */
pd_room *pd_room_find(pd_manager *m, uint64_t room);       /* mu held */
pd_room *pd_room_add(pd_manager *m, uint64_t room);        /* mu held; NULL when out of memory */
void pd_room_set_failed(pd_room *r, const char *fmt, ...)  /* mu held */
    __attribute__((format(printf, 2, 3)));
void pd_changed(pd_manager *m);                            /* no lock held */
void pd_session_unref(pd_manager *m, pd_session *s);       /* mu held */

/* pd_prefill.c */
int pd_prefill_start(pd_manager *m, char *err, size_t err_len);
void pd_prefill_stop(pd_manager *m);
void pd_prefill_peer_failed(pd_manager *m, xfer_peer *p, const char *why);

/* pd_decode.c */
int pd_decode_start(pd_manager *m, char *err, size_t err_len);
void pd_decode_on_note(pd_manager *m, const void *msg, size_t len);
void pd_decode_resolve(pd_manager *m, uint64_t room); /* any thread: posts to the loop */
int pd_decode_send_slots(pd_manager *m, uint64_t room, const int32_t *slots, int64_t n,
                         int aux_idx);

#endif
