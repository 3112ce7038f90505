/*
 * cs_alloc.h -- NumPy data allocator for large outputs that keeps a few freed
 * blocks for the next call of the same size.
 *
 * A fresh output of tens of megabytes comes from mmap and its pages are
 * faulted in and zeroed by the kernel on first write: for softmax of a
 * (8192, 1000) float64 array that doubles the time of the call.  glibc reuses
 * freed blocks up to 32 MiB (its dynamic mmap threshold) but unmaps larger
 * ones at once.  Blocks of at least CS_CACHE_MIN bytes made by this handler
 * are kept on free (at most CS_CACHE_SLOTS of them, CS_CACHE_MAX bytes in
 * all, the most recently freed ones), and a request of exactly the same size
 * takes one back.  Everything else goes to the allocator NumPy had when the
 * module was loaded (its default one: hugepage advice on large blocks).
 *
 * Each block carries its size and the base allocator's pointer just before
 * its data, which is 64-byte aligned.  The cache is guarded by a lock: arrays
 * may be allocated and freed from any thread, with the GIL or, on a
 * free-threaded CPython, without one.  cs_base is written once, at import,
 * before the handler can be used, and only read after.
 */
#ifndef CS_ALLOC_H
#define CS_ALLOC_H

#include <Python.h>
#include <pythread.h>
#include <string.h>
#include <numpy/ndarraytypes.h>

#define CS_CACHE_MIN ((size_t)16 << 20)
#define CS_CACHE_MAX ((size_t)256 << 20)
#define CS_CACHE_SLOTS 2
#define CS_ALIGN 64
#define CS_HEAD (2 * CS_ALIGN)

typedef struct {
    void *raw;   /* the base allocator's block */
    size_t size; /* the bytes asked for */
} cs_block_head;

static PyDataMemAllocator cs_base;

/* The cache's lock.  From 3.13 a PyMutex: static (nothing to allocate), one
 * compare-and-swap when free, and a thread that has to wait is parked detached
 * from the interpreter (it holds up neither the GIL nor a free-threaded
 * CPython's stop-the-world pauses).  Before 3.13 a PyThread lock, allocated at
 * import.  Nothing that takes it runs Python code or another lock while
 * holding it. */
#if PY_VERSION_HEX >= 0x030D0000
static PyMutex cs_mutex;
#define CS_LOCK() PyMutex_Lock(&cs_mutex)
#define CS_UNLOCK() PyMutex_Unlock(&cs_mutex)
#else
static PyThread_type_lock cs_lock;
#define CS_LOCK() PyThread_acquire_lock(cs_lock, WAIT_LOCK)
#define CS_UNLOCK() PyThread_release_lock(cs_lock)
#endif
static struct {
    void *data;
    size_t size;
} cs_slot[CS_CACHE_SLOTS]; /* cs_slot[0] the most recent */
static size_t cs_cached;

static inline cs_block_head *cs_head(void *data)
{
    return (cs_block_head *)((char *)data - sizeof(cs_block_head));
}

/* A new block of the base allocator (calloc when zero), aligned, headed. */
static void *cs_new_block(size_t size, int zero)
{
    if (size > (size_t)-1 - CS_HEAD)
        return NULL;
    void *raw = zero ? cs_base.calloc(cs_base.ctx, size + CS_HEAD, 1)
                     : cs_base.malloc(cs_base.ctx, size + CS_HEAD);
    if (raw == NULL)
        return NULL;
    uintptr_t p = ((uintptr_t)raw + sizeof(cs_block_head) + CS_ALIGN - 1) & ~(uintptr_t)(CS_ALIGN - 1);
    void *data = (void *)p;
    cs_head(data)->raw = raw;
    cs_head(data)->size = size;
    return data;
}

static void cs_drop_block(void *data)
{
    cs_block_head *h = cs_head(data);
    cs_base.free(cs_base.ctx, h->raw, h->size + CS_HEAD);
}

