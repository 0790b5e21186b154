/* CPU feature detection. Kernels pick their path at run time from these flags, never from the
 * compiler's target, so one binary runs on any x86-64 (or aarch64) machine. SGLC_ISA=scalar|
 * avx2|avx512|neon in the environment caps the level, so tests can run every path the machine
 * has and benchmarks can compare them. */
#ifndef SGLC_BASE_CPU_H
#define SGLC_BASE_CPU_H

#include <stdbool.h>

typedef enum { ISA_SCALAR = 0, ISA_NEON = 1, ISA_AVX2 = 2, ISA_AVX512 = 3 } isa_level;

typedef struct {
    bool avx2, fma, f16c;              /* AVX2 path needs all three */
    bool avx512f, avx512bw, avx512vl, avx512dq; /* AVX-512 path needs all four */
    bool avx512vnni, avx512bf16, avxvnni;
    bool neon, dotprod;
    isa_level best;   /* highest level the hardware supports */
    isa_level level;  /* level in use: best, capped by SGLC_ISA */
} cpu_features;

/* Detected once, then cached; thread-safe after the first call (call it at start-up). */
const cpu_features *cpu_get(void);
/* Caps the level in use (tests loop over levels); returns the level actually set. */
isa_level cpu_set_level(isa_level level);
const char *cpu_isa_name(isa_level level);
/* A space-separated list of the features found, for logs and check_system. */
void cpu_describe(char *buf, int len);
/* CPUs this process may run on (sched_getaffinity), at least 1. */
int cpu_count_available(void);

#endif
