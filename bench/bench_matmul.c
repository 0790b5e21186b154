/* Matmul throughput per weight type, shape, batch size and ISA path: GFLOP/s (2*N*K*T per
 * second) and GB/s of weight bytes streamed, on SmolLM2-135M's shapes. Not a test: it prints.
 * Build by hand against a kernels build, e.g.
 *   cmake -S . -B build-mm -DSGLC_ONLY="base;kernels" && cmake --build build-mm -j2
 *   gcc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/bench_matmul.c build-mm/libsglc_core.a \
 *       -lm -lpthread -o build-mm/bench_matmul
 * Usage: bench_matmul [threads=2] [types=q4_1,q8_0,bf16] [isa list=all the CPU has]
 *        bench_matmul model [threads=2] [type=q4_1] [T=1] [isa=best]
 * A type with a trailing "p" (bf16p, q8_0p) is repacked into the loader's panel layout first.
 * The first form runs each shape alone, so its weights stay in cache after the first call; the
 * second ("model") runs one decode step's matmuls over SmolLM2-135M's whole weight set (30
 * layers of q, k, v, o, gate, up, down in the type given, then the tied 49152 x 576 output in
 * Q8_0, as in the Q4_1 file), which is larger than the L3: it measures streaming from memory,
 * as a real decode step does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/timeutil.h"
#include "kernels/backend.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

/* Types spelled with a trailing "p" (bf16p, q8_0p) are repacked into the loader's panel layouts. */
static bool pack_weights;