static void *cs_take_cached(size_t size)
{
    void *data = NULL;
    if (size < CS_CACHE_MIN)
        return NULL;
    CS_LOCK();
    for (int k = 0; k < CS_CACHE_SLOTS; k++) {
        if (cs_slot[k].data != NULL && cs_slot[k].size == size) {
            data = cs_slot[k].data;
            cs_cached -= size;
            for (int j = k; j + 1 < CS_CACHE_SLOTS; j++)
                cs_slot[j] = cs_slot[j + 1];
            cs_slot[CS_CACHE_SLOTS - 1].data = NULL;
            cs_slot[CS_CACHE_SLOTS - 1].size = 0;
            break;
        }
    }
    CS_UNLOCK();
    return data;
}

static void *cs_malloc(void *ctx, size_t size)
{
    (void)ctx;
    void *data = cs_take_cached(size);
    return data != NULL ? data : cs_new_block(size, 0);
}

static void *cs_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (elsize != 0 && nelem > (size_t)-1 / elsize)
        return NULL;
    return cs_new_block(nelem * elsize, 1);
}

static void cs_free(void *ctx, void *data, size_t size_hint)
{
    (void)ctx;
    (void)size_hint; /* the head knows */
    if (data == NULL)
        return;
    size_t size = cs_head(data)->size;
    void *evict[CS_CACHE_SLOTS];
    int nevict = 0;
    if (size < CS_CACHE_MIN || size > CS_CACHE_MAX) {
        cs_drop_block(data);
        return;
    }
    CS_LOCK();
    /* make room: the oldest blocks go first (the slots are filled from 0) */
    int n = 0;
    while (n < CS_CACHE_SLOTS && cs_slot[n].data != NULL)
        n++;
    while (n > 0 && (n == CS_CACHE_SLOTS || cs_cached + size > CS_CACHE_MAX)) {
        n--;
        evict[nevict++] = cs_slot[n].data;
        cs_cached -= cs_slot[n].size;
        cs_slot[n].data = NULL;
        cs_slot[n].size = 0;
    }
    for (int k = n; k > 0; k--)
        cs_slot[k] = cs_slot[k - 1];
    cs_slot[0].data = data;
    cs_slot[0].size = size;
    cs_cached += size;
    CS_UNLOCK();
    for (int k = 0; k < nevict; k++)
        cs_drop_block(evict[k]);
}

static void *cs_realloc(void *ctx, void *data, size_t size)
{
    if (data == NULL)
        return cs_malloc(ctx, size);
    void *moved = cs_new_block(size, 0);
    if (moved == NULL)
        return NULL;
    size_t old = cs_head(data)->size;
    memcpy(moved, data, old < size ? old : size);
    cs_free(ctx, data, old);
    return moved;
}

/* Blocks in the cache, and their bytes. */
static void cs_cache_info(size_t *nblocks, size_t *nbytes)
{
    CS_LOCK();
    size_t n = 0;
    for (int k = 0; k < CS_CACHE_SLOTS; k++)
        n += cs_slot[k].data != NULL;
    *nblocks = n;
    *nbytes = cs_cached;
    CS_UNLOCK();
}

/* Give every cached block back to the base allocator. */
static void cs_cache_clear(void)
{
    void *evict[CS_CACHE_SLOTS];
    int nevict = 0;
    CS_LOCK();
    for (int k = 0; k < CS_CACHE_SLOTS; k++) {
        if (cs_slot[k].data != NULL)
            evict[nevict++] = cs_slot[k].data;
        cs_slot[k].data = NULL;
        cs_slot[k].size = 0;
    }
    cs_cached = 0;
    CS_UNLOCK();
    for (int k = 0; k < nevict; k++)
        cs_drop_block(evict[k]);
}

static PyDataMem_Handler cs_handler = {
    "csoftmax_block_cache",
    1,
    {NULL, cs_malloc, cs_calloc, cs_realloc, cs_free},
};

/* Take the current (base) allocator's functions; 0 on success. */
static int cs_alloc_init(PyDataMem_Handler *base)
{
    cs_base = base->allocator;
#if PY_VERSION_HEX >= 0x030D0000
    return 0;
#else
    cs_lock = PyThread_allocate_lock();
    return cs_lock == NULL ? -1 : 0;
#endif
}

#endif
