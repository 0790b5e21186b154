/* The transfer engine's front: picks a backend by name, forwards calls to it, and holds what the
 * backends share — the segment descriptor codec and the `fake` backend.
 *
 * The fake backend is SGLang's: used for warm-up and health checks, where no decode server
 * exists. Register, descriptors and open work as with UCX (descriptors carry the regions, so
 * submit still bounds-checks), a submitted batch is done at once and writes nothing. A notify goes
 * to the fake engine that made the descriptor when that engine lives in this process (on the
 * caller's thread, synchronously); otherwise it is dropped. Fake and UCX descriptors do not mix:
 * opening one with the other kind of engine is an error. */
#include "disagg/transfer.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* ---- descriptor codec ---------------------------------------------------------------------- */

#define DESC_MAGIC 0x46584753u /* "SGXF" */
#define DESC_VERSION 1
#define DESC_HDR 32
#define DESC_MAX_REGIONS (1u << 20)
#define DESC_MAX_BLOB (1u << 20)

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int xfer_desc_encode(int backend, uint64_t tag, const void *addr, uint32_t addr_len,
                     const xfer_desc_region *r, uint32_t n, void **out, size_t *out_len,
                     char *err, size_t err_len) {
    if (n > DESC_MAX_REGIONS || addr_len > DESC_MAX_BLOB) {
        set_err(err, err_len, "segment descriptor too large (%u regions)", n);
        return -1;
    }
    size_t total = DESC_HDR + (size_t)addr_len;
    for (uint32_t i = 0; i < n; i++) {
        if (r[i].rkey_len > DESC_MAX_BLOB) {
            set_err(err, err_len, "packed rkey too large (%u bytes)", r[i].rkey_len);
            return -1;
        }
        total += 20 + (size_t)r[i].rkey_len;
    }
    uint8_t *b = malloc(total);
    if (!b) {
        set_err(err, err_len, "out of memory for a %zu-byte descriptor", total);
        return -1;
    }
    put_u32(b, DESC_MAGIC);
    put_u16(b + 4, DESC_VERSION);
    put_u16(b + 6, (uint16_t)backend);
    put_u32(b + 8, n);
    put_u32(b + 12, addr_len);
    put_u64(b + 16, tag);
    size_t o = DESC_HDR;
    if (addr_len) memcpy(b + o, addr, addr_len);
    o += addr_len;
    for (uint32_t i = 0; i < n; i++) {
        put_u64(b + o, r[i].base);
        put_u64(b + o + 8, r[i].len);
        put_u32(b + o + 16, r[i].rkey_len);
        o += 20;
        if (r[i].rkey_len) memcpy(b + o, r[i].rkey, r[i].rkey_len);
        o += r[i].rkey_len;
    }
    put_u64(b + 24, fnv1a(b + DESC_HDR, total - DESC_HDR) ^ fnv1a(b, 24));
    *out = b;
    *out_len = total;
    return 0;
}

