/*
 * cs_dispatch.h -- every kernel compiled once per instruction-set level, and the
 * choice among them.
 *
 * The default build targets the compiler's baseline: SSE2 on x86-64, NEON
 * (Advanced SIMD, always present) on aarch64, where the exp loops vectorise with
 * 4 float / 2 double lanes.  On x86-64 the same kernels are compiled again for
 * x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512): under `#pragma GCC target` with
 * GCC, under `#pragma clang attribute` (a target attribute on every function of
 * the region) with clang, which ignores the GCC pragma.  cs_cpu_level() says
 * which of them this CPU runs.  No -march=native, no -ffast-math: IEEE semantics
 * hold at every level.
 *
 * Clang 14 refuses prefer-vector-width in a target attribute; setup.py passes
 * -mprefer-vector-width=512 to clang on x86-64 instead (it only matters where
 * AVX-512 is enabled, i.e. in the x86-64-v4 functions).
 *
 * Only _runtime.pyx includes this file (and, for one level each, the units in
 * csoftmax/src/); the other modules reach the kernels through it (cs_kernels.h
 * declares what they see).
 */
#ifndef CS_DISPATCH_H
#define CS_DISPATCH_H

#include "cs_kernels.h"
#include "cs_math.h"

/* clang knows the x86-64-v3/v4 names from LLVM 12 (Apple clang 13) on */
#if defined(__x86_64__) && defined(__clang__)
#if (defined(__apple_build_version__) && __clang_major__ >= 13) || \
    (!defined(__apple_build_version__) && __clang_major__ >= 12)
#define CS_MULTI_ISA 1
#else
#define CS_MULTI_ISA 0
#endif
#elif defined(__x86_64__) && defined(__GNUC__)
#define CS_MULTI_ISA 1
#else
#define CS_MULTI_ISA 0
#endif

/* CS_MAX_LEVEL (0, 3 or 4; default 4) leaves out the levels above it, as if
   the CPU had none of them: a build for one machine need not compile kernels
   its CPU cannot run (the sanitizer build's instrumented level units take
   minutes each). */
#ifndef CS_MAX_LEVEL
#define CS_MAX_LEVEL 4
#endif
#define CS_HAVE_V3 (CS_MULTI_ISA && CS_MAX_LEVEL >= 3)
#define CS_HAVE_V4 (CS_MULTI_ISA && CS_MAX_LEVEL >= 4)

/* CS_V4_ON_V3 (a test build's, never a release's) compiles the x86-64-v4
   level's kernels, their 64-byte vector widths and all that follows from them
   (row groups, unrolls, thresholds, tails), for x86-64-v3, and chooses them on
   any CPU with v3: on a CPU without AVX-512, the tests then run the v4 kernels'
   C source, as AVX2 code.  Only the machine code of the level differs from a
   real v4 build. */
#ifndef CS_V4_ON_V3
#define CS_V4_ON_V3 0
#endif

/* CS_LEVEL_UNIT (0 for the baseline, 3 or 4) makes a translation unit of one
   level alone, its table of external linkage: the package build compiles
   every level in a unit of its own (csoftmax/src/), in parallel with the rest,
   and defines CS_SPLIT_LEVELS where it includes this file to take their
   tables from there.  Those units include no Python header, so builds for
   different Pythons with one compiler make the same objects (a compiler cache
   shares them).  Without either macro, every level is compiled here, in one
   unit (as the C kernel test does).  A level's table, as the other units see
   it, is not exported from the module. */
#if defined(__GNUC__) || defined(__clang__)
#define CS_UNIT_EXTERN extern __attribute__((visibility("hidden")))
#else
#define CS_UNIT_EXTERN extern
#endif

#if (defined(CS_LEVEL_UNIT) && CS_LEVEL_UNIT == 0) || (!defined(CS_LEVEL_UNIT) && !defined(CS_SPLIT_LEVELS))
#define CS_LEVEL base
#define CS_LEVEL_NAME "baseline"
#define CS_VEC_BYTES 16
#include "cs_level.h"
#endif

