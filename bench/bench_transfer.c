/* KV transfer throughput of the transfer engine between two processes on this host, for the KV of
 * one 2,048-token prompt of SmolLM2-135M (30 layers x K,V = 60 buffers of 2,048 x 384 bytes, about
 * 47 MB), written as one contiguous run per buffer and as page_size=1 runs of 16 tokens scattered
 * with a one-token gap, then compared with ucx_perftest's ucp_put_bw at the same sizes on the same
 * transport (UCX_TLS as set in the environment; perftest with -e, the error-handling endpoints the
 * engine uses, and without it).
 *
 *   bench_transfer [--iters N] [--no-perftest]
 *
 * The target is a forked child that registers 60 separate buffers (like a KV pool's per-layer
 * buffers) and sends its descriptor over a socketpair; each iteration is one batch submitted and
 * waited for, then a notify that the child acknowledges (the per-request path of PD). */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disagg/transfer.h"

#define N_BUF 60
#define TOKENS 2048
#define TOK_BYTES 384
#define RUN 16                                     /* tokens per scattered run */
#define SLOTS (TOKENS + TOKENS / RUN + 64)          /* per buffer on the target */
#define BUF_BYTES ((size_t)TOKENS * TOK_BYTES)      /* 786,432 */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

static void child_ack(const void *msg, size_t len, void *ud) {
    (void)msg, (void)len;
    uint8_t ok = 1;
    if (write(*(int *)ud, &ok, 1) != 1) _exit(3);
}

static int child(int fd) {
    char err[256];
    xfer_opts o = {.on_notify = child_ack, .ud = &fd};
    xfer_engine *e = xfer_create(&o, err, sizeof err);
    if (!e) {
        fprintf(stderr, "target: %s\n", err);
        return 1;
    }
    for (int b = 0; b < N_BUF; b++) {
        void *p = mmap(NULL, (size_t)SLOTS * TOK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED || xfer_register(e, p, (size_t)SLOTS * TOK_BYTES, err, sizeof err)) {
            fprintf(stderr, "target: %s\n", err);
            return 1;
        }
    }
    void *desc;
    size_t len;
    if (xfer_segment_desc(e, &desc, &len, err, sizeof err) < 0) return 1;
    uint64_t n = len;
    if (write(fd, &n, 8) != 8 || write(fd, desc, len) != (ssize_t)len) return 1;
    char c;
    while (read(fd, &c, 1) > 0) {
    }
    xfer_destroy(e);
    return 0;
}

/* Runs ucx_perftest (server + client on 127.0.0.1) and returns its overall bandwidth in GB/s. */
static double perftest(size_t size, int n, bool err_mode, int port) {
    char ps[16], ss[32], ns[16];
    snprintf(ps, sizeof ps, "%d", port);
    snprintf(ss, sizeof ss, "%zu", size);
    snprintf(ns, sizeof ns, "%d", n);
    pid_t srv = fork();
    if (srv == 0) {
        int dn = open("/dev/null", 1);
        dup2(dn, 1), dup2(dn, 2);
        if (err_mode)
            execlp("ucx_perftest", "ucx_perftest", "-p", ps, "-e", (char *)NULL);
        else
            execlp("ucx_perftest", "ucx_perftest", "-p", ps, (char *)NULL);
        _exit(127);
    }
    usleep(500000);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "ucx_perftest 127.0.0.1 -p %s %s -t ucp_put_bw -s %s -n %s -w %d 2>&1", ps,
             err_mode ? "-e" : "", ss, ns, n / 10 + 1);
    FILE *f = popen(cmd, "r");
    double mbs = -1;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        double v[7];
        if (sscanf(line, "Final: %lf %lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6]) == 7)
            mbs = v[5];
    }
    if (f) pclose(f);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    return mbs < 0 ? -1 : mbs * 1048576.0 / 1e9; /* perftest's MB is MiB */
}

