/*
 * cs_ops_v3.c -- the kernels at x86-64-v3 (AVX2, FMA), a translation unit of
 * their own so that the build compiles the levels in parallel (each level is
 * about a third of the compile time).  Elsewhere (on aarch64, or with a
 * compiler without the x86-64 level names) this unit is empty.
 */
#define CS_LEVEL_UNIT 3
#include "cs_dispatch.h"

typedef int cs_ops_v3_unit; /* an ISO C unit is not empty */