static void maybe_pack(tensor_view *W, uint8_t **data) {
    if (!pack_weights || !kern_matmul_packable(W)) return;
    uint8_t *p = malloc(W->nbytes);
    kern_matmul_pack(W, p);
    free(*data);
    *data = p;
    W->data = p;
    W->layout = kern_matmul_pack_layout(W->type);
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* CPU seconds of the whole process: on a shared machine wall time also counts other people's
 * work, CPU time counts only ours (GFLOP/cpu-s is the kernel's own efficiency). */
static double cpu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void bench_one(backend *be, dtype_t type, int64_t n_out, int64_t n_in, int64_t T) {
    size_t row_bytes = dtype_row_bytes(type, n_in);
    unsigned seed = 42;
    uint8_t *w = malloc(row_bytes * (size_t)n_out);
    float *tmp = malloc((size_t)n_in * sizeof(float));
    float *x = malloc((size_t)(n_in * T) * sizeof(float));
    float *y = malloc((size_t)(n_out * T) * sizeof(float));
    for (int64_t o = 0; o < n_out; o++) {
        for (int64_t i = 0; i < n_in; i++) tmp[i] = frand(&seed) * 0.05f;
        quant_quantize_row(type, tmp, w + (size_t)o * row_bytes, n_in);
    }
    for (int64_t i = 0; i < n_in * T; i++) x[i] = frand(&seed);
    tensor_view W = {.type = type, .n_dims = 2, .ne = {n_in, n_out, 1, 1}, .data = w,
                     .nbytes = row_bytes * (size_t)n_out};
    maybe_pack(&W, &w);
    double flops = 2.0 * (double)n_out * (double)n_in * (double)T;
    kern_matmul(be, &W, x, T, y); /* warm up */
    int reps = 0;
    double t0 = time_now_s(), c0 = cpu_now_s(), el;
    do {
        kern_matmul(be, &W, x, T, y);
        reps++;
        el = time_now_s() - t0;
    } while (el < 0.3 && reps < 10000);
    double sec = el / reps, cpu = (cpu_now_s() - c0) / reps;
    printf("%-7s %-5s%s [%5lldx%4lld] T=%-4lld %9.3f ms %8.1f GFLOP/s %7.1f GB/s %8.1f GFLOP/cpu-s\n",
           cpu_isa_name(be->isa), dtype_name(type), W.layout != TL_ROWS ? "p" : " ", (long long)n_out, (long long)n_in,
           (long long)T, sec * 1e3, flops / sec * 1e-9,
           (double)row_bytes * (double)n_out / sec * 1e-9, flops / cpu * 1e-9);
    fflush(stdout);
    free(w);
    free(tmp);
    free(x);
    free(y);
}

/* ---- "model" mode ---- */

typedef struct {
    tensor_view W;
    uint8_t *w;
} bench_weight;

static void bench_fill(bench_weight *bw, dtype_t type, int64_t n_out, int64_t n_in,
                       unsigned *seed) {
    size_t row_bytes = dtype_row_bytes(type, n_in);
    float *tmp = malloc((size_t)n_in * sizeof(float));
    /* SGLC_BENCH_HUGEPAGES=1: weights on 2 MiB pages (madvise), to see what the TLB costs */
    const char *huge = getenv("SGLC_BENCH_HUGEPAGES");
    if (huge && *huge == '1') {
        size_t sz = (row_bytes * (size_t)n_out + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
        bw->w = aligned_alloc(2u << 20, sz);
        if (bw->w) madvise(bw->w, sz, MADV_HUGEPAGE);
    } else {
        bw->w = malloc(row_bytes * (size_t)n_out);
    }
    if (!tmp || !bw->w) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        exit(1);
    }
    /* 64 distinct rows, repeated: quantizing the whole model would take longer than the run */
    for (int64_t o = 0; o < n_out; o++) {
        if (o >= 64) {
            memcpy(bw->w + (size_t)o * row_bytes, bw->w + (size_t)(o % 64) * row_bytes, row_bytes);
            continue;
        }
        for (int64_t i = 0; i < n_in; i++) tmp[i] = frand(seed) * 0.05f;
        quant_quantize_row(type, tmp, bw->w + (size_t)o * row_bytes, n_in);
    }
    bw->W = (tensor_view){.type = type, .n_dims = 2, .ne = {n_in, n_out, 1, 1}, .data = bw->w,
                          .nbytes = row_bytes * (size_t)n_out};
    maybe_pack(&bw->W, &bw->w);
    free(tmp);
}

static int bench_model(int threads, dtype_t type, int64_t T, const char *isa) {
    enum { LAYERS = 30, PER_LAYER = 7 };
    static const int64_t shapes[PER_LAYER][2] = {{576, 576},  {192, 576},  {192, 576}, {576, 576},
                                                 {1536, 576}, {1536, 576}, {576, 1536}};
    bench_weight ws[LAYERS * PER_LAYER + 1];
    unsigned seed = 7;
    double bytes = 0;
    for (int l = 0; l < LAYERS; l++)
        for (int k = 0; k < PER_LAYER; k++) {
            bench_fill(&ws[l * PER_LAYER + k], type, shapes[k][0], shapes[k][1], &seed);
            bytes += (double)ws[l * PER_LAYER + k].W.nbytes;
        }
    bench_fill(&ws[LAYERS * PER_LAYER], type == DT_BF16 ? DT_BF16 : DT_Q8_0, 49152, 576, &seed);
    double out_bytes = (double)ws[LAYERS * PER_LAYER].W.nbytes;
    float *x = malloc((size_t)(1536 * T) * sizeof(float));
    float *y = malloc((size_t)(49152 * T) * sizeof(float));
    for (int64_t i = 0; i < 1536 * T; i++) x[i] = frand(&seed);
    backend *be = backend_create_cpu(threads);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int level = cpu_get()->best; level >= ISA_SCALAR; level--)
        if (!isa || !strcmp(isa, cpu_isa_name((isa_level)level))) {
            be->isa = (isa_level)level;
            break;
        }
    enum { REPS = 15 };
    double lay[REPS], out[REPS], cpu_total = 0;
    for (int r = 0; r < REPS; r++) {
        double c0 = cpu_now_s(), t0 = time_now_s();
        for (int i = 0; i < LAYERS * PER_LAYER; i++) kern_matmul(be, &ws[i].W, x, T, y);
        double t1 = time_now_s();
        kern_matmul(be, &ws[LAYERS * PER_LAYER].W, x, T, y);
        double t2 = time_now_s();
        lay[r] = t1 - t0;
        out[r] = t2 - t1;
        cpu_total += cpu_now_s() - c0;
    }
    /* medians: the machine is shared, the slow runs are other people's load */
    for (int i = 0; i < REPS; i++)
        for (int j = i + 1; j < REPS; j++) {
            if (lay[j] < lay[i]) { double t = lay[i]; lay[i] = lay[j]; lay[j] = t; }
            if (out[j] < out[i]) { double t = out[i]; out[i] = out[j]; out[j] = t; }
        }
    double ml = lay[REPS / 2], mo = out[REPS / 2];
    printf("model %-5s %-7s T=%-3lld threads=%d  layers %7.3f ms (%5.1f GB/s)  output %7.3f ms "
           "(%5.1f GB/s)  step %7.3f ms  cpu %7.3f ms/step\n",
           dtype_name(type), cpu_isa_name(be->isa), (long long)T, threads, ml * 1e3,
           bytes / ml * 1e-9, mo * 1e3, out_bytes / mo * 1e-9, (ml + mo) * 1e3,
           cpu_total / REPS * 1e3);
    backend_destroy(be);
    for (int i = 0; i <= LAYERS * PER_LAYER; i++) free(ws[i].w);
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "model")) {
        char tname[32];
        snprintf(tname, sizeof tname, "%s", argc > 3 ? argv[3] : "q4_1");
        size_t tl = strlen(tname);
        if (tl > 1 && tname[tl - 1] == 'p') tname[tl - 1] = 0, pack_weights = true;
        int type = dtype_parse(tname);
        if (type < 0 || !kern_matmul_supports((dtype_t)type)) {
            fprintf(stderr, "bench_matmul: unsupported type\n");
            return 2;
        }
        return bench_model(argc > 2 ? atoi(argv[2]) : 2, (dtype_t)type,
                           argc > 4 ? atoll(argv[4]) : 1, argc > 5 ? argv[5] : NULL);
    }
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    const char *types = argc > 2 ? argv[2] : "q4_1,q8_0,bf16";
    const char *isas = argc > 3 ? argv[3] : NULL;
    static const int64_t shapes[][2] = {{576, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
    static const int64_t Ts[] = {1, 16, 512};
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
            size_t tl = strlen(tok);
            pack_weights = tl > 1 && tok[tl - 1] == 'p';
            if (pack_weights) tok[tl - 1] = 0;
            int type = dtype_parse(tok);
            if (type < 0 || !kern_matmul_supports((dtype_t)type)) continue;
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (size_t k = 0; k < sizeof Ts / sizeof Ts[0]; k++) {
                    /* the scalar path is a reference point, not worth minutes at T=512 */
                    if (level == ISA_SCALAR && (Ts[k] > 16 || shapes[s][0] > 2000)) continue;
                    bench_one(be, (dtype_t)type, shapes[s][0], shapes[s][1], Ts[k]);
                }
        }
    }
    backend_destroy(be);
    return 0;
}
