/* cs_threads.h -- OpenMP's thread count, or 1 in a build without OpenMP. */
#ifndef CS_THREADS_H
#define CS_THREADS_H
#ifdef _OPENMP
#include <omp.h>
#define CS_HAVE_OPENMP 1
#else
#define CS_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
#endif
#endif
