/* KV transfer engine for PD disaggregation, modelled on Mooncake's transfer engine: a process
 * registers the memory that peers may write into, publishes a segment descriptor, opens the
 * segments of its peers and submits batches of one-sided writes {local, remote, len} to them,
 * polls their completion and sends small notifications ordered after the writes.
 *
 * Backends: "ucx" (default; UCP: shared memory between processes on one host, TCP between hosts,
 * RDMA where the hardware is — UCX_TLS chooses) and "fake" (SGLang's: writes complete at once
 * without moving bytes; for warm-up and health checks). "mooncake", "nixl" and "ascend" are
 * recognised and refused: this build lacks them.
 *
 * Threads: every xfer_* function may be called from any thread. Each ucx engine owns one progress
 * thread that makes every UCX call (callers' requests are queued to it and it is woken by an
 * eventfd); when idle it blocks on the worker's event fd, waking a few times a second only while
 * peers are open so that UCX can send keepalives and notice dead peers. on_notify and
 * on_peer_fail run on that thread: they must not block, and must not call xfer_close or
 * xfer_destroy (they may call xfer_submit, xfer_notify and xfer_poll).
 *
 * Errors: functions that can fail take (err, err_len) and write one line into it. Descriptors
 * come from the network: xfer_open bounds-checks every field and a checksum before UCX sees them.
 * A peer whose process dies (kill -9) surfaces within about two seconds on one host and at once
 * over TCP (UCX keepalive, 1 s unless UCX_KEEPALIVE_INTERVAL is set): its pending and later
 * batches fail, on_peer_fail fires once. */
#ifndef SGLC_DISAGG_TRANSFER_H
#define SGLC_DISAGG_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct xfer_engine xfer_engine; /* one per process */
typedef struct xfer_peer xfer_peer;     /* a peer's opened segment */

/* One-sided write: len local bytes -> the peer's address `remote`. */
typedef struct {
    void *local;
    uint64_t remote;
    size_t len;
} xfer_write;

typedef void (*xfer_notify_fn)(const void *msg, size_t len, void *ud); /* progress thread */
typedef void (*xfer_peer_fail_fn)(xfer_peer *p, const char *why, void *ud); /* progress thread */

typedef struct {
    const char *backend; /* "ucx" (default when NULL) | "fake" */
    xfer_notify_fn on_notify;
    xfer_peer_fail_fn on_peer_fail;
    void *ud;
} xfer_opts;

#define XFER_NOTIFY_MAX 4096

/* NULL with err when the backend is unknown, not built ("transfer backend 'nixl' is not
 * available in this build (built: ucx, fake)") or UCX cannot start. */
xfer_engine *xfer_create(const xfer_opts *o, char *err, size_t err_len);
/* Stops the progress thread, closes the peers still open (their pointers become invalid) and
 * unregisters memory. */
void xfer_destroy(xfer_engine *e);
const char *xfer_backend_name(const xfer_engine *e);

/* Memory that peers may write into. It is not touched: a lazily faulted mmap(MAP_NORESERVE)
 * region stays unfaulted on shared-memory and TCP transports (RDMA NICs pin what they register).
 * Regions must not overlap. */
int xfer_register(xfer_engine *e, void *addr, size_t len, char *err, size_t err_len);
/* Our segment descriptor: opaque bytes (worker address + every registered region's base,
 * length, packed rkey) a peer needs to write into our regions and notify us. malloc'd, caller
 * frees. Call after all xfer_register calls. */
int xfer_segment_desc(xfer_engine *e, void **desc, size_t *len, char *err, size_t err_len);
/* Opens a peer's segment from its descriptor (validated). NULL with err on bad input. */
xfer_peer *xfer_open(xfer_engine *e, const void *desc, size_t len, char *err, size_t err_len);
/* Closes the peer: pending batches fail, callbacks for it stop; p is invalid afterwards. */
void xfer_close(xfer_peer *p);

/* Submits n writes as one batch; every remote range must lie inside one of the peer's regions
 * (checked: -1 with err otherwise). Returns a batch id >= 0, or -1. Does not block on the
 * transfer. The local bytes must stay unchanged until the batch is done or failed. */
