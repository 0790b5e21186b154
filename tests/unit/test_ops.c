/* Tests of the element-wise ops in kernels/ops.h whose vector paths differ from the scalar
 * reference: the SiLU gate (vector exp) against expf, and its batch invariance (an element's
 * result is the same wherever it falls in a row, a thread's share or a tail). */
/* cmocka.h needs these before it */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cpu.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "kernel_test_util.h"

static void test_silu_mul(void **state) {
    (void)state;
    backend *be = new_backend(2);
    enum { T = 7, N = 1539 }; /* rows and a total that no thread split cuts into multiples of 8 */
    float *g = malloc(T * N * sizeof(float)), *u = malloc(T * N * sizeof(float));
    float *y = malloc(T * N * sizeof(float)), *one = malloc(N * sizeof(float));
    unsigned seed = 3;
    for (int i = 0; i < T * N; i++) {
        g[i] = frand(&seed) * (i % 97 == 0 ? 120.0f : 8.0f); /* some far into exp's clamp */
        u[i] = frand(&seed);
    }
    const isa_level levels[] = {ISA_SCALAR, cpu_get()->best};
    for (int l = 0; l < 2; l++) {
        const isa_level isa = levels[l];
        be->isa = isa;
        memcpy(y, g, T * N * sizeof(float));
        kern_silu_mul(be, y, u, T, N);
        for (int i = 0; i < T * N; i++) {
            double ref = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
            if (fabs(y[i] - ref) > 1e-6 * (1.0 + fabs(ref)))
                fail_msg("%s: silu(%g) * %g = %g, expected %g", cpu_isa_name(isa), g[i], u[i], y[i],
                         ref);
        }
        /* each row alone (another split, other tails) gives the same bits */
        for (int t = 0; t < T; t++) {
            memcpy(one, g + t * N, N * sizeof(float));
            kern_silu_mul(be, one, u + t * N, 1, N);
            assert_memory_equal(one, y + t * N, N * sizeof(float));
        }
    }
    free(g);
    free(u);
    free(y);
    free(one);
    backend_destroy(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silu_mul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
