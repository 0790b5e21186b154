/* Transfer engine: backend names, the descriptor codec against truncation and corruption, the
 * fake backend, and the UCX backend between two engines in one process and between two processes
 * (this binary re-executed as the target, descriptors over a socketpair) under the default
 * UCX_TLS and under UCX_TLS=tcp: bytes land where the batches say, a notification is seen only
 * after the writes before it, out-of-range writes are refused, registering a lazily faulted 8 GiB
 * region faults nothing in, and a target killed with -9 fails its peer within seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disagg/transfer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(seed >> 56);
    }
}

static uint64_t hash(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* ---- names, codec, fake ------------------------------------------------------------------- */

static void test_backend_names(void **state) {
    (void)state;
    char err[256];
    const char *absent[] = {"mooncake", "nixl", "ascend"};
    for (int i = 0; i < 3; i++) {
        xfer_opts o = {.backend = absent[i]};
        assert_null(xfer_create(&o, err, sizeof err));
        char want[160];
#ifdef SGLC_HAVE_UCX
        snprintf(want, sizeof want,
                 "transfer backend '%s' is not available in this build (built: ucx, fake)",
                 absent[i]);
#else
        snprintf(want, sizeof want,
                 "transfer backend '%s' is not available in this build (built: fake)", absent[i]);
#endif
        assert_string_equal(err, want);
    }
    xfer_opts o = {.backend = "carrier-pigeon"};
    assert_null(xfer_create(&o, err, sizeof err));
    assert_non_null(strstr(err, "'carrier-pigeon'"));
    o.backend = "fake";
    xfer_engine *e = xfer_create(&o, err, sizeof err);
    assert_non_null(e);
    assert_string_equal(xfer_backend_name(e), "fake");
    xfer_destroy(e);
}

static void test_desc_codec(void **state) {
    (void)state;
    char err[256];
    uint8_t rk[3][5] = {{1, 2, 3, 4, 5}, {6}, {7, 8}};
    xfer_desc_region r[3] = {{.base = 0x20000, .len = 4096, .rkey = rk[0], .rkey_len = 5},
                             {.base = 0x10000, .len = 100, .rkey = rk[1], .rkey_len = 1},
                             {.base = 0x30000, .len = 1, .rkey = rk[2], .rkey_len = 2}};
    void *buf;
    size_t len;
    assert_int_equal(xfer_desc_encode(XFER_DESC_UCX, 42, "addr!", 5, r, 3, &buf, &len, err,
                                      sizeof err),
                     0);
    xfer_desc d;
    assert_int_equal(xfer_desc_decode(buf, len, &d, err, sizeof err), 0);
    assert_int_equal(d.n_regions, 3);
    assert_int_equal(d.tag, 42);
    assert_memory_equal(d.addr, "addr!", 5);
    assert_int_equal(d.regions[0].base, 0x10000); /* sorted */
    assert_memory_equal(d.regions[1].rkey, rk[0], 5);
    assert_int_equal(xfer_desc_find(d.regions, 3, 0x10000, 100), 0);
    assert_int_equal(xfer_desc_find(d.regions, 3, 0x10000, 101), -1);
    assert_int_equal(xfer_desc_find(d.regions, 3, 0x20fff, 1), 1);
    assert_int_equal(xfer_desc_find(d.regions, 3, 0x21000, 1), -1);
    assert_int_equal(xfer_desc_find(d.regions, 3, 0xffff, 1), -1);
    assert_int_equal(xfer_desc_find(d.regions, 3, 0x30000, 1), 2);
    assert_int_equal(xfer_desc_find(d.regions, 3, UINT64_MAX, 2), -1);
    free(d.regions);
    /* every truncation and every single-byte corruption is refused */
    for (size_t n = 0; n < len; n++)
        assert_int_equal(xfer_desc_decode(buf, n, &d, err, sizeof err), -1);
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++) {
        b[i] ^= 0x40;
        assert_int_equal(xfer_desc_decode(buf, len, &d, err, sizeof err), -1);
        b[i] ^= 0x40;
    }
    assert_int_equal(xfer_desc_decode(NULL, 0, &d, err, sizeof err), -1);
    free(buf);
    /* well-formed but overlapping regions */
    r[1].base = 0x1ffc0; /* 100 bytes: runs 36 bytes into region 0 */
    assert_int_equal(xfer_desc_encode(XFER_DESC_UCX, 1, "a", 1, r, 2, &buf, &len, err,
                                      sizeof err),
                     0);
    assert_int_equal(xfer_desc_decode(buf, len, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "overlap"));
    free(buf);
}

