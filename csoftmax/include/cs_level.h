/*
 * cs_level.h -- every kernel of the list at one instruction-set level, and
 * that level's table.  cs_dispatch.h includes it once per level, with
 *   CS_LEVEL       the suffix of the level's functions and table (base, v3, v4)
 *   CS_LEVEL_NAME  its name as users see it
 *   CS_VEC_BYTES   its vector width in bytes
 * and the compiler's target set for the level around the include.
 */
#define CS_CAT3_(a, b, c) a##_##b##_##c
#define CS_CAT3(a, b, c) CS_CAT3_(a, b, c)
#define CS_CAT2_(a, b) a##_##b
#define CS_CAT2(a, b) CS_CAT2_(a, b)

#include "cs_transpose.h"

#define T float
#define CS_T_BYTES 4   /* sizeof(T), for the preprocessor */
#define TI cs_i32a
#define EXP cs_exp_f32
#define EXPNEG cs_expneg_f32
#define EXPNEG_FMA cs_expneg_fma_f32
#define CS_FN(name) CS_CAT3(name, f32, CS_LEVEL)
#include "cs_kernels_t.h"
#undef T
#undef CS_T_BYTES
#undef TI
#undef EXP
#undef EXPNEG
#undef EXPNEG_FMA
#undef CS_FN

#define T double
#define CS_T_BYTES 8
#define TI cs_i64a
#define EXP cs_exp_f64
#define EXPNEG cs_expneg_f64
#define EXPNEG_FMA cs_expneg_fma_f64
#define CS_FN(name) CS_CAT3(name, f64, CS_LEVEL)
#include "cs_kernels_t.h"
#undef T
#undef CS_T_BYTES
#undef TI
#undef EXP
#undef EXPNEG
#undef EXPNEG_FMA
#undef CS_FN

/* the table: static where every level is compiled in one translation unit,
   of external linkage (hidden from outside the module) in a level's own unit
   (see cs_dispatch.h) */
#ifdef CS_LEVEL_UNIT
CS_UNIT_EXTERN const cs_ops CS_CAT2(cs_ops, CS_LEVEL);
const cs_ops CS_CAT2(cs_ops, CS_LEVEL) = {
#else
static const cs_ops CS_CAT2(cs_ops, CS_LEVEL) = {
#endif
    .name = CS_LEVEL_NAME,
#define CS_LEVEL_ENTRY(k) .k = {CS_CAT3(k, f32, CS_LEVEL), CS_CAT3(k, f64, CS_LEVEL)},
    CS_KERNELS(CS_LEVEL_ENTRY)
#undef CS_LEVEL_ENTRY
};

#undef CS_LEVEL
#undef CS_LEVEL_NAME
#undef CS_VEC_BYTES