static int cmp_region(const void *a, const void *b) {
    const xfer_desc_region *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

int xfer_desc_decode(const void *buf, size_t len, xfer_desc *d, char *err, size_t err_len) {
    memset(d, 0, sizeof *d);
    const uint8_t *b = buf;
    if (!b || len < DESC_HDR) {
        set_err(err, err_len, "segment descriptor truncated (%zu bytes)", len);
        return -1;
    }
    if (get_u32(b) != DESC_MAGIC) {
        set_err(err, err_len, "not a segment descriptor (bad magic)");
        return -1;
    }
    if (get_u16(b + 4) != DESC_VERSION) {
        set_err(err, err_len, "segment descriptor version %u not supported", get_u16(b + 4));
        return -1;
    }
    if (get_u64(b + 24) != (fnv1a(b + DESC_HDR, len - DESC_HDR) ^ fnv1a(b, 24))) {
        set_err(err, err_len, "segment descriptor corrupt or truncated (checksum mismatch)");
        return -1;
    }
    d->backend = get_u16(b + 6);
    d->n_regions = get_u32(b + 8);
    d->addr_len = get_u32(b + 12);
    d->tag = get_u64(b + 16);
    if (d->backend != XFER_DESC_UCX && d->backend != XFER_DESC_FAKE) {
        set_err(err, err_len, "segment descriptor names unknown backend %d", d->backend);
        return -1;
    }
    if (d->n_regions > DESC_MAX_REGIONS || d->addr_len > len - DESC_HDR) {
        set_err(err, err_len, "segment descriptor header out of bounds");
        return -1;
    }
    size_t o = DESC_HDR;
    d->addr = b + o;
    o += d->addr_len;
    if (d->n_regions && (len - o) / 20 < d->n_regions) {
        set_err(err, err_len, "segment descriptor truncated (%u regions)", d->n_regions);
        return -1;
    }
    d->regions = calloc(d->n_regions ? d->n_regions : 1, sizeof *d->regions);
    if (!d->regions) {
        set_err(err, err_len, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < d->n_regions; i++) {
        if (len - o < 20) goto trunc;
        xfer_desc_region *r = &d->regions[i];
        r->base = get_u64(b + o);
        r->len = get_u64(b + o + 8);
        r->rkey_len = get_u32(b + o + 16);
        o += 20;
        if (r->rkey_len > len - o) goto trunc;
        r->rkey = b + o;
        o += r->rkey_len;
        if (r->len == 0 || r->base + r->len < r->base) {
            set_err(err, err_len, "segment descriptor region %u is empty or wraps", i);
            goto fail;
        }
    }
    if (o != len) {
        set_err(err, err_len, "segment descriptor has %zu trailing bytes", len - o);
        goto fail;
    }
    qsort(d->regions, d->n_regions, sizeof *d->regions, cmp_region);
    for (uint32_t i = 1; i < d->n_regions; i++)
        if (d->regions[i - 1].base + d->regions[i - 1].len > d->regions[i].base) {
            set_err(err, err_len, "segment descriptor regions overlap");
            goto fail;
        }
    return 0;
trunc:
    set_err(err, err_len, "segment descriptor truncated");
fail:
    free(d->regions);
    d->regions = NULL;
    return -1;
}

int64_t xfer_desc_find(const xfer_desc_region *r, uint32_t n, uint64_t addr, uint64_t len) {
    /* last region with base <= addr */
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r[mid].base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return -1;
    const xfer_desc_region *g = &r[lo - 1];
    uint64_t off = addr - g->base;
    if (off >= g->len || len > g->len - off) return -1;
    return lo - 1;
}

/* ---- fake backend ------------------------------------------------------------------------- */

typedef struct fake_engine {
    xfer_engine base;
    xfer_opts opts;
    uint64_t tag;
    xfer_desc_region *regions;
    uint32_t n_regions;
    struct fake_engine *next; /* process-wide list, for local notifies */
} fake_engine;

typedef struct {
    xfer_peer base;
    xfer_desc d;
    uint64_t tag;
    pthread_mutex_t mu;
    int64_t next_batch;
} fake_peer;

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static fake_engine *fake_list;
static uint64_t fake_next_tag = 1;

static const xfer_backend fake_backend;

static xfer_engine *fake_create(const xfer_opts *o, char *err, size_t err_len) {
    fake_engine *e = calloc(1, sizeof *e);
    if (!e) {
        set_err(err, err_len, "out of memory");
        return NULL;
    }
    e->base.be = &fake_backend;
    e->opts = *o;
    pthread_mutex_lock(&fake_mu);
    e->tag = fake_next_tag++;
    e->next = fake_list;
    fake_list = e;
    pthread_mutex_unlock(&fake_mu);
    return &e->base;
}

static void fake_destroy(xfer_engine *xe) {
    fake_engine *e = (fake_engine *)xe;
    pthread_mutex_lock(&fake_mu);
    for (fake_engine **pp = &fake_list; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    pthread_mutex_unlock(&fake_mu);
    free(e->regions);
    free(e);
}

static int fake_reg(xfer_engine *xe, void *addr, size_t len, char *err, size_t err_len) {
    fake_engine *e = (fake_engine *)xe;
    xfer_desc_region *r = realloc(e->regions, (e->n_regions + 1) * sizeof *r);
    if (!r) {
        set_err(err, err_len, "out of memory");
        return -1;
    }
    e->regions = r;
    r[e->n_regions++] = (xfer_desc_region){.base = (uintptr_t)addr, .len = len};
    return 0;
}

static int fake_desc(xfer_engine *xe, void **desc, size_t *len, char *err, size_t err_len) {
    fake_engine *e = (fake_engine *)xe;
    return xfer_desc_encode(XFER_DESC_FAKE, e->tag, NULL, 0, e->regions, e->n_regions, desc, len,
                            err, err_len);
}

static xfer_peer *fake_open(xfer_engine *e, const void *desc, size_t len, char *err,
                            size_t err_len) {
    fake_peer *p = calloc(1, sizeof *p);
    if (!p) {
        set_err(err, err_len, "out of memory");
        return NULL;
    }
    if (xfer_desc_decode(desc, len, &p->d, err, err_len) < 0) {
        free(p);
        return NULL;
    }
    if (p->d.backend != XFER_DESC_FAKE) {
        set_err(err, err_len, "segment descriptor is for backend 'ucx', this engine is 'fake'");
        free(p->d.regions);
        free(p);
        return NULL;
    }
    p->base.be = &fake_backend;
    p->base.e = e;
    p->tag = p->d.tag;
    pthread_mutex_init(&p->mu, NULL);
    return &p->base;
}

static void fake_close(xfer_peer *xp) {
    fake_peer *p = (fake_peer *)xp;
    pthread_mutex_destroy(&p->mu);
    free(p->d.regions);
    free(p);
}

static int64_t fake_submit(xfer_peer *xp, const xfer_write *w, size_t n, char *err,
                           size_t err_len) {
    fake_peer *p = (fake_peer *)xp;
    for (size_t i = 0; i < n; i++)
        if (xfer_desc_find(p->d.regions, p->d.n_regions, w[i].remote, w[i].len) < 0) {
            set_err(err, err_len, "write %zu: remote range [%#llx, +%zu) is outside the peer's regions",
                    i, (unsigned long long)w[i].remote, w[i].len);
            return -1;
        }
    pthread_mutex_lock(&p->mu);
    int64_t id = p->next_batch++;
    pthread_mutex_unlock(&p->mu);
    return id;
}

static int fake_poll(xfer_peer *xp, int64_t batch, int timeout_ms, char *err, size_t err_len) {
    (void)timeout_ms;
    fake_peer *p = (fake_peer *)xp;
    pthread_mutex_lock(&p->mu);
    int64_t next = p->next_batch;
    pthread_mutex_unlock(&p->mu);
    if (batch < 0 || batch >= next) {
        set_err(err, err_len, "unknown batch %lld", (long long)batch);
        return -1;
    }
    return 1;
}

static int fake_notify(xfer_peer *xp, const void *msg, size_t len, char *err, size_t err_len) {
    (void)err, (void)err_len;
    fake_peer *p = (fake_peer *)xp;
    xfer_notify_fn fn = NULL;
    void *ud = NULL;
    pthread_mutex_lock(&fake_mu);
    for (fake_engine *e = fake_list; e; e = e->next)
        if (e->tag == p->tag) fn = e->opts.on_notify, ud = e->opts.ud;
    pthread_mutex_unlock(&fake_mu);
    if (fn) fn(msg, len, ud);
    return 0;
}

static bool fake_failed(const xfer_peer *p) {
    (void)p;
    return false;
}

static void fake_transports(xfer_peer *p, char *buf, size_t len) {
    (void)p;
    snprintf(buf, len, "fake (no data moved)");
}

static const xfer_backend fake_backend = {
    .name = "fake",
    .create = fake_create,
    .destroy = fake_destroy,
    .reg = fake_reg,
    .desc = fake_desc,
    .open = fake_open,
    .close = fake_close,
    .submit = fake_submit,
    .poll = fake_poll,
    .notify = fake_notify,
    .failed = fake_failed,
    .transports = fake_transports,
};

/* ---- dispatch ----------------------------------------------------------------------------- */

xfer_engine *xfer_create(const xfer_opts *o, char *err, size_t err_len) {
    xfer_opts def = {0};
    if (!o) o = &def;
    const char *name = o->backend ? o->backend : "ucx";
#ifdef SGLC_HAVE_UCX
    if (!strcmp(name, "ucx")) return xfer_backend_ucx.create(o, err, err_len);
#define BUILT "ucx, fake"
#else
#define BUILT "fake"
#endif
    if (!strcmp(name, "fake")) return fake_backend.create(o, err, err_len);
    if (!strcmp(name, "mooncake") || !strcmp(name, "nixl") || !strcmp(name, "ascend") ||
        !strcmp(name, "ucx")) {
        set_err(err, err_len,
                "transfer backend '%s' is not available in this build (built: " BUILT ")", name);
        return NULL;
    }
    set_err(err, err_len,
            "unknown transfer backend '%s' (known: ucx, fake, mooncake, nixl, ascend)", name);
    return NULL;
}

void xfer_destroy(xfer_engine *e) {
    if (e) e->be->destroy(e);
}

const char *xfer_backend_name(const xfer_engine *e) { return e->be->name; }

int xfer_register(xfer_engine *e, void *addr, size_t len, char *err, size_t err_len) {
    if (!addr || !len || (uintptr_t)addr + len < (uintptr_t)addr) {
        set_err(err, err_len, "cannot register an empty or wrapping region");
        return -1;
    }
    return e->be->reg(e, addr, len, err, err_len);
}

int xfer_segment_desc(xfer_engine *e, void **desc, size_t *len, char *err, size_t err_len) {
    return e->be->desc(e, desc, len, err, err_len);
}

xfer_peer *xfer_open(xfer_engine *e, const void *desc, size_t len, char *err, size_t err_len) {
    return e->be->open(e, desc, len, err, err_len);
}

void xfer_close(xfer_peer *p) {
    if (p) p->be->close(p);
}

int64_t xfer_submit(xfer_peer *p, const xfer_write *w, size_t n, char *err, size_t err_len) {
    if (n && !w) {
        set_err(err, err_len, "no writes given");
        return -1;
    }
    return p->be->submit(p, w, n, err, err_len);
}

int xfer_poll(xfer_peer *p, int64_t batch, char *err, size_t err_len) {
    return p->be->poll(p, batch, 0, err, err_len);
}

int xfer_wait(xfer_peer *p, int64_t batch, int timeout_ms, char *err, size_t err_len) {
    return p->be->poll(p, batch, timeout_ms < 0 ? 0 : timeout_ms, err, err_len);
}

int xfer_notify(xfer_peer *p, const void *msg, size_t len, char *err, size_t err_len) {
    if (len > XFER_NOTIFY_MAX || (len && !msg)) {
        set_err(err, err_len, "notification of %zu bytes (max %d)", len, XFER_NOTIFY_MAX);
        return -1;
    }
    return p->be->notify(p, msg, len, err, err_len);
}

bool xfer_peer_failed(const xfer_peer *p) { return p->be->failed(p); }

void xfer_peer_transports(xfer_peer *p, char *buf, size_t len) {
    if (len) buf[0] = 0;
    p->be->transports(p, buf, len);
}
