/* Implementation of base/membw.h. The read loop sums 64-bit words with four independent
 * accumulators so it is limited by memory, not by the add chain; the sum is kept so the
 * compiler cannot drop the loads. */
#include "base/membw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/timeutil.h"

typedef struct {
    const uint64_t *data;
    size_t words;
    uint64_t sums[64];
} read_job;

static void read_task(void *p, int ith, int nth) {
    read_job *j = p;
    long b, e;
    tp_split((long)j->words / 4, ith, nth, &b, &e);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (long i = b * 4; i < e * 4; i += 4) {
        s0 += j->data[i];
        s1 += j->data[i + 1];
        s2 += j->data[i + 2];
        s3 += j->data[i + 3];
    }
    j->sums[ith & 63] = s0 + s1 + s2 + s3;
}

double membw_measure_read(threadpool *tp, size_t bytes) {
    uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 0;
    memset(buf, 1, bytes);
    read_job j = {buf, bytes / 8, {0}};
    double best = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = time_now_s();
        tp_run(tp, read_task, &j);
        double dt = time_now_s() - t0;
        if (dt > 0 && (double)bytes / dt > best) best = (double)bytes / dt;
    }
    volatile uint64_t sink = j.sums[0];
    (void)sink;
    munmap(buf, bytes);
    return best;
}

static size_t status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) {
            kb = strtoull(line + n, NULL, 10);
            break;
        }
    fclose(f);
    return kb * 1024;
}

size_t membw_peak_rss(void) { return status_kb("VmHWM:"); }
size_t membw_current_rss(void) { return status_kb("VmRSS:"); }
