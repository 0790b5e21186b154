/* Matmul throughput per weight type, shape, batch size and ISA path: GFLOP/s (2*N*K*T per
 * second) and GB/s of weight bytes streamed, on SmolLM2-135M's shapes. Not a test: it prints.
 * Build by hand against a kernels build, e.g.
 *   cmake -S . -B build-mm -DSGLC_ONLY="base;kernels" && cmake --build build-mm -j2
 *   gcc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/bench_matmul.c build-mm/libsglc_core.a \
 *       -lm -lpthread -o build-mm/bench_matmul
 * Usage: bench_matmul [threads=2] [types=q4_1,q8_0,bf16] [isa list=all the CPU has] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/timeutil.h"
#include "kernels/backend.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

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
    printf("%-7s %-5s [%5lldx%4lld] T=%-4lld %9.3f ms %8.1f GFLOP/s %7.1f GB/s %8.1f GFLOP/cpu-s\n",
           cpu_isa_name(be->isa), dtype_name(type), (long long)n_out, (long long)n_in,
           (long long)T, sec * 1e3, flops / sec * 1e-9,
           (double)row_bytes * (double)n_out / sec * 1e-9, flops / cpu * 1e-9);
    fflush(stdout);
    free(w);
    free(tmp);
    free(x);
    free(y);
}

int main(int argc, char **argv) {
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
