/*
 * cs_ops_base.c -- the kernels at the compiler's baseline (SSE2 on x86-64,
 * NEON on aarch64), the level every CPU runs: a translation unit of its own,
 * compiled in parallel with the other levels and the Cython modules, and
 * free of Python headers, so that builds for several Pythons share it.
 */
#define CS_LEVEL_UNIT 0
#include "cs_dispatch.h"