typedef struct {
    pthread_mutex_t mu;
    int count;
    int bad;          /* notifications that arrived before their data */
    char last[64];
    const uint8_t *dst; /* what a notification promises is at dst: expect[0..expect_len) */
    const uint8_t *expect;
    size_t expect_len;
    int failures;     /* on_peer_fail calls */
    char why[256];
} sink;

static void on_notify(const void *msg, size_t len, void *ud) {
    sink *s = ud;
    pthread_mutex_lock(&s->mu);
    s->count++;
    snprintf(s->last, sizeof s->last, "%.*s", (int)len, (const char *)msg);
    if (s->dst && memcmp(s->dst, s->expect, s->expect_len) != 0) s->bad++;
    pthread_mutex_unlock(&s->mu);
}

static void on_fail(xfer_peer *p, const char *why, void *ud) {
    (void)p;
    sink *s = ud;
    pthread_mutex_lock(&s->mu);
    s->failures++;
    snprintf(s->why, sizeof s->why, "%s", why);
    pthread_mutex_unlock(&s->mu);
}

static int sink_count(sink *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static bool wait_count(sink *s, int n, double secs) {
    double end = now_s() + secs;
    while (sink_count(s) < n && now_s() < end) usleep(1000);
    return sink_count(s) >= n;
}

static void test_fake_backend(void **state) {
    (void)state;
    char err[256];
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    xfer_opts o = {.backend = "fake", .on_notify = on_notify, .ud = &s};
    xfer_engine *a = xfer_create(&o, err, sizeof err), *b = xfer_create(&o, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    static uint8_t dst[4096], src[4096];
    memset(src, 7, sizeof src);
    assert_int_equal(xfer_register(a, dst, sizeof dst, err, sizeof err), 0);
    void *desc;
    size_t len;
    assert_int_equal(xfer_segment_desc(a, &desc, &len, err, sizeof err), 0);
    xfer_peer *p = xfer_open(b, desc, len, err, sizeof err);
    assert_non_null(p);
    xfer_write w = {src, (uintptr_t)dst + 100, 1000};
    int64_t id = xfer_submit(p, &w, 1, err, sizeof err);
    assert_true(id >= 0);
    assert_int_equal(xfer_poll(p, id, err, sizeof err), 1);
    assert_int_equal(xfer_wait(p, id, 100, err, sizeof err), 1);
    assert_int_equal(dst[100], 0); /* the fake moves no data */
    w.remote = (uintptr_t)dst + 4000;
    assert_int_equal(xfer_submit(p, &w, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "outside"));
    assert_int_equal(xfer_notify(p, "hi", 2, err, sizeof err), 0);
    assert_int_equal(s.count, 1); /* delivered at once to the owning engine */
    assert_string_equal(s.last, "hi");
    assert_false(xfer_peer_failed(p));
    xfer_close(p);
    free(desc);
    xfer_destroy(a);
    xfer_destroy(b);
}

#ifdef SGLC_HAVE_UCX

/* ---- UCX in one process ------------------------------------------------------------------- */

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Writes n random-sized pieces from src to non-overlapping spots of dst (size cap). */
static size_t make_writes(xfer_write *w, size_t n, uint8_t *src, uint8_t *dst, size_t cap) {
    static const size_t sizes[] = {1, 7, 64, 4096, 4099, 65536, 786432, 1048579};
    size_t o_src = 0, o_dst = 0, k = 0;
    for (; k < n; k++) {
        size_t len = sizes[next_rand() % 8];
        size_t gap = next_rand() % 512;
        if (o_dst + gap + len > cap || o_src + len > cap) break;
        o_dst += gap;
        w[k] = (xfer_write){src + o_src, (uintptr_t)dst + o_dst, len};
        o_src += len;
        o_dst += len;
    }
    return k;
}

static void run_in_process(const char *tls) {
    char err[256];
    if (tls) setenv("UCX_TLS", tls, 1);
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    xfer_opts oa = {.on_notify = on_notify, .on_peer_fail = on_fail, .ud = &s};
    xfer_opts ob = {.on_peer_fail = on_fail, .ud = &s};
    xfer_engine *a = xfer_create(&oa, err, sizeof err);
    assert_non_null(a);
    xfer_engine *b = xfer_create(&ob, err, sizeof err);
    assert_non_null(b);
    if (tls) unsetenv("UCX_TLS");
    assert_string_equal(xfer_backend_name(a), "ucx");

    const size_t cap = 16u << 20;
    uint8_t *dst = calloc(1, cap), *src = malloc(cap);
    fill(src, cap, 1);
    /* the KV pool: a lazily faulted 8 GiB mapping, of which registration must touch nothing */
    const size_t big_len = (size_t)8 << 30;
    uint8_t *big = mmap(NULL, big_len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(big != MAP_FAILED);
    long rss0 = rss_kb();
    double t0 = now_s();
    assert_int_equal(xfer_register(a, big, big_len, err, sizeof err), 0);
    double reg_s = now_s() - t0;
    long rss_grew = rss_kb() - rss0;
    print_message("  [%s] registering 8 GiB lazy: %.2f ms, RSS +%ld KiB\n", tls ? tls : "default",
                  reg_s * 1e3, rss_grew);
    assert_true(rss_grew < 32 * 1024);
    assert_int_equal(xfer_register(a, dst, cap, err, sizeof err), 0);
    assert_int_equal(xfer_register(a, dst + 10, 10, err, sizeof err), -1); /* overlap */
    assert_int_equal(xfer_register(b, src, cap, err, sizeof err), 0);

    void *desc;
    size_t len;
    assert_int_equal(xfer_segment_desc(a, &desc, &len, err, sizeof err), 0);
    /* garbage and truncated descriptors are refused before UCX sees them */
    assert_null(xfer_open(b, desc, len - 1, err, sizeof err));
    uint8_t junk[256];
    fill(junk, sizeof junk, 9);
    assert_null(xfer_open(b, junk, sizeof junk, err, sizeof err));
    assert_non_null(strstr(err, "descriptor"));
    xfer_peer *p = xfer_open(b, desc, len, err, sizeof err);
    assert_non_null(p);
    char tr[256];
    xfer_peer_transports(p, tr, sizeof tr);
    print_message("  [%s] lanes: %s\n", tls ? tls : "default", tr);
    if (tls && !strcmp(tls, "tcp")) assert_non_null(strstr(tr, "tcp"));

    /* several batches in flight at once, then all collected */
    enum { NB = 4, NW = 64 };
    static xfer_write w[NB][NW];
    size_t nw[NB];
    int64_t id[NB];
    size_t slice = cap / NB;
    for (int i = 0; i < NB; i++) {
        nw[i] = make_writes(w[i], NW, src + i * slice, dst + i * slice, slice);
        assert_true(nw[i] > 4);
        id[i] = xfer_submit(p, w[i], nw[i], err, sizeof err);
        assert_true(id[i] >= 0);
    }
    for (int i = 0; i < NB; i++) assert_int_equal(xfer_wait(p, id[i], 5000, err, sizeof err), 1);
    for (int i = 0; i < NB; i++)
        for (size_t k = 0; k < nw[i]; k++)
            assert_memory_equal((void *)(uintptr_t)w[i][k].remote, w[i][k].local, w[i][k].len);
    assert_int_equal(xfer_poll(p, id[0], err, sizeof err), -1); /* already collected */
    assert_non_null(strstr(err, "unknown batch"));

    /* a write far into the lazy region */
    xfer_write far = {src, (uintptr_t)big + ((size_t)6 << 30) + 12345, 100000};
    int64_t fid = xfer_submit(p, &far, 1, err, sizeof err);
    assert_int_equal(xfer_wait(p, fid, 5000, err, sizeof err), 1);
    assert_memory_equal(big + ((size_t)6 << 30) + 12345, src, 100000);

    /* the notification is seen only after the writes submitted before it: the callback
     * compares the target with the source the moment it runs */
    memset(dst, 0, cap);
    xfer_write one = {src, (uintptr_t)dst, cap};
    pthread_mutex_lock(&s.mu);
    s.dst = dst, s.expect = src, s.expect_len = cap;
    pthread_mutex_unlock(&s.mu);
    int64_t oid = xfer_submit(p, &one, 1, err, sizeof err);
    assert_true(oid >= 0);
    assert_int_equal(xfer_notify(p, "room 7 done", 11, err, sizeof err), 0);
    assert_true(wait_count(&s, 1, 5));
    assert_int_equal(s.bad, 0);
    assert_string_equal(s.last, "room 7 done");
    assert_int_equal(xfer_wait(p, oid, 5000, err, sizeof err), 1);
    pthread_mutex_lock(&s.mu);
    s.dst = NULL;
    pthread_mutex_unlock(&s.mu);

    /* refusals */
    xfer_write oob = {src, (uintptr_t)dst + cap - 10, 11};
    assert_int_equal(xfer_submit(p, &oob, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "outside"));
    oob.remote = 8;
    assert_int_equal(xfer_submit(p, &oob, 1, err, sizeof err), -1);
    char big_msg[XFER_NOTIFY_MAX + 1] = {0};
    assert_int_equal(xfer_notify(p, big_msg, sizeof big_msg, err, sizeof err), -1);
    assert_int_equal(xfer_notify(p, big_msg, XFER_NOTIFY_MAX, err, sizeof err), 0);
    assert_true(wait_count(&s, 2, 5));
    int64_t empty = xfer_submit(p, NULL, 0, err, sizeof err);
    assert_int_equal(xfer_wait(p, empty, 5000, err, sizeof err), 1);
    /* a fake descriptor does not open on a UCX engine */
    xfer_opts of = {.backend = "fake"};
    xfer_engine *f = xfer_create(&of, err, sizeof err);
    void *fdesc;
    size_t flen;
    assert_int_equal(xfer_segment_desc(f, &fdesc, &flen, err, sizeof err), 0);
    assert_null(xfer_open(b, fdesc, flen, err, sizeof err));
    assert_null(xfer_open(f, desc, len, err, sizeof err));
    free(fdesc);
    xfer_destroy(f);

    assert_false(xfer_peer_failed(p));
    assert_int_equal(s.failures, 0);
    xfer_close(p);
    free(desc);
    xfer_destroy(b);
    xfer_destroy(a);
    munmap(big, big_len);
    free(dst);
    free(src);
}

static void test_ucx_in_process(void **state) {
    (void)state;
    run_in_process(NULL);
}

static void test_ucx_in_process_tcp(void **state) {
    (void)state;
    run_in_process("tcp");
}

/* ---- UCX across processes ----------------------------------------------------------------- */

/* The child (this binary with --xfer-child FD) registers a region, sends its descriptor, and on
 * each notification {u64 len, u64 hash} checks the hash of its region's first len bytes, replying
 * one byte (1 ok, 0 mismatch) on the socket. It lives until the socket closes or it is killed. */
typedef struct {
    int fd;
    uint8_t *region;
} child_state;

static void child_notify(const void *msg, size_t len, void *ud) {
    child_state *c = ud;
    uint64_t m[2];
    uint8_t ok = 0;
    if (len == sizeof m) {
        memcpy(m, msg, sizeof m);
        ok = m[0] <= (64u << 20) && hash(c->region, m[0]) == m[1];
    }
    if (write(c->fd, &ok, 1) != 1) _exit(3);
}

static int child_main(int fd) {
    char err[256];
    child_state c = {.fd = fd, .region = calloc(1, 64u << 20)};
    xfer_opts o = {.on_notify = child_notify, .ud = &c};
    xfer_engine *e = xfer_create(&o, err, sizeof err);
    if (!e || xfer_register(e, c.region, 64u << 20, err, sizeof err) < 0) {
        fprintf(stderr, "child: %s\n", err);
        return 1;
    }
    void *desc;
    size_t len;
    if (xfer_segment_desc(e, &desc, &len, err, sizeof err) < 0) return 1;
    uint64_t n = len;
    if (write(fd, &n, 8) != 8 || write(fd, desc, len) != (ssize_t)len) return 1;
    free(desc);
    char b;
    while (read(fd, &b, 1) > 0) {
    }
    xfer_destroy(e);
    return 0;
}

static int read_full(int fd, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) return -1;
        p += r, n -= (size_t)r;
    }
    return 0;
}

static void run_two_processes(const char *tls) {
    char err[256];
    if (tls) setenv("UCX_TLS", tls, 1);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = dup(sv[1]); /* without CLOEXEC */
        char arg[16];
        snprintf(arg, sizeof arg, "%d", fd);
        execl("/proc/self/exe", "test_transfer", "--xfer-child", arg, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    int fd = sv[0];
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    xfer_opts o = {.on_peer_fail = on_fail, .ud = &s};
    xfer_engine *e = xfer_create(&o, err, sizeof err);
    assert_non_null(e);
    if (tls) unsetenv("UCX_TLS");
    uint64_t dlen;
    assert_int_equal(read_full(fd, &dlen, 8), 0);
    assert_true(dlen > 0 && dlen < (1u << 20));
    void *desc = malloc(dlen);
    assert_int_equal(read_full(fd, desc, dlen), 0);
    xfer_peer *p = xfer_open(e, desc, dlen, err, sizeof err);
    assert_non_null(p);
    char tr[256];
    xfer_peer_transports(p, tr, sizeof tr);
    print_message("  [%s, 2 processes] lanes: %s\n", tls ? tls : "default", tr);
    xfer_desc d;
    assert_int_equal(xfer_desc_decode(desc, dlen, &d, err, sizeof err), 0);
    uint64_t base = d.regions[0].base;
    free(d.regions);

    /* rounds of many scattered writes; the child hashes its region on each notification,
     * sent right after the submit without waiting for the batch */
    const size_t cap = 32u << 20;
    uint8_t *src = malloc(cap), *image = calloc(1, cap);
    fill(src, cap, 5);
    for (int round = 0; round < 3; round++) {
        enum { NW = 200 };
        xfer_write w[NW];
        size_t n = make_writes(w, NW, src, (uint8_t *)(uintptr_t)base, cap);
        for (size_t k = 0; k < n; k++) {
            w[k].local = src + (next_rand() % (cap - w[k].len));
            memcpy(image + (w[k].remote - base), w[k].local, w[k].len);
        }
        int64_t id = xfer_submit(p, w, n, err, sizeof err);
        assert_true(id >= 0);
        uint64_t m[2] = {cap, hash(image, cap)};
        assert_int_equal(xfer_notify(p, m, sizeof m, err, sizeof err), 0);
        uint8_t ok = 9;
        assert_int_equal(read_full(fd, &ok, 1), 0);
        assert_int_equal(ok, 1);
        assert_int_equal(xfer_wait(p, id, 5000, err, sizeof err), 1);
    }
    /* an out-of-range write is refused without touching the child */
    xfer_write oob = {src, base + (64u << 20) - 1, 2};
    assert_int_equal(xfer_submit(p, &oob, 1, err, sizeof err), -1);

    /* kill -9 the target while idle: the peer fails on its own within seconds */
    double t0 = now_s();
    kill(pid, SIGKILL);
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    double end = t0 + 6;
    while (now_s() < end) {
        pthread_mutex_lock(&s.mu);
        int nf = s.failures;
        pthread_mutex_unlock(&s.mu);
        if (nf) break;
        usleep(10000);
    }
    double took = now_s() - t0;
    print_message("  [%s] killed target noticed after %.2f s: %s\n", tls ? tls : "default", took,
                  s.why);
    assert_true(xfer_peer_failed(p));
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.failures, 1);
    pthread_mutex_unlock(&s.mu);
    xfer_write w1 = {src, base, 4096};
    assert_int_equal(xfer_submit(p, &w1, 1, err, sizeof err), -1);
    assert_int_equal(xfer_notify(p, "x", 1, err, sizeof err), -1);
    xfer_close(p);
    close(fd);
    free(desc);
    free(src);
    free(image);
    xfer_destroy(e);
}

/* A batch pending when the target dies fails instead of hanging. */
static void run_kill_midway(const char *tls) {
    char err[256];
    if (tls) setenv("UCX_TLS", tls, 1);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = dup(sv[1]);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", fd);
        execl("/proc/self/exe", "test_transfer", "--xfer-child", arg, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    int fd = sv[0];
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    xfer_opts o = {.on_peer_fail = on_fail, .ud = &s};
    xfer_engine *e = xfer_create(&o, err, sizeof err);
    assert_non_null(e);
    if (tls) unsetenv("UCX_TLS");
    uint64_t dlen;
    assert_int_equal(read_full(fd, &dlen, 8), 0);
    void *desc = malloc(dlen);
    assert_int_equal(read_full(fd, desc, dlen), 0);
    xfer_peer *p = xfer_open(e, desc, dlen, err, sizeof err);
    assert_non_null(p);
    xfer_desc d;
    assert_int_equal(xfer_desc_decode(desc, dlen, &d, err, sizeof err), 0);
    uint64_t base = d.regions[0].base;
    free(d.regions);
    /* stop the target, queue a lot of writes, then kill it */
    kill(pid, SIGSTOP);
    const size_t cap = 64u << 20;
    uint8_t *src = calloc(1, cap);
    enum { NW = 1024 };
    static xfer_write w[NW];
    for (int k = 0; k < NW; k++) w[k] = (xfer_write){src, base + (uint64_t)k * 65536, 65536};
    int64_t ids[8];
    for (int i = 0; i < 8; i++) ids[i] = xfer_submit(p, w, NW, err, sizeof err);
    usleep(100000);
    double t0 = now_s();
    kill(pid, SIGKILL);
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    int failed = 0, done = 0;
    for (int i = 0; i < 8; i++) {
        assert_true(ids[i] >= 0);
        int r = xfer_wait(p, ids[i], 8000, err, sizeof err);
        assert_true(r != 0);
        if (r < 0) failed++;
        else done++;
    }
    double took = now_s() - t0;
    print_message("  [%s] kill with batches pending: %d failed, %d had completed, %.2f s\n",
                  tls ? tls : "default", failed, done, took);
    assert_true(took < 6);
    for (int i = 0; i < 100 && !s.failures; i++) usleep(10000);
    assert_true(xfer_peer_failed(p));
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.failures, 1);
    pthread_mutex_unlock(&s.mu);
    xfer_close(p);
    close(fd);
    free(desc);
    free(src);
    xfer_destroy(e);
}

static void test_ucx_two_processes(void **state) {
    (void)state;
    run_two_processes(NULL);
}

static void test_ucx_two_processes_tcp(void **state) {
    (void)state;
    run_two_processes("tcp");
}

static void test_ucx_kill_midway(void **state) {
    (void)state;
    run_kill_midway(NULL);
}

static void test_ucx_kill_midway_tcp(void **state) {
    (void)state;
    run_kill_midway("tcp");
}

#endif /* SGLC_HAVE_UCX */

int main(int argc, char **argv) {
#ifdef SGLC_HAVE_UCX
    if (argc == 3 && !strcmp(argv[1], "--xfer-child")) return child_main(atoi(argv[2]));
#else
    (void)argc, (void)argv;
#endif
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_names),
        cmocka_unit_test(test_desc_codec),
        cmocka_unit_test(test_fake_backend),
#ifdef SGLC_HAVE_UCX
        cmocka_unit_test(test_ucx_in_process),
        cmocka_unit_test(test_ucx_in_process_tcp),
        cmocka_unit_test(test_ucx_two_processes),
        cmocka_unit_test(test_ucx_two_processes_tcp),
        cmocka_unit_test(test_ucx_kill_midway),
        cmocka_unit_test(test_ucx_kill_midway_tcp),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
