/*
 * cs_ops_v4.c -- the kernels at x86-64-v4 (AVX-512), a translation unit of
 * their own so that the build compiles the levels in parallel (each level is
 * about a third of the compile time).  Elsewhere (on aarch64, or with a
 * compiler without the x86-64 level names) this unit is empty.
 */
#define CS_LEVEL_UNIT 4
#include "cs_dispatch.h"

typedef int cs_ops_v4_unit; /* an ISO C unit is not empty */
