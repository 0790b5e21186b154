/* Implementation of base/cpu.h: cpuid/xgetbv on x86-64, getauxval on aarch64. */
#include "base/cpu.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__)
#include <cpuid.h>
static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

static cpu_features features;
static int detected;

static void detect(void) {
    memset(&features, 0, sizeof features);
#if defined(__x86_64__)
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        bool osxsave = c & (1u << 27);
        bool avx = c & (1u << 28);
        unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
        bool ymm_ok = avx && (xcr0 & 6) == 6;
        bool zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
        features.fma = ymm_ok && (c & (1u << 12));
        features.f16c = ymm_ok && (c & (1u << 29));
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            features.avx2 = ymm_ok && (b & (1u << 5));
            features.avx512f = zmm_ok && (b & (1u << 16));
            features.avx512dq = zmm_ok && (b & (1u << 17));
            features.avx512bw = zmm_ok && (b & (1u << 30));
            features.avx512vl = zmm_ok && (b & (1u << 31));
            features.avx512vnni = zmm_ok && (c & (1u << 11));
        }
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
            features.avxvnni = ymm_ok && (a & (1u << 4));
            features.avx512bf16 = zmm_ok && (a & (1u << 5));
        }
    }
    if (features.avx2 && features.fma && features.f16c) features.best = ISA_AVX2;
    if (features.best == ISA_AVX2 && features.avx512f && features.avx512bw && features.avx512vl &&
        features.avx512dq)
        features.best = ISA_AVX512;
#elif defined(__aarch64__)
    unsigned long hw = getauxval(AT_HWCAP);
    features.neon = true;
    features.dotprod = (hw & HWCAP_ASIMDDP) != 0;
    features.best = ISA_NEON;
#endif
    features.level = features.best;
    const char *cap = getenv("SGLC_ISA");
    if (cap && *cap) {
        isa_level want = ISA_SCALAR;
        if (!strcasecmp(cap, "avx2")) want = ISA_AVX2;
        else if (!strcasecmp(cap, "avx512")) want = ISA_AVX512;
        else if (!strcasecmp(cap, "neon")) want = ISA_NEON;
        if (want < features.level) features.level = want;
    }
}

const cpu_features *cpu_get(void) {
    if (!detected) {
        detect();
        detected = 1;
    }
    return &features;
}

isa_level cpu_set_level(isa_level level) {
    cpu_get();
    features.level = level <= features.best ? level : features.best;
    return features.level;
}

const char *cpu_isa_name(isa_level level) {
    switch (level) {
    case ISA_AVX512: return "avx512";
    case ISA_AVX2: return "avx2";
    case ISA_NEON: return "neon";
    default: return "scalar";
    }
}

void cpu_describe(char *buf, int len) {
    const cpu_features *f = cpu_get();
    buf[0] = 0;
    int n = 0;
#define ADD(flag, name)                                                                        \
    if (f->flag && n < len) n += snprintf(buf + n, (size_t)(len - n), "%s%s", n ? " " : "", name);
    ADD(avx2, "avx2") ADD(fma, "fma") ADD(f16c, "f16c") ADD(avx512f, "avx512f")
    ADD(avx512bw, "avx512bw") ADD(avx512vl, "avx512vl") ADD(avx512vnni, "avx512_vnni")
    ADD(avx512bf16, "avx512_bf16") ADD(avxvnni, "avx_vnni") ADD(neon, "neon")
    ADD(dotprod, "dotprod")
#undef ADD
    if (n == 0) snprintf(buf, (size_t)len, "none");
}

int cpu_count_available(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    return 1;
}
