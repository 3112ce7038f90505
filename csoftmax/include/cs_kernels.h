/*
 * cs_kernels.h -- the list of compiled kernels, the task they run on, and the
 * table of one instruction-set level.
 *
 * CS_KERNELS is the one list.  It expands into the fields of cs_ops (one
 * function per dtype), the enum of kernel ids, the names the Cython modules
 * look kernels up by, and (in cs_level.h) the instantiation of every kernel at
 * every level.  Adding a kernel: write it in cs_kernels_t.h, add its name here.
 *
 * Every kernel has one signature: it runs the units [lo, hi) of a task (rows,
 * tiles of columns or pieces of one long row, as its comment in
 * cs_kernels_t.h says), with `scratch` private to the calling thread.  The
 * Cython layer fills the task, owns the threads and splits the units between
 * them; the kernels only compute.  Strides are in elements.
 */
#ifndef CS_KERNELS_H
#define CS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef ptrdiff_t cs_intp;
/* integers of a float's and a double's width that may read their bits in
   place (the kernels' max over integer keys, cs_kernels_t.h) */
#if defined(__GNUC__) || defined(__clang__)
typedef int32_t __attribute__((may_alias)) cs_i32a;
typedef int64_t __attribute__((may_alias)) cs_i64a;
#else
typedef int32_t cs_i32a;
typedef int64_t cs_i64a;
#endif

#define CS_KERNELS(X)                                                         \
    X(softmax_rows) X(log_softmax_rows)                                       \
    X(softmax_cols) X(log_softmax_cols)                                       \
    X(piece_sumexp) X(softmax_piece_finish) X(log_softmax_piece_finish)       \
    X(softmax_backward_rows) X(log_softmax_backward_rows)                     \
    X(softmax_backward_pieces) X(softmax_backward_piece_finish)               \
    X(log_softmax_backward_pieces) X(log_softmax_backward_piece_finish)       \
    X(softmax_backward_cols) X(log_softmax_backward_cols)                     \
    X(jacobian_rows)                                                          \
    X(label_scan) X(ce_index_rows) X(ce_prob_rows)                            \
    X(logsumexp_rows) X(logsumexp_cols) X(logsumexp_pieces)                  \
    X(softmax_where_rows) X(log_softmax_where_rows)

/* dtypes: the index into each field of cs_ops */
enum { CS_F32 = 0, CS_F64 = 1 };

/* One row longer than this is split into pieces of this length that the
   threads share (softmax over axis=None of a large array is one such row).
   The pieces are fixed, so the result does not depend on the number of
   threads. */
#define CS_PIECE 16384

/* label_scan takes labels in units of this many. */
#define CS_SCAN 16384

/* A prefetch hint for the line holding p, for reading (rw 0) or writing (1),
   locality 0-3 (both constants): GCC and clang; other compilers skip it. */
#if defined(__GNUC__)
#define CS_PREFETCH(p, rw, locality) __builtin_prefetch((p), (rw), (locality))
#else
#define CS_PREFETCH(p, rw, locality) ((void)(p))
#endif

/* Streaming (non-temporal) stores, for outputs written once and not read
   back soon: GCC's intrinsics, declared for every target whatever the
   compiler's flags (a function uses those its level has); clang's generic
   builtin. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#endif

/* Widest tile of columns a *_cols kernel takes. */
#define CS_TILE 256

/* The *_where_rows kernels work a block of rows of about this many bytes at a
   time in their scratch, which must hold max(CS_WHERE_BYTES, C * itemsize). */
#define CS_WHERE_BYTES 16384

/* A call whose input is larger than this streams its rows from memory:
   softmax prefetches its mid-width rows a group ahead (mid_rows), and the
   backward passes take theirs one at a time (backward_mid): the hardware
   prefetchers do not follow four short rows read side by side.  Float32
   softmax on an AMD Zen 3 core at x86-64-v3, kernel-only, 8.2M entries on two
   threads: C = 100 0.49-0.66 against 0.80-0.94 ns an entry, C = 256
   0.75-0.80 against 0.90-0.94; but in cache (409600 entries) 5-25 % slower,
   hence the threshold, above what two arrays could keep of a core's share of
   the last-level cache.  The backward passes do so for rows up to
   CS_STREAM_ROW_BYTES; log_softmax, whose last pass reads x again, gained
   nothing (C = 100-256). */
