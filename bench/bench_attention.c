/* Attention time (kern_attention, one layer) on SmolLM2-135M's shapes (9 query heads, 3 kv
 * heads, head_dim 64): a causal prefill of T tokens of one sequence, and decode steps (one token
 * per sequence, B sequences with `ctx` keys each). Not a test: it prints. `make` builds it as
 * build/bench_attention.
 * Usage: bench_attention [threads=2] [kv types=f16,f32] [isa list=all the CPU has]
 * Times are medians of several runs (the machine may be shared), in ms per layer; x30 layers
 * gives the model's attention time per forward pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/fp16.h"
#include "base/timeutil.h"
#include "kernels/backend.h"
#include "kernels/ops.h"

enum { N_HEADS = 9, N_KV = 3, HD = 64 };

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* CPU seconds of the whole process: on a shared machine wall time also counts other people's
 * work, CPU time counts only ours. */
static double cpu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n_seq sequences of ctx keys each; the batch is the last `per_seq` positions of each one. */
static void bench_one(backend *be, dtype_t type, int n_seq, int ctx, int per_seq, const char *what) {
    int row = N_KV * HD;
    int64_t n_slots = (int64_t)n_seq * ctx, T = (int64_t)n_seq * per_seq;
    size_t esz = type == DT_F32 ? 4 : 2;
    kv_layer kv = {type, malloc((size_t)n_slots * row * esz), malloc((size_t)n_slots * row * esz),
                   n_slots, row};
    unsigned seed = 7;
    float *tmp = malloc((size_t)row * sizeof(float) * 2);
    int32_t *slot = malloc((size_t)n_slots * sizeof(int32_t));
    for (int64_t s = 0; s < n_slots; s++) {
        for (int i = 0; i < 2 * row; i++) tmp[i] = frand(&seed);
        slot[s] = (int32_t)s;
        kern_kv_store(be, &kv, tmp, tmp + row, 1, &slot[s]);
    }
    float *q = malloc((size_t)T * N_HEADS * HD * sizeof(float));
    float *out = malloc((size_t)T * N_HEADS * HD * sizeof(float));
    for (int64_t i = 0; i < T * N_HEADS * HD; i++) q[i] = frand(&seed);
    int32_t *pos = malloc((size_t)T * 4), *seq = malloc((size_t)T * 4);
    const int32_t **seq_slots = malloc((size_t)n_seq * sizeof(*seq_slots));
    for (int s = 0; s < n_seq; s++) {
        seq_slots[s] = slot + (int64_t)s * ctx;
        for (int i = 0; i < per_seq; i++) {
            pos[s * per_seq + i] = ctx - per_seq + i;
            seq[s * per_seq + i] = s;
        }
    }
    attn_batch ab = {pos, seq, (const int32_t *const *)seq_slots, 0};
    kern_attention(be, &kv, q, T, N_HEADS, N_KV, HD, 0.125f, &ab, out); /* warm up */
    double runs[9], cpu[9];
    int n_runs = 0;
    for (; n_runs < 9; n_runs++) {
        int reps = 0;
        double t0 = time_now_s(), c0 = cpu_now_s(), el;
        do {
            kern_attention(be, &kv, q, T, N_HEADS, N_KV, HD, 0.125f, &ab, out);
            reps++;
            el = time_now_s() - t0;
        } while (el < 0.1 && reps < 1000);
        runs[n_runs] = el / reps;
        cpu[n_runs] = (cpu_now_s() - c0) / reps;
        if (el > 2.0 && n_runs >= 2) {
            n_runs++;
            break;
        }
    }
    qsort(runs, (size_t)n_runs, sizeof(double), cmp_double);
    qsort(cpu, (size_t)n_runs, sizeof(double), cmp_double);
    double med = runs[n_runs / 2];
    printf("%-7s kv=%-4s %-20s %8.3f ms/layer (min %.3f, %d runs) x30 = %7.1f ms, "
           "cpu %8.3f ms/layer\n",
           cpu_isa_name(be->isa), dtype_name(type), what, med * 1e3, runs[0] * 1e3, n_runs,
           med * 30e3, cpu[n_runs / 2] * 1e3);
    fflush(stdout);
    free(kv.k), free(kv.v), free(tmp), free(slot), free(q), free(out), free(pos), free(seq);
    free(seq_slots);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    const char *types = argc > 2 ? argv[2] : "f16,f32";
    const char *isas = argc > 3 ? argv[3] : NULL;
    backend *be = backend_create_cpu(threads);
    /* let the pool's helpers start before the first job (base/threadpool.c start-up race) */
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int level = cpu_get()->best; level >= ISA_SCALAR; level--) {
        if (level == ISA_NEON && cpu_get()->best != ISA_NEON) continue;
        if (isas && !strstr(isas, cpu_isa_name((isa_level)level))) continue;
        be->isa = (isa_level)level;
        char list[256];
        snprintf(list, sizeof list, "%s", types);
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            int type = dtype_parse(tok);
            if (type != DT_F32 && type != DT_F16 && type != DT_BF16) continue;
            bench_one(be, (dtype_t)type, 1, 512, 512, "prefill 512");
            bench_one(be, (dtype_t)type, 1, 2048, 2048, "prefill 2048");
            bench_one(be, (dtype_t)type, 1, 2048, 512, "chunk 1536+512");
            bench_one(be, (dtype_t)type, 1, 2048, 1, "decode 1 x ctx 2048");
            bench_one(be, (dtype_t)type, 8, 512, 1, "decode 8 x ctx 512");
        }
    }
    backend_destroy(be);
    return 0;
}