int main(int argc, char **argv) {
    int iters = 20;
    bool run_perftest = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-perftest"))
            run_perftest = false;
        else {
            fprintf(stderr, "usage: bench_transfer [--iters N] [--no-perftest]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        return child(sv[1]);
    }
    close(sv[1]);
    int fd = sv[0];
    char err[256];
    xfer_engine *e = xfer_create(&(xfer_opts){0}, err, sizeof err);
    if (!e) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint8_t *src = malloc(N_BUF * BUF_BYTES);
    memset(src, 0x5a, N_BUF * BUF_BYTES);
    if (xfer_register(e, src, N_BUF * BUF_BYTES, err, sizeof err) < 0) return 1;
    uint64_t dlen;
    if (read_full(fd, &dlen, 8) < 0 || dlen > (1u << 24)) return 1;
    void *desc = malloc(dlen);
    if (read_full(fd, desc, dlen) < 0) return 1;
    xfer_peer *p = xfer_open(e, desc, dlen, err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    xfer_desc d;
    if (xfer_desc_decode(desc, dlen, &d, err, sizeof err) < 0) return 1;
    char tr[512];
    xfer_peer_transports(p, tr, sizeof tr);
    const char *tls = getenv("UCX_TLS");
    printf("UCX_TLS=%s; lanes: %s\n", tls ? tls : "(default)", tr);

    size_t max_w = (size_t)N_BUF * (TOKENS / RUN);
    xfer_write *contig = malloc(N_BUF * sizeof *contig), *scat = malloc(max_w * sizeof *scat);
    for (int b = 0; b < N_BUF; b++) {
        contig[b] = (xfer_write){src + b * BUF_BYTES, d.regions[b].base, BUF_BYTES};
        for (int r = 0; r < TOKENS / RUN; r++) {
            uint64_t slot = (uint64_t)r * (RUN + 1); /* one free slot between runs */
            scat[b * (TOKENS / RUN) + r] = (xfer_write){
                src + b * BUF_BYTES + (size_t)r * RUN * TOK_BYTES,
                d.regions[b].base + slot * TOK_BYTES, (size_t)RUN * TOK_BYTES};
        }
    }
    struct {
        const char *name;
        xfer_write *w;
        size_t n, size;
        double gbs;
    } modes[2] = {{"contiguous (60 writes of 786,432 B)", contig, N_BUF, BUF_BYTES, 0},
                  {"scattered (7,680 writes of 6,144 B)", scat, max_w, (size_t)RUN * TOK_BYTES, 0}};
    for (int m = 0; m < 2; m++) {
        double best = 0, total = 0, t_notify = 0;
        for (int it = -2; it < iters; it++) { /* two warm-up prompts */
            double t0 = now_s();
            int64_t id = xfer_submit(p, modes[m].w, modes[m].n, err, sizeof err);
            if (id < 0 || xfer_wait(p, id, 30000, err, sizeof err) != 1) {
                fprintf(stderr, "batch failed: %s\n", err);
                return 1;
            }
            double t1 = now_s();
            uint8_t ack;
            if (xfer_notify(p, "done", 4, err, sizeof err) < 0 || read_full(fd, &ack, 1) < 0) {
                fprintf(stderr, "notify failed: %s\n", err);
                return 1;
            }
            double dt = now_s() - t0;
            if (it < 0) continue;
            total += dt;
            t_notify += now_s() - t1;
            if (getenv("BENCH_VERBOSE")) fprintf(stderr, "  %.2f ms (batch %.2f)\n", dt * 1e3, (t1 - t0) * 1e3);
            double g = N_BUF * BUF_BYTES / dt / 1e9;
            if (g > best) best = g;
        }
        modes[m].gbs = N_BUF * BUF_BYTES * (double)iters / total / 1e9;
        printf("%-38s %7.3f GB/s mean, %7.3f best, %.2f ms per prompt (notify+ack %.2f ms)\n",
               modes[m].name, modes[m].gbs, best, total / iters * 1e3, t_notify / iters * 1e3);
    }
    xfer_close(p);
    close(fd);
    waitpid(pid, NULL, 0);
    xfer_destroy(e);
    free(d.regions);
    free(desc);
    free(contig);
    free(scat);
    free(src);
    if (run_perftest) {
        int port = 13400 + (int)(getpid() % 500);
        for (int m = 0; m < 2; m++) {
            int n = modes[m].size > 100000 ? 1000 : 20000;
            double pe = perftest(modes[m].size, n, true, port++);
            double pn = perftest(modes[m].size, n, false, port++);
            printf("ucx_perftest ucp_put_bw -s %zu -n %d:  -e %7.3f GB/s (ours/perftest %.2f)"
                   "   no -e %7.3f GB/s (ours/perftest %.2f)\n",
                   modes[m].size, n, pe, pe > 0 ? modes[m].gbs / pe : 0, pn,
                   pn > 0 ? modes[m].gbs / pn : 0);
        }
    }
    return 0;
}