#define CS_STREAM_BYTES ((cs_intp)8 << 20)
#define CS_STREAM_ROW_BYTES 2048
/* In such a call, softmax (and the cross-entropy's plain pass) takes rows
   of CS_STREAM_WIDE_BYTES or more one at a time, as it does wide rows (one stream for the prefetchers; the row's
   stores keep the memory busy while its exponentials run), and prefetches
   only shorter ones.  AMD Zen 4, kernel-only, 8.2M entries on two threads,
   ns an entry, min / median of 5 (a copy: 0.18-0.28 float32, 0.53-0.70
   float64): x86-64-v4 float32 C = 128 0.36 / 0.40 against 0.47 / 0.49,
   C = 256 0.26 / 0.38 against 0.42 / 0.45, C = 1000 0.25 / 0.31 against
   0.37 / 0.48; float64 C = 256 0.56 / 0.65 against 0.85 / 0.92, C = 64
   (512 bytes) 0.88 / 0.94 against 0.92 / 1.01; x86-64-v3 float32 C = 256
   0.43 against 0.53, C = 1000 0.42 / 0.48 against 0.56 / 0.58, float64
   C = 256 0.95 / 1.10 against 1.19 / 1.22.  Below 512 bytes the four rows
   stay ahead (float32 C = 64 0.49 against 0.29 min, C = 48 0.67 against
   0.39; C = 100 even). */
#define CS_STREAM_WIDE_BYTES 512

typedef struct cs_task {
    /* operands, with the stride between rows (or outer blocks) and classes */
    const void *x;
    cs_intp xs0, xs1;
    const void *g;              /* second input: grad_output or targets */
    cs_intp gs0, gs1;
    void *y;                    /* output */
    cs_intp ys0, ys1;
    cs_intp C;                  /* classes */
    cs_intp N;                  /* rows of the whole call (the row kernels, cross-entropy: whether it streams) */
    cs_intp inner, W;           /* *_cols: columns per outer block, per tile */
    cs_intp shift;              /* *_cols: the first tile of a block is W - shift wide, so that
                                   the others start on a cache line of x (see tile_at) */
    /* cross-entropy */
    const cs_intp *label;       /* class indices, or NULL for probabilities */
    const double *rscale;       /* per-row gradient scale (or NULL: 1), times gscale */
    double gscale;
    double *loss;               /* per-row losses */
    const double *cweight;      /* per-class weights, or NULL (all 1) */
    const void *cweight_t;      /* the same in the logits' dtype (NULL with cweight) */
    double cwsum;               /* their sum (C without them) */
    double smooth;              /* label smoothing: the target is (1 - smooth) y + smooth / C */
    cs_intp ignore;             /* rows with this label add nothing (index targets) */
    cs_intp nlabel;             /* label_scan: labels in all, */
    cs_intp *scan;              /* and per unit, the first bad one's index (or -1) and the ignored count */
    /* one long row in pieces of `piece` entries */
    cs_intp piece;
    double *pmax, *psum;        /* each piece's max and sum of exp(x - max) (logsumexp:
                                   two sums a piece, see logsumexp_pieces; the
                                   backward passes: see *_backward_pieces) */
    double M, S;                /* the row's, once combined */
    int keep;                   /* the exponentials are kept in y */
    /* logsumexp: the sign of each row's sum (or NULL), beside y */
    void *sign;
    /* softmax where=: which entries take part, rows (or outer blocks) ms0
       apart, classes ms1 apart (tiles: columns contiguous) */
    const unsigned char *mask;
    cs_intp ms0, ms1;
    /* softmax_cols, log_softmax_cols: the tiles write their output with
       streaming stores (stream_strip) */
    int nt;
} cs_task;

typedef void (*cs_kernel)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch);

/* Piece p of a long row (t->C entries, t->piece a piece): its first entry,
   and its length in *n (the last piece may be short). */
static inline cs_intp cs_piece_at(const cs_task *t, cs_intp p, cs_intp *n)
{
    const cs_intp j0 = p * t->piece;
    *n = t->C - j0 < t->piece ? t->C - j0 : t->piece;
    return j0;
}

enum {
#define CS_KERNEL_ID(k) CS_K_##k,
    CS_KERNELS(CS_KERNEL_ID)
#undef CS_KERNEL_ID
    CS_NKERNELS
};

typedef struct cs_ops {
    const char *name;
#define CS_KERNEL_FIELD(k) cs_kernel k[2];
    CS_KERNELS(CS_KERNEL_FIELD)
#undef CS_KERNEL_FIELD
} cs_ops;

static const char *const cs_kernel_names[] = {
#define CS_KERNEL_NAME(k) #k,
    CS_KERNELS(CS_KERNEL_NAME)
#undef CS_KERNEL_NAME
};

/* The id of a kernel by name, or -1. */
static inline int cs_kernel_id(const char *name)
{
    for (int k = 0; k < CS_NKERNELS; k++) {
        const char *a = cs_kernel_names[k], *b = name;
        while (*a && *a == *b)
            a++, b++;
        if (*a == *b)
            return k;
    }
    return -1;
}

/* The kernel `id` of the table for `dtype`. */
static inline cs_kernel cs_pick(const cs_ops *ops, int id, int dtype)
{
    switch (id) {
#define CS_KERNEL_CASE(k) case CS_K_##k: return ops->k[dtype];
        CS_KERNELS(CS_KERNEL_CASE)
#undef CS_KERNEL_CASE
    }
    return NULL;
}

#endif /* CS_KERNELS_H */