int64_t xfer_submit(xfer_peer *p, const xfer_write *w, size_t n, char *err, size_t err_len);
/* 0 pending, 1 done (all bytes are written remotely), -1 failed (err). A batch is forgotten
 * once it has been polled (or waited) as done or failed; polling it again is an error. */
int xfer_poll(xfer_peer *p, int64_t batch, char *err, size_t err_len);
/* Blocks up to timeout_ms for the batch: 1 done, 0 timeout, -1 failed. */
int xfer_wait(xfer_peer *p, int64_t batch, int timeout_ms, char *err, size_t err_len);
/* Sends a message (<= XFER_NOTIFY_MAX bytes) that the peer's on_notify receives strictly after
 * every write submitted before it on this peer is visible there. Queued without blocking;
 * 0, or -1 (too long, peer failed). */
int xfer_notify(xfer_peer *p, const void *msg, size_t len, char *err, size_t err_len);
bool xfer_peer_failed(const xfer_peer *p);
/* One line naming the transports UCX chose for this peer (for logs and benchmarks). */
void xfer_peer_transports(xfer_peer *p, char *buf, size_t len);

/* ---- Backend seam: for transfer.c and its backends only. ---------------------------------- */
typedef struct xfer_backend xfer_backend;
/* The first member of every backend's engine and peer. */
struct xfer_engine {
    const xfer_backend *be;
};
struct xfer_peer {
    const xfer_backend *be;
    xfer_engine *e;
};
struct xfer_backend {
    const char *name;
    xfer_engine *(*create)(const xfer_opts *o, char *err, size_t err_len);
    void (*destroy)(xfer_engine *e);
    int (*reg)(xfer_engine *e, void *addr, size_t len, char *err, size_t err_len);
    int (*desc)(xfer_engine *e, void **desc, size_t *len, char *err, size_t err_len);
    xfer_peer *(*open)(xfer_engine *e, const void *desc, size_t len, char *err, size_t err_len);
    void (*close)(xfer_peer *p);
    int64_t (*submit)(xfer_peer *p, const xfer_write *w, size_t n, char *err, size_t err_len);
    int (*poll)(xfer_peer *p, int64_t batch, int timeout_ms, char *err, size_t err_len);
    int (*notify)(xfer_peer *p, const void *msg, size_t len, char *err, size_t err_len);
    bool (*failed)(const xfer_peer *p);
    void (*transports)(xfer_peer *p, char *buf, size_t len);
};
extern const xfer_backend xfer_backend_ucx;

/* Descriptor wire format shared by the backends (little-endian):
 *   u32 magic "SGXF", u16 version 1, u16 backend id, u32 n_regions, u32 addr_len,
 *   u64 engine tag, u64 checksum (FNV-1a of everything after it),
 *   addr_len bytes of worker address, then per region: u64 base, u64 len, u32 rkey_len, rkey. */
enum { XFER_DESC_UCX = 1, XFER_DESC_FAKE = 2 };
typedef struct {
    uint64_t base, len;
    const void *rkey;
    uint32_t rkey_len;
} xfer_desc_region;
typedef struct {
    int backend;
    uint64_t tag;
    const void *addr;
    uint32_t addr_len;
    uint32_t n_regions;
    xfer_desc_region *regions; /* malloc'd, sorted by base; points into the descriptor bytes */
} xfer_desc;
/* Builds a descriptor; malloc'd into *out. */
int xfer_desc_encode(int backend, uint64_t tag, const void *addr, uint32_t addr_len,
                     const xfer_desc_region *r, uint32_t n, void **out, size_t *out_len,
                     char *err, size_t err_len);
/* Parses and validates; d->regions must be freed with free(). Regions come back sorted and
 * non-overlapping (else an error). */
int xfer_desc_decode(const void *buf, size_t len, xfer_desc *d, char *err, size_t err_len);
/* Index of the region holding [addr, addr+len), or -1. */
int64_t xfer_desc_find(const xfer_desc_region *r, uint32_t n, uint64_t addr, uint64_t len);

#endif
