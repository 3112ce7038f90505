/*
 * cs_atomic.h -- relaxed atomic loads and stores of the runtime's settings, and
 * an exchange for the scratch block kept between calls.
 *
 * The thread count, the fork flag and the kernel table are read by calls that
 * run without the GIL (or on a free-threaded CPython, where there is none) while
 * another thread may set them.  Each is one int or one pointer, read once per
 * call and never combined with another setting, so relaxed order is enough: a
 * reader sees the old value or the new one, never a torn one, and the compiler
 * may not split, repeat or drop the access.  On x86-64 and aarch64 a relaxed
 * load or store is the same single move as a plain one: no cost on the hot path.
 *
 * GCC and clang have the __atomic builtins; elsewhere (MSVC) an aligned volatile
 * int or pointer access is a single load or store.
 */
#ifndef CS_ATOMIC_H
#define CS_ATOMIC_H

/* cs_swap_ptr(p, v): *p = v, returning the old *p, as one atomic exchange
   (acquire and release: what one thread wrote into the block it hands over
   is seen by the one that takes it).  Without the builtins it stores nothing
   and returns v: a block handed over comes straight back (the scratch cache
   then stays empty). */
#if defined(__GNUC__) || defined(__clang__)
static inline void *cs_swap_ptr(void **p, void *v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
#else
static inline void *cs_swap_ptr(void **p, void *v) { (void)p; return v; }
#endif

#if defined(__GNUC__) || defined(__clang__)
static inline int cs_load_int(const int *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void cs_store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline const void *cs_load_ptr(const void *const *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void cs_store_ptr(const void **p, const void *v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
#else
static inline int cs_load_int(const int *p) { return *(const volatile int *)p; }
static inline void cs_store_int(int *p, int v) { *(volatile int *)p = v; }
static inline const void *cs_load_ptr(const void *const *p) { return *(const void *const volatile *)p; }
static inline void cs_store_ptr(const void **p, const void *v) { *(const void *volatile *)p = v; }
#endif

#endif /* CS_ATOMIC_H */