#if defined(CS_SPLIT_LEVELS) && !defined(CS_LEVEL_UNIT)
CS_UNIT_EXTERN const cs_ops cs_ops_base;
#endif

#if CS_MULTI_ISA && defined(CS_SPLIT_LEVELS) && !defined(CS_LEVEL_UNIT)
#if CS_HAVE_V3
CS_UNIT_EXTERN const cs_ops cs_ops_v3;
#endif
#if CS_HAVE_V4
CS_UNIT_EXTERN const cs_ops cs_ops_v4;
#endif
#elif CS_MULTI_ISA
#if defined(__clang__)
#if (!defined(CS_LEVEL_UNIT) || CS_LEVEL_UNIT == 3) && CS_HAVE_V3
#pragma clang attribute push (__attribute__((target("arch=x86-64-v3"))), apply_to = function)
#define CS_LEVEL v3
#define CS_LEVEL_NAME "x86-64-v3"
#define CS_VEC_BYTES 32
#include "cs_level.h"
#pragma clang attribute pop
#endif
#if (!defined(CS_LEVEL_UNIT) || CS_LEVEL_UNIT == 4) && CS_HAVE_V4
#if CS_V4_ON_V3
#pragma clang attribute push (__attribute__((target("arch=x86-64-v3"))), apply_to = function)
#else
#pragma clang attribute push (__attribute__((target("arch=x86-64-v4"))), apply_to = function)
#endif
#define CS_LEVEL v4
#define CS_LEVEL_NAME "x86-64-v4"
#define CS_VEC_BYTES 64
#include "cs_level.h"
#pragma clang attribute pop
#endif
#else
#if (!defined(CS_LEVEL_UNIT) || CS_LEVEL_UNIT == 3) && CS_HAVE_V3
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define CS_LEVEL v3
#define CS_LEVEL_NAME "x86-64-v3"
#define CS_VEC_BYTES 32
#include "cs_level.h"
#pragma GCC pop_options
#endif
#if (!defined(CS_LEVEL_UNIT) || CS_LEVEL_UNIT == 4) && CS_HAVE_V4
#pragma GCC push_options
#if CS_V4_ON_V3
#pragma GCC target("arch=x86-64-v3")
#else
#pragma GCC target("arch=x86-64-v4", "prefer-vector-width=512")
#endif
#define CS_LEVEL v4
#define CS_LEVEL_NAME "x86-64-v4"
#define CS_VEC_BYTES 64
#include "cs_level.h"
#pragma GCC pop_options
#endif
#endif
#endif

#ifndef CS_LEVEL_UNIT
/* The highest level this CPU (and its OS) runs: 0 baseline, 3 or 4. */
static int cs_cpu_level(void)
{
#if CS_MULTI_ISA
    __builtin_cpu_init();
    int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    int v4 = v3 && (CS_V4_ON_V3 || (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                    __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                                    __builtin_cpu_supports("avx512vl")));
    return v4 && CS_HAVE_V4 ? 4 : v3 && CS_HAVE_V3 ? 3 : 0;
#else
    return 0;
#endif
}

/* Whether the packed column tiles of a call that streams from memory write
   their output with streaming stores on this CPU (tiles() in _runtime.pyx
   says where): on Intel's cores.  Each class row of such a tile is a strip
   of a few lines, a row stride from the last; reading those lines in
   before writing them cost a fifth of the time of softmax over axis 0 of
   (1000, 8192) float32 on an Intel Xeon (family 6 model 207).  On an AMD
   Zen 4 core streaming stores were slower there (4.65 against 3.7-4.0
   ms). */
static int cs_cpu_stream_tiles(void)
{
#if CS_MULTI_ISA
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
#else
    return 0;
#endif
}

/* The table for a level (one this build has; unknown levels get baseline). */
static const cs_ops *cs_ops_for(int level)
{
#if CS_HAVE_V4
    if (level >= 4)
        return &cs_ops_v4;
#endif
#if CS_HAVE_V3
    if (level >= 3)
        return &cs_ops_v3;
#endif
    (void)level;
    return &cs_ops_base;
}
#endif /* !CS_LEVEL_UNIT */

#endif /* CS_DISPATCH_H */
