/*
 * cs_dispatch.h -- every kernel compiled once per instruction-set level, and the
 * choice among them.
 *
 * The default build targets the compiler's baseline (SSE2 on x86-64), where exp
 * stays scalar.  With GCC on x86-64 the same kernels are compiled again under
 * `#pragma GCC target` for x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512), and
 * cs_cpu_level() says which of them this CPU runs.  No -march=native, no
 * -ffast-math: IEEE semantics hold at every level.
 *
 * Only _runtime.pyx includes this file; the other modules see cs_ops.h.
 */
#ifndef CS_DISPATCH_H
#define CS_DISPATCH_H

#include "cs_ops.h"
#include "cs_math.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CS_MULTI_ISA 1
#else
#define CS_MULTI_ISA 0
#endif

#define CS_CAT3_(a, b, c) a##_##b##_##c
#define CS_CAT3(a, b, c) CS_CAT3_(a, b, c)

#define CS_OPS_FIELDS(S, L) \
    CS_CAT3(softmax_rows, S, L), CS_CAT3(log_softmax_rows, S, L), \
    CS_CAT3(softmax_cols, S, L), CS_CAT3(log_softmax_cols, S, L), \
    CS_CAT3(softmax_backward_rows, S, L), CS_CAT3(log_softmax_backward_rows, S, L), \
    CS_CAT3(softmax_backward_cols, S, L), CS_CAT3(log_softmax_backward_cols, S, L), \
    CS_CAT3(jacobian_rows, S, L), CS_CAT3(ce_index_rows, S, L), CS_CAT3(ce_prob_rows, S, L), \
    CS_CAT3(piece_sumexp, S, L), CS_CAT3(piece_finish, S, L)

/* One level: both dtypes, then its table. */
#define CS_LEVEL_TABLE(L, NAME) \
    static const cs_ops cs_ops_##L = {NAME, CS_OPS_FIELDS(f32, L), CS_OPS_FIELDS(f64, L)};

#define CS_VEC_BYTES 16
#define T float
#define EXP cs_exp_f32
#define EXPNEG cs_expneg_f32
#define CS_FN(name) CS_CAT3(name, f32, base)
#include "cs_kernels_t.h"
#undef T
#undef EXP
#undef EXPNEG
#undef CS_FN
#define T double
#define EXP cs_exp_f64
#define EXPNEG cs_expneg_f64
#define CS_FN(name) CS_CAT3(name, f64, base)
#include "cs_kernels_t.h"
#undef T
#undef EXP
#undef EXPNEG
#undef CS_FN
CS_LEVEL_TABLE(base, "baseline")

#if CS_MULTI_ISA
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#undef CS_VEC_BYTES
#define CS_VEC_BYTES 32
#define T float
#define EXP cs_exp_f32
#define EXPNEG cs_expneg_f32
#define CS_FN(name) CS_CAT3(name, f32, v3)
#include "cs_kernels_t.h"
#undef T
#undef EXP
#undef EXPNEG
#undef CS_FN
#define T double
#define EXP cs_exp_f64
#define EXPNEG cs_expneg_f64
#define CS_FN(name) CS_CAT3(name, f64, v3)
#include "cs_kernels_t.h"
#undef T
#undef EXP
#undef EXPNEG
#undef CS_FN
#pragma GCC pop_options
CS_LEVEL_TABLE(v3, "x86-64-v3")

#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4", "prefer-vector-width=512")
#undef CS_VEC_BYTES
#define CS_VEC_BYTES 64
#define T float
#define EXP cs_exp_f32
#define EXPNEG cs_expneg_f32
#define CS_FN(name) CS_CAT3(name, f32, v4)
#include "cs_kernels_t.h"
#undef T
#undef EXP
#undef EXPNEG
#undef CS_FN
#define T double
#define EXP cs_exp_f64
#define EXPNEG cs_expneg_f64
#define CS_FN(name) CS_CAT3(name, f64, v4)
#include "cs_kernels_t.h"
#undef T
#undef EXP
#undef EXPNEG
#undef CS_FN
#pragma GCC pop_options
CS_LEVEL_TABLE(v4, "x86-64-v4")
#endif

/* The highest level this CPU (and its OS) runs: 0 baseline, 3 or 4. */
static int cs_cpu_level(void)
{
#if CS_MULTI_ISA
    __builtin_cpu_init();
    int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
    return v4 ? 4 : v3 ? 3 : 0;
#else
    return 0;
#endif
}

/* The table for a level (one this build has; unknown levels get baseline). */
static const cs_ops *cs_ops_for(int level)
{
#if CS_MULTI_ISA
    if (level >= 4)
        return &cs_ops_v4;
    if (level == 3)
        return &cs_ops_v3;
#endif
    (void)level;
    return &cs_ops_base;
}

#endif /* CS_DISPATCH_H */
