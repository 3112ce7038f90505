/*
 * cs_kernels_t.h -- the kernels for one dtype at one instruction-set level.
 *
 * A template: cs_level.h includes it once per dtype with
 *   T      float or double       (storage and exp precision)
 *   TI     cs_i32a or cs_i64a    (an integer of T's width, for clang's max keys)
 *   CS_FN  name -> name_<dtype>_<level>
 *   EXP    cs_exp_f32 or cs_exp_f64 (any argument)
 *   EXPNEG cs_expneg_f32 or cs_expneg_f64 (arguments x - max <= 0)
 *   EXPNEG_FMA the same, its range reduction in explicit fused multiply-adds
 * Sums, dot products and logarithms are accumulated in double for both dtypes.
 *
 * The kernels of the list (cs_kernels.h) take a task and the units [lo, hi)
 * to run; each says what its units are.  The static inline helpers above them
 * work on plain pointers.
 *
 * Rows of at most CS_NARROW entries are taken a block of about CS_BLOCK entries
 * at a time, transposed so that the vector loops run over rows (see
 * narrow_load).  Wider rows are taken one at a time and stay in L1 between
 * their passes.
 *
 * Every loop that must vectorise carries `omp simd`; the output may be the input
 * itself (same pointer, same strides), never a partial overlap.
 */

/* clang sizes a loop's vectors by its widest type: a float32 loop that adds
   into double would get half the level's float lanes (2 on NEON and SSE2).
   CS_FLOAT_LANES asks for all of them (GCC unpacks to double by itself). */
#ifndef CS_FLOAT_LANES
#if defined(__clang__)
#define CS_LANES (CS_VEC_BYTES / sizeof(T))
#define CS_FLOAT_LANES _Pragma("clang loop vectorize_width(CS_LANES)")
#else
#define CS_FLOAT_LANES
#endif
#endif
/* A float32 loop over one vector's lanes that adds into double: clang would
   unroll it in full and then take the unrolled code two lanes at a time on
   NEON; kept a loop, it is vectorised at the level's full width. */
#if defined(__clang__)
#define CS_FLOAT_VEC _Pragma("clang loop unroll(disable) vectorize_width(CS_LANES)")
#else
#define CS_FLOAT_VEC
#endif

/* clang unrolls a loop over CS_ROW_LANES explicit lanes in full, then leaves
   the unrolled code scalar (3.1 against 0.8 ns an entry, float64 softmax at
   C = 1000): CS_LANE_LOOP keeps it a loop, which it vectorises. */
#if defined(__clang__)
#define CS_LANE_LOOP _Pragma("clang loop unroll(disable) vectorize_width(8)") /* CS_ROW_LANES */
#else
#define CS_LANE_LOOP
#endif
#define CS_NARROW 32
/* entries per vector at this level */
#define CS_VL ((cs_intp)(CS_VEC_BYTES / sizeof(T)))

/* Float32 sums of exponentials over n entries: the first h are paired with
   the next h, each pair added in float before its sum goes into double (half
   the conversions, which cost about as much as the exponentials; the terms
   are positive, so the pairs' roundings add at most half an ulp to the sum).
   h is whole vectors, from rows of three vectors on: at two the extra loop
   cost more than it saved; at three (one pair, one vector alone), on an AMD
   Zen 4 core at x86-64-v4, kernel-only, one thread, 409600 float32 entries
   in cache, ns an entry, log_softmax C = 48 0.45-0.46 against 0.54, softmax
   C = 48 0.39-0.43 against 0.45-0.46, C = 50 0.59 against 0.61, the
   cross-entropy C = 48 0.585 against 0.60; log_softmax C = 50-60 2-4 %
   slower; x86-64-v3 C = 24 0.68 against 0.71.  0 in float64. */
static inline cs_intp CS_FN(pair_half)(cs_intp n)
{
    return sizeof(T) == 4 && n >= 3 * CS_VL ? n / (2 * CS_VL) * CS_VL : 0;
}
/* OpenMP's max reduction may start each lane at the lowest finite value, not
   -inf (clang's did; GCC starts at -inf): a max over nothing but -inf would
   then come out as -FLT_MAX / -DBL_MAX.  After such a loop, this rescans
   (rarely: only when that value came out) with the loop's own condition.  The
   loops that use it are GCC's; clang's max loops run over integer keys. */
#ifndef CS_MAX_FIX
#define CS_MAX_FIX(T, m, n, cond, val)                                          \
    do {                                                                        \
        if ((m) == (sizeof(T) == 4 ? (T)-FLT_MAX : (T)-DBL_MAX)) {              \
            (m) = (T)-INFINITY;                                                 \
            for (cs_intp j_ = 0; j_ < (n); j_++)                                \
                if ((cond) && (val) > (m))                                      \
                    (m) = (val);                                                \
        }                                                                       \
    } while (0)
#endif
/* clang vectorises no compare-select max reduction over floats (it would
   have to assume no nan), but it does over integers.  Its max loops therefore
   run over the entries' bits: CS_FN(key) maps them to an integer whose order
   is the floats' order (a negative float's magnitude bits flipped, so -0 comes
   just below +0); a nan lies beyond +-inf on the side of its sign, so a max may
   come out nan, which the row's sum carries on as nan.  The map is its own
   inverse. */
#define CS_KEY_FLIP ((TI)(~0ULL >> (65 - 8 * sizeof(T))))
#define CS_KEY_MIN ((TI)(-CS_KEY_FLIP - 1))
static inline TI CS_FN(key)(TI v)
{
    return v ^ ((v >> (8 * sizeof(T) - 1)) & CS_KEY_FLIP);
}
static inline T CS_FN(unkey)(TI k)
{
    T m;
    k = CS_FN(key)(k);
    memcpy(&m, &k, sizeof m);
    return m;
}
#define CS_BLOCK 1024
/* strided tiles: prefetch the strip CS_PF classes ahead */
#define CS_PF 8
/* float64 sums are taken in chunks whose totals are added with their rounding
   errors kept: a row's chunk is CS_ROW_LANES explicit lanes of 32 terms each
   (the order is fixed in the source, so the accuracy does not depend on how
   the compiler vectorises), a column's chain is 16 terms.  float32 sums, taken
   in double, lose nothing that shows in float: one chunk (a column's; a row's
   go by row_sumexp_lanes and rows4_sumexp_lanes, which have no chunks). */
#define CS_ROW_LANES 8
#define CS_ROW_CHUNK (32 * CS_ROW_LANES)
#define CS_COL_CHUNK(C) (sizeof(T) == 8 ? 16 : (C))

/* Rows of C entries in a transposed block of rows up to limit entries wide
   (1 beyond): a multiple of 16 rows, so that the loops down the block have
   no remainder (measured: a fifth faster at C = 10). */
static inline cs_intp CS_FN(block_rows_to)(cs_intp C, cs_intp limit)
{
    return C <= limit ? (CS_BLOCK / C) & ~(cs_intp)15 : 1;
}

static inline cs_intp CS_FN(block_rows)(cs_intp C)
{
    return CS_FN(block_rows_to)(C, CS_NARROW);
}

/* Narrow rows (C <= CS_NARROW) go a block at a time through t, the block
   transposed: t[j * nb + r] = x[r, j].  Every pass then runs down the
   block's rows in full vectors; only the copy in and the store out are strided
   (a per-row loop of ten entries never fills a vector).  Those two go by
   small transposes, a vector of rows at a time (cs_transpose.h): kernel-only,
   AMD Zen 4, 409600 entries in cache, one thread, ns an entry, softmax
   x86-64-v4 float32 C = 10 0.60 against 0.87, C = 4 0.75 against 0.86,
   float64 C = 10 1.05 against 1.30; x86-64-v3 float32 C = 10 0.76 against
   0.98; the cross-entropy's class indices (4096, 10) float32 v4 35-36
   against 46 us, float64 55-58 against 62, v3 float32 43 against 53.
   m[r] is the row's max (nan may be skipped: it reaches the sum through
   exp).  A block of one row goes this way too: its sums must be added as in
   any other block, or the last row of a thread's share (or a call of one
   row) would come out different by an ulp. */
static inline int CS_FN(is_narrow)(cs_intp C)
{
    return C <= CS_NARROW;
}

/* t[j * nb + r] = x[r * xs + j]: whole vectors of rows by small transposes
   (cs_transpose.h), the rest an entry at a time. */
static inline void CS_FN(narrow_copy)(const T *x, cs_intp xs, cs_intp nb, cs_intp C, T *t)
{
    cs_intp r0 = 0;
#if CS_TR
    r0 = sizeof(T) == 4 ? CS_CAT2(cs_tr_load_f32, CS_LEVEL)((const float *)x, xs, nb, C, (float *)t)
                        : CS_CAT2(cs_tr_load_f64, CS_LEVEL)((const double *)x, xs, nb, C, (double *)t);
#endif
    for (cs_intp j = 0; j < C; j++) {
        T *tj = t + j * nb;
#pragma omp simd
        for (cs_intp r = r0; r < nb; r++)
            tj[r] = x[r * xs + j];
    }
}

static inline void CS_FN(narrow_load)(const T *x, cs_intp xs, cs_intp nb, cs_intp C, T *t, T *m)
{
    CS_FN(narrow_copy)(x, xs, nb, C, t);
#pragma omp simd
    for (cs_intp r = 0; r < nb; r++)
        m[r] = t[r];
    for (cs_intp j = 1; j < C; j++) {
        const T *tj = t + j * nb;
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            m[r] = tj[r] > m[r] ? tj[r] : m[r];
    }
}

/* b[j] = k[j] ? x[j] : -inf for j < n (x read unconditionally: a plain
   load and a blend, not a masked load).  Out of line, so that no call is
   specialised for a constant n: GCC unrolls such a loop whole, into a
   scalar branch an entry. */
CS_NOINLINE void CS_FN(select_run)(const T *x, const unsigned char *k, T *b, cs_intp n)
{
#pragma omp simd
    for (cs_intp j = 0; j < n; j++) {
        T v = x[j];
        b[j] = k[j] ? v : (T)-INFINITY;
    }
}

/* b[r, j] = k[r, j] ? x[r, j] : -inf for nb rows, b's rows C apart (b apart
   from x).  Rows with no gaps between them go as one flat run: short rows
   one at a time left most of their entries to a scalar remainder, where the
   select became a branch on a random mask (logsumexp float32 C = 10: 4.5 ns
   an entry).  GCC's vector loop takes CS_VEC_BYTES entries a step (a vector
   of mask bytes) and leaves the rest to a scalar loop that branches on the
   mask; a run of that many or more ends instead on one more step over its
   last CS_VEC_BYTES entries, over some already written (the same values;
   right whatever step a compiler takes).  Intel Xeon (family 6
   model 207), two threads, with out=, time against a scalar remainder:
   x86-64-v4 softmax float32 (8192, 1000) 0.95-0.98, float64 0.88,
   log_softmax float64 0.81-0.86, logsumexp float32 C = 100 0.85, rows of
   8 to 24 (whole steps) even; x86-64-v3 0.96-0.97 at C = 1000; baseline
   even. */
static inline void CS_FN(where_select)(const T *x, cs_intp xs, const unsigned char *k, cs_intp ks,
                                       T *b, cs_intp nb, cs_intp C)
{
    const int flat = xs == C && ks == C;
    const cs_intp rows = flat ? 1 : nb, n = flat ? nb * C : C;
    const cs_intp step = CS_VEC_BYTES, rest = n % step;
    for (cs_intp r = 0; r < rows; r++) {
        const T *xr = x + r * xs;
        const unsigned char *kr = k + r * ks;
        T *br = b + r * C;
        if (n < step || rest == 0) {
            CS_FN(select_run)(xr, kr, br, n);
            continue;
        }
        /* the whole steps, then the last one: one call site for both, so
           that the compiler makes no copy of select_run for the constant */
        for (int part = 0; part < 2; part++) {
            const cs_intp j0 = part ? n - step : 0;
            CS_FN(select_run)(xr + j0, kr + j0, br + j0, part ? step : n - rest);
        }
    }
}

/* The weighted rows' entries that take part: for nb rows of x (rows xs
   apart), their weights b (rows bs apart) and their mask k (rows ks apart)
   unless NULL, w[r, j] = b[r, j] where k[r, j] is set, else 0, and
   sx[r, j] = x[r, j] where w[r, j] != 0, else -inf; sx and w rows C apart.
   Gapless rows as one flat run, as where_select. */
static inline void CS_FN(weights_select)(const T *x, cs_intp xs, const T *b, cs_intp bs,
                                         const unsigned char *k, cs_intp ks, T *sx, T *w, cs_intp nb, cs_intp C)
{
    const int flat = xs == C && bs == C && (k == NULL || ks == C);
    const cs_intp rows = flat ? 1 : nb, n = flat ? nb * C : C;
    for (cs_intp r = 0; r < rows; r++) {
        const T *xr = x + r * xs, *br = b + r * bs;
        T *sxr = sx + r * C, *wr = w + r * C;
        if (k == NULL) {
#pragma omp simd
            for (cs_intp j = 0; j < n; j++) {
                T v = xr[j], bj = br[j];
                wr[j] = bj;
                sxr[j] = bj != 0 ? v : (T)-INFINITY;
            }
        } else {
            const unsigned char *kr = k + r * ks;
#pragma omp simd
            for (cs_intp j = 0; j < n; j++) {
                T v = xr[j], bj = kr[j] ? br[j] : (T)0;
                wr[j] = bj;
                sxr[j] = bj != 0 ? v : (T)-INFINITY;
            }
        }
    }
}

/* The rows' values v[r] spread over their entries, e[r * C + j] = v[r] for
   j < C, so that the last pass over a block of contiguous rows runs in whole
   vectors in row order instead of a strided store out of the transposed
   block.  Each row is written in whole vectors, the next row overwriting the
   excess: e holds nb * C + CS_NARROW entries.
   log_softmax's last pass, (x - m) - log S, takes this way from C = 8 at
   every level (float32 at C = 24 on an Intel x86-64-v4 core: 1.11 against 0.80
   ns an entry; C = 3: 1.4 against 1.5).  softmax's, exp(x - m) / S,
   computes the exponentials again (the same bits as the sum's): worth it in
   float32 from C = 12 with 8 lanes or more (v4, C = 24: 1.06 against 0.86 ns;
   float64, or at baseline: slower). */
#define CS_FLAT_LOG_MIN 8
static inline int CS_FN(softmax_flat)(cs_intp C)
{
    return sizeof(T) == 4 && CS_VEC_BYTES >= 32 && C >= 12;
}

/* The cross-entropy gradient's likewise, with 16 float32 lanes (v4): at
   C = 24 1.08 against 0.97 ns an entry; at C = 8 to 10 no faster, and
   slower with 8 lanes (v3, C = 10: 1.31 against 1.44). */
static inline int CS_FN(ce_flat)(cs_intp C)
{
    return sizeof(T) == 4 && CS_VEC_BYTES >= 64 && C >= 12;
}

static inline void CS_FN(narrow_expand)(const T *v, cs_intp nb, cs_intp C, T *e)
{
    const cs_intp L = (cs_intp)(CS_VEC_BYTES / sizeof(T)), w = (C + L - 1) / L * L;   /* whole vectors */
    for (cs_intp r = 0; r < nb; r++) {
        T vr = v[r];
        T *er = e + r * C;
#pragma omp simd
        for (cs_intp j = 0; j < w; j++)
            er[j] = vr;
    }
}

#if CS_TR && CS_VEC_BYTES >= 64
/* CS_CVT_D8, 8 floats to 8 doubles; CS_FMA16 and CS_FMA8D, d = a b + c
   rounded once in 16 float or 8 double lanes; CS_PERM16D, p = the 16
   doubles of lo then hi, each lane's picked by the low 4 bits of that lane
   of i: where GCC has AVX-512 at hand (it defines the level's macros inside
   its target region), each one instruction; elsewhere by generic code, the
   same values (GCC 12 lowers that conversion to two conversions of 4 and a
   shuffle). */
#undef CS_CVT_D8
#undef CS_FMA16
#undef CS_FMA8D
#undef CS_PERM16D
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define CS_CVT_D8(v) ((cs_d8)_mm512_cvtps_pd((__m256)(v)))
#define CS_FMA16(d, a, b, c) ((d) = (cs_f16)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define CS_FMA8D(d, a, b, c) ((d) = (cs_d8)_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c)))
#define CS_PERM16D(p, lo, hi, i) ((p) = (cs_d8)_mm512_permutex2var_pd((__m512d)(lo), (__m512i)(i), (__m512d)(hi)))
#else
#define CS_CVT_D8(v) __builtin_convertvector(v, cs_d8)
/* lane by lane: one instruction where the compiler vectorises it, a call
   per lane at worst */
#define CS_FMA_LANES(d, a, b, c, V, n, f)               \
    do {                                                \
        const V a_ = (a), b_ = (b), c_ = (c);           \
        for (int i_ = 0; i_ < (n); i_++)                \
            (d)[i_] = f(a_[i_], b_[i_], c_[i_]);        \
    } while (0)
#define CS_FMA16(d, a, b, c) CS_FMA_LANES(d, a, b, c, cs_f16, 16, fmaf)
#define CS_FMA8D(d, a, b, c) CS_FMA_LANES(d, a, b, c, cs_d8, 8, fma)
#define CS_PERM16D(p, lo, hi, i)                                        \
    do {                                                                \
        const cs_d8 l_ = (lo), h_ = (hi);                               \
        const cs_l8 i_ = (i);                                           \
        for (int k_ = 0; k_ < 8; k_++)                                  \
            (p)[k_] = (i_[k_] & 8) ? h_[i_[k_] & 7] : l_[i_[k_] & 7];   \
    } while (0)
#endif
/* exp(x) for x <= 0 or nan, 8 float64 lanes, by a table of 2^(j/16): with
   n = round(16 x / ln2), x = (n / 16) ln2 + r, |r| <= ln2 / 32, and
   exp(x) = 2^(n >> 4) 2^(j/16) exp(r), j = n & 15.  The 16 entries sit in
   two vector registers and one two-source permute picks each lane's (its
   rounding error, relative, from two more), so exp(r) on a sixteenth of the
   range needs q of degree 5 where cs_expneg_core_f64 takes degree 10: 17
   vector operations against 22.  exp(r) = 1 + r q(r), q fitted on
   |r| <= 1.02 ln2 / 32 (Chebyshev, |error| < 1.3e-17 relative in 1 + r q);
   the result T (1 + (r q + c)), T = fl(2^(j/16)) 2^(n >> 4) and c its
   relative rounding error, rounds once: within 0.66 ulp over 2e7 samples of
   [-708, 0] (cs_expneg_fma_f64 1.2, measured the same way).  Below
   exp(-708.41) (about DBL_MIN) the result is flushed to 0 (there n >> 4
   would leave the exponent range); -inf gives 0, nan stays nan.  The range
   reduction's multiply-adds are fused, as in cs_expneg_fma_f64.
   CS_FMA8D and CS_PERM16D: see CS_FMA16. */
/* the table's four vectors, loaded once by a loop that calls expneg_tab_d8 */
typedef struct {
    cs_d8 hi0, hi1, lo0, lo1;
} CS_FN(exp_tab);
CS_INLINE void CS_FN(exp_tab_load)(CS_FN(exp_tab) *t)
{
    memcpy(&t->hi0, cs_exp2_16ths, sizeof t->hi0);
    memcpy(&t->hi1, cs_exp2_16ths + 8, sizeof t->hi1);
    memcpy(&t->lo0, cs_exp2_16ths + 16, sizeof t->lo0);
    memcpy(&t->lo1, cs_exp2_16ths + 24, sizeof t->lo1);
}
CS_INLINE void CS_FN(expneg_tab_d8)(const CS_FN(exp_tab) *t, const cs_d8 *xp, cs_d8 *yp)
{
    const cs_d8 x = *xp, zero = {0};
    const cs_d8 shift = zero + 0x1.8p52, l2e16 = zero + 0x1.71547652b82fep4;
    const cs_d8 ln2 = zero - CS_LN2_F64 / 16, ln2lo = zero - CS_LN2_LO_F64 / 16;
    cs_d8 z, r, p, c, q;
    CS_FMA8D(z, x, l2e16, shift);                 /* low bits: n */
    const cs_d8 kd = z - shift;
    CS_FMA8D(r, kd, ln2, x);
    CS_FMA8D(r, kd, ln2lo, r);
    CS_PERM16D(p, t->hi0, t->hi1, (cs_l8)z);
    CS_PERM16D(c, t->lo0, t->lo1, (cs_l8)z);
    CS_FMA8D(q, zero + 0x1.6c17f96a3dbd8p-10, r, zero + 0x1.1112490f573e0p-7);
    CS_FMA8D(q, q, r, zero + 0x1.55555554e05e3p-5);
    CS_FMA8D(q, q, r, zero + 0x1.555555546b66ep-3);
    CS_FMA8D(q, q, r, zero + 0x1.0000000000001p-1);
    CS_FMA8D(q, q, r, zero + 0x1.0000000000003p+0);
    CS_FMA8D(c, r, q, c);
    /* n >> 4 into p's exponent, in unsigned ints: z's bits 4 to 15 hold it
       in two's complement, and the exponent field stays >= 1 above the
       flush */
    p = (cs_d8)((cs_ul8)p + (((cs_ul8)z >> 4) << 52));
    CS_FMA8D(p, p, c, p);
    *yp = (cs_d8)((cs_l8)p & ~(x < -708.41));
}
#endif

/* s[k] += e = exp(x[k] - m[k]) for n entries, e stored in e[k] unless e is
   NULL (e may be x itself).  The vector step of every sum of exponentials
   taken across rows or columns: the narrow blocks' and the strided axis's.
   float64 at x86-64-v4 takes expneg_tab_d8, 8 entries a step, the last
   n % 8 as one more step over a padded vector: its degree-5 polynomial costs
   fewer multiply-adds than the general exponential's degree 10, which
   bound these loops on an AMD Zen 4 core (one 512-bit multiply-add a
   cycle; the cross-entropy's class indices, float64 (4096, 10), spent
   about half its time in this loop).  Same core, calls with out=, 409600
   entries or fewer, medians of 7 bursts in 5 interleaved rounds, us,
   against the general exponential: the cross-entropy's class indices
   (13000, 31) one thread 549-628 against 626-728, (4096, 10) two threads
   32-44 against 34-47; softmax (13000, 31) one thread 434-452 against
   473-516, (50000, 8) two threads 201-228 against 233-283; softmax over
   axis 0 of (1000, 4096), from memory, even. */
static inline void CS_FN(add_exp)(const T *x, const T *m, T *e, double *s, cs_intp n)
{
#if CS_TR && CS_VEC_BYTES >= 64
    if (sizeof(T) == 8) {
        const double *xd = (const double *)x, *md = (const double *)m;
        double *ed = (double *)e;
        CS_FN(exp_tab) tab;
        CS_FN(exp_tab_load)(&tab);
        const cs_intp nv = n & ~(cs_intp)7;
        for (cs_intp k = 0; k < nv; k += 8) {
            cs_d8 a, b, v, sk;
            memcpy(&a, xd + k, sizeof a);
            memcpy(&b, md + k, sizeof b);
            a = a - b;
            CS_FN(expneg_tab_d8)(&tab, &a, &v);
            if (ed != NULL)
                memcpy(ed + k, &v, sizeof v);
            memcpy(&sk, s + k, sizeof sk);
            sk += v;
            memcpy(s + k, &sk, sizeof sk);
        }
        if (nv < n) {
            /* the last n - nv entries as the low lanes of one more step,
               the others 0: the same operations, so the same bits */
            cs_d8 a = {0}, b = {0}, v;
            memcpy(&a, xd + nv, (size_t)(n - nv) * sizeof(double));
            memcpy(&b, md + nv, (size_t)(n - nv) * sizeof(double));
            a = a - b;
            CS_FN(expneg_tab_d8)(&tab, &a, &v);
            for (cs_intp k = nv; k < n; k++) {
                if (ed != NULL)
                    ed[k] = v[k - nv];
                s[k] += v[k - nv];
            }
        }
        return;
    }
#endif
    if (e != NULL) {
#pragma omp simd
CS_FLOAT_LANES
        for (cs_intp k = 0; k < n; k++) {
            T v = EXPNEG(x[k] - m[k]);
            e[k] = v;
            s[k] += v;
        }
    } else {
#pragma omp simd
CS_FLOAT_LANES
        for (cs_intp k = 0; k < n; k++)
            s[k] += EXPNEG(x[k] - m[k]);
    }
}

/* s[k] += the sum in T of exp(x[q * xs + k] - m[k]) over q < g (g a
   constant where inlined), each stored in e[q * xs + k] unless e is NULL. */
static inline void CS_FN(add_exp_group)(const T *x, cs_intp xs, int g, const T *m, T *e, double *s, cs_intp n)
{
    if (e != NULL) {
#pragma omp simd
CS_FLOAT_LANES
        for (cs_intp k = 0; k < n; k++) {
            T a = 0;
            for (int q = 0; q < g; q++) {
                T v = EXPNEG(x[q * xs + k] - m[k]);
                e[q * xs + k] = v;
                a += v;
            }
            s[k] += a;
        }
    } else {
#pragma omp simd
CS_FLOAT_LANES
        for (cs_intp k = 0; k < n; k++) {
            T a = 0;
            for (int q = 0; q < g; q++)
                a += EXPNEG(x[q * xs + k] - m[k]);
            s[k] += a;
        }
    }
}

/* Unless px is NULL, the pw entries at px + j * pxs into L2: class j of the
   tile to come, while this one's class j is summed (logsumexp_cols), or the
   j-th share of the next block of rows (softmax's narrow rows). */
static inline void CS_FN(prefetch_class)(const T *px, cs_intp pxs, cs_intp pw, cs_intp j)
{
    for (cs_intp l = 0; px != NULL && l < pw; l += 64 / (cs_intp)sizeof(T))
        CS_PREFETCH(px + j * pxs + l, 0, 2);
}

/* s[r] = sum_j exp(t[j, r] - m[r]); e (t itself, or NULL) receives the
   exponentials; class by class, prefetch_class(px, pxs, pw, j).  Always
   inlined, with narrow_sumexp: with the grouped float32 sums GCC and clang
   kept it out of line, and each kernel's exp loops are to be in its own
   code, where .ci/aarch64 checks that they are vectorised (at about 60 KB
   of code over the three x86-64 levels). */
CS_INLINE void CS_FN(narrow_sumexp_at)(const T *t, T *e, cs_intp nb, cs_intp C, const T *m, double *s,
                                       const T *px, cs_intp pxs, cs_intp pw)
{
#pragma omp simd
    for (cs_intp r = 0; r < nb; r++)
        s[r] = 0.0;
    cs_intp j = 0;
    /* float32: the exponentials of four classes, then of two, added in
       float before their sum goes into double (a quarter of the conversions;
       the terms are positive, so a group's float sum is within 1.5 eps of
       theirs: three roundings of eps / 2).  Kernel-only, AMD Zen 4, one
       thread, float32 C = 10: softmax 0.52 against 0.67 ns an entry (409600
       entries), the cross-entropy's class indices (4096, 10) 32.7 against
       35.9 us at x86-64-v4, 37.6 against 42.9 at x86-64-v3. */
    for (; sizeof(T) == 4 && j + 4 <= C; j += 4) {
        for (int q = 0; q < 4; q++)
            CS_FN(prefetch_class)(px, pxs, pw, j + q);
        CS_FN(add_exp_group)(t + j * nb, nb, 4, m, e != NULL ? e + j * nb : NULL, s, nb);
    }
    if (sizeof(T) == 4 && j + 2 <= C) {
        for (int q = 0; q < 2; q++)
            CS_FN(prefetch_class)(px, pxs, pw, j + q);
        CS_FN(add_exp_group)(t + j * nb, nb, 2, m, e != NULL ? e + j * nb : NULL, s, nb);
        j += 2;
    }
    for (; j < C; j++) {
        CS_FN(prefetch_class)(px, pxs, pw, j);
        CS_FN(add_exp)(t + j * nb, m, e != NULL ? e + j * nb : NULL, s, nb);
    }
}

/* s[r] = sum_j exp(t[j, r] - m[r]); with keep, t receives the exponentials. */
CS_INLINE void CS_FN(narrow_sumexp)(T *t, cs_intp nb, cs_intp C, const T *m, double *s, int keep)
{
    CS_FN(narrow_sumexp_at)(t, keep ? t : NULL, nb, C, m, s, NULL, 0, 0);
}

/* y[r, j] = t[j, r] * k[r] (k NULL: t[j, r]): the narrow block's store. */
static inline void CS_FN(narrow_store)(const T *t, cs_intp nb, cs_intp C, const T *k, T *y, cs_intp ys)
{
    cs_intp r0 = 0;
#if CS_TR
    r0 = sizeof(T) == 4 ? CS_CAT2(cs_tr_store_f32, CS_LEVEL)((const float *)t, nb, C, (const float *)k, (float *)y, ys)
                        : CS_CAT2(cs_tr_store_f64, CS_LEVEL)((const double *)t, nb, C, (const double *)k, (double *)y,
                                                             ys);
#endif
    for (cs_intp j = 0; j < C; j++) {
        const T *tj = t + j * nb;
        if (k == NULL) {
#pragma omp simd
            for (cs_intp r = r0; r < nb; r++)
                y[r * ys + j] = tj[r];
        } else {
#pragma omp simd
            for (cs_intp r = r0; r < nb; r++)
                y[r * ys + j] = tj[r] * k[r];
        }
    }
}

/* The max of a row of C >= 1 entries (a nan may be skipped, or be the max:
   it reaches the sum through exp either way). */
static inline T CS_FN(row_max)(const T *x, cs_intp C)
{
#if defined(__clang__)
    const TI *u = (const TI *)(const void *)x;
    TI k = CS_KEY_MIN;
#pragma omp simd reduction(max : k)
    for (cs_intp j = 0; j < C; j++) {
        TI v = CS_FN(key)(u[j]);
        k = v > k ? v : k;
    }
    return CS_FN(unkey)(k);
#else
    T m = x[0];
#pragma omp simd reduction(max : m)
    for (cs_intp j = 1; j < C; j++)
        m = x[j] > m ? x[j] : m;
    return m;
#endif
}

/* The four-row sums of the forward's float32 rows and of the backward
   passes end with each row's partial sums in CS_SUM_VL double lanes: a
   vector's worth, but at most 8 (one 64-byte vector of double), added at the
   end by lanes_sum.  At x86-64-v4, float32 rows summed in 16 lanes took 16 doubles
   a row through a four-step halving that gcc did not unroll, its steps
   stored and reloaded; with 8 lanes (float32 on an AMD Zen 4 core at
   x86-64-v4, kernel-only, ns an entry) softmax_backward C = 8 0.24 against
   1.19, C = 16 0.20 against 0.45, C = 24 0.19 against 0.60, C = 64 0.17
   against 0.22; log_softmax_backward C = 16 0.47 against 0.60, C = 24
   0.45-0.53 against 0.72, C = 48 0.35 against 0.43.  The backward's widths
   given as constants are then multiples of 8 lanes too (log_softmax_backward
   C = 24, three of them: 0.45-0.53 against 0.51-0.59 as a vector and a
   half).  float64 at v4 keeps its 8 lanes. */
#define CS_SUM_VL (CS_VL < 8 ? CS_VL : (cs_intp)8)

/* The sum of CS_SUM_VL lanes, halving: q[l] += q[l + h] for h = CS_SUM_VL
   / 2, ..., 1 (q is overwritten).  The order is the source's, so every row
   summed this way gets the same operations whatever the compiler. */
CS_INLINE double CS_FN(lanes_sum)(double *q)
{
    for (int h = (int)CS_SUM_VL / 2; h > 0; h /= 2)
        for (int l = 0; l < h; l++)
            q[l] += q[l + h];
    return q[0];
}

/* The sum of a vector's worth (CS_VL) of double lanes: folded to CS_SUM_VL,
   lane k + l into lane l, then lanes_sum (q is overwritten). */
CS_INLINE double CS_FN(vec_lanes_sum)(double *q)
{
    for (int k = CS_SUM_VL; k < CS_VL; k += CS_SUM_VL)
        for (int l = 0; l < CS_SUM_VL; l++)
            q[l] += q[k + l];
    return CS_FN(lanes_sum)(q);
}

/* One vector of e (CS_VL entries) from v: a loop of its own per row, so
   that the compiler sees one store stream (the four rows' stores in one loop
   were checked against each other for overlap, pair by pair, every vector). */
CS_INLINE void CS_FN(store_vec)(T *e, const T *v)
{
#pragma omp simd
    for (int l = 0; l < CS_VL; l++)
        e[l] = v[l];
}

/* A row's exponential pass that stores nothing reads only from L1 and
   leaves the memory idle; it can bring in what comes next meanwhile: the
   line at entry j of pr (the next row to be read) and of pw (a row to be
   written, for writing), unless NULL (log_softmax's wide rows; softmax's and
   the cross-entropy's in a call that streams from memory, the next row). */
CS_INLINE void CS_FN(prefetch_at)(const T *pr, T *pw, cs_intp j)
{
    if (pr != NULL)
        CS_PREFETCH(pr + j, 0, 3);
    if (pw != NULL)
        CS_PREFETCH(pw + j, 1, 3);
}

/* row_sumexp_at for float32: the row's exponentials (pairs, as pair_half
   says, added in float first) go a vector at a time into CS_VL double lanes,
   folded to CS_SUM_VL and added by lanes_sum; the last C % CS_VL follow one
   by one: rows4_sumexp_lanes's arithmetic for one row.  Wide rows of an
   OpenMP sum reduction instead ended each loop adding 16 lanes one by one
   (x86-64-v4, gcc): log_softmax C = 384 0.42-0.43 against 0.46-0.56 ns an
   entry (AMD Zen 4, kernel-only, one thread); rows of 10000 even. */
static inline void CS_FN(row_sumexp_lanes)(const T *x, cs_intp C, T m, T *e, double *s,
                                            const T *pr, T *pw)
{
    double q[CS_VL];
    for (int l = 0; l < CS_VL; l++)
        q[l] = 0.0;
    const cs_intp n = C & ~(CS_VL - 1), h = CS_FN(pair_half)(n);
    for (cs_intp j = 0; j < h; j += CS_VL) {
        T v[CS_VL], w[CS_VL];
        CS_FN(prefetch_at)(pr, pw, j), CS_FN(prefetch_at)(pr, pw, j + h);
#pragma omp simd
CS_FLOAT_VEC
        for (int l = 0; l < CS_VL; l++) {
            v[l] = EXPNEG(x[j + l] - m), w[l] = EXPNEG(x[j + h + l] - m);
            q[l] += (double)(v[l] + w[l]);
        }
        if (e != NULL)
            CS_FN(store_vec)(e + j, v), CS_FN(store_vec)(e + j + h, w);
    }
    for (cs_intp j = 2 * h; j < n; j += CS_VL) {
        T v[CS_VL];
#pragma omp simd
CS_FLOAT_VEC
        for (int l = 0; l < CS_VL; l++) {
            v[l] = EXPNEG(x[j + l] - m);
            q[l] += v[l];
        }
        if (e != NULL)
            CS_FN(store_vec)(e + j, v);
    }
    double a = CS_FN(vec_lanes_sum)(q);
    for (cs_intp j = n; j < C; j++) {
        T v = EXPNEG(x[j] - m);
        if (e != NULL)
            e[j] = v;
        a += v;
    }
    *s = a;
}

/* The total of a float64 chunk's CS_ROW_LANES lanes, in a fixed order: one
   row's (row_sumexp_at) and four rows' (rows4_sumexp) chunks add alike. */
CS_INLINE double CS_FN(lanes8_sum)(const double *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* *s = sum of exp(x - m) over a row whose max is m; e receives the
   exponentials unless NULL (e may be x).  float32 by row_sumexp_lanes;
   float64 by chunks (CS_ROW_CHUNK) into vector lanes, chunk totals added
   with cs_two_sum: a row of one 1 and many entries under half an ulp of 1
   sums right. */
static inline void CS_FN(row_sumexp_at)(const T *x, cs_intp C, T m, T *e, double *s,
                                         const T *pr, T *pw)
{
    if (sizeof(T) == 4) {
        CS_FN(row_sumexp_lanes)(x, C, m, e, s, pr, pw);
        return;
    }
    double sr = 0.0, err = 0.0;
    const cs_intp chunk = CS_ROW_CHUNK;
    for (cs_intp j0 = 0; j0 < C; j0 += chunk) {
        cs_intp j1 = C - j0 > chunk ? j0 + chunk : C;
        /* lane l takes the terms j0 + l, j0 + l + 8, ...: 8 chains of at
           most 32 terms, as a vector loop would have them, but also when
           it is not vectorised (a sanitizer build, -O1) */
        double lane[CS_ROW_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
        cs_intp j = j0;
        for (; j + CS_ROW_LANES <= j1; j += CS_ROW_LANES) {
            CS_FN(prefetch_at)(pr, pw, j);
            if (e != NULL) {
#pragma omp simd
CS_LANE_LOOP
                for (int l = 0; l < CS_ROW_LANES; l++) {
                    T v = EXPNEG(x[j + l] - m);
                    e[j + l] = v;
                    lane[l] += v;
                }
            } else {
#pragma omp simd
CS_LANE_LOOP
                for (int l = 0; l < CS_ROW_LANES; l++)
                    lane[l] += EXPNEG(x[j + l] - m);
            }
        }
        for (int l = 0; j + l < j1; l++) {
            T v = EXPNEG(x[j + l] - m);
            if (e != NULL)
                e[j + l] = v;
            lane[l] += v;
        }
        cs_two_sum(&sr, &err, CS_FN(lanes8_sum)(lane));
    }
    *s = sr + err;
}

/* Whether a row whose max is m holds a nan: looked for only where m is not
   finite (the max may skip a nan, or be one), while the row is intact.  A
   flag, not a conditional store of a constant in the loop: GCC 12 at -O3
   vectorised that wrongly (a +inf loss stayed with a nan before the +inf). */
static inline unsigned char CS_FN(row_nan)(const T *x, cs_intp C, T m)
{
    if (isfinite(m))
        return 0;
    int nan = 0;
    for (cs_intp j = 0; j < C; j++)
        nan |= isnan(x[j]);
    return (unsigned char)nan;
}

/* One wide row: returns its max; *s = sum of exp(x - max); e receives the
   exponentials unless NULL.  The row stays in L1 between the passes. */
static inline T CS_FN(row_sumexp)(const T *x, cs_intp C, T *e, double *s, const T *pr, T *pw)
{
    T m = CS_FN(row_max)(x, C);
    CS_FN(row_sumexp_at)(x, C, m, e, s, pr, pw);
    return m;
}

/* The smoothing's sum, scaled, u sum_j w_j (x_j - x_0), of a row where the
   quick one (row_max_wdiff, rows4_wdiff) is not finite: over the classes of
   nonzero weight alone, as the loss counts them (a class of weight 0 adds
   nothing, whatever its logit), from the largest finite logit among them
   (*x0; 0 if none), in double.  Every term is then <= 0 and scaled before it
   is added, so the sum overflows only where the loss itself does (float64
   logits past about 1e305 overflow the quick sum).  The sum is -inf where
   such a class's logit is -inf (the loss is then +inf), nan where one is +inf
   or nan (its log-softmax is nan).  Such rows are rare; the quick sums give
   inf - inf or 0 times inf on them, or overflow. */
CS_NOINLINE double CS_FN(row_wdiff_careful)(const T *x, cs_intp C, const double *w, double u, T *x0)
{
    double ref = -INFINITY;
    int ninf = 0, bad = 0;
    for (cs_intp j = 0; j < C; j++) {
        const double v = (double)x[j];
        if (w != NULL && w[j] == 0.0)
            continue;
        if (v == -INFINITY)
            ninf = 1;
        else if (!isfinite(v))
            bad = 1;
        else if (v > ref)
            ref = v;
    }
    ref = ref == -INFINITY ? 0.0 : ref;
    double sum = 0.0;
    for (cs_intp j = 0; j < C && !bad && !ninf; j++) {
        const double uw = w != NULL ? u * w[j] : u;
        if (uw != 0.0)
            sum += uw * ((double)x[j] - ref);
    }
    *x0 = (T)ref;
    return bad ? (double)NAN : ninf ? -(double)INFINITY : sum;
}

/* A row's max, and *d = sum_j w_j (x_j - x_0) over it (w NULL: all 1; x_0 =
   x[0]), in one pass: the cross-entropy's smoothing term rides on the pass
   that brings the row in from memory.  The sum goes in T by chunks of
   CS_WDIFF_CHUNK (per vector lane a few dozen terms), the chunks' totals in
   double: the term is scaled by smoothing / C in the loss, so this keeps it
   far below the loss's own rounding, and the loop has no conversions. */
#define CS_WDIFF_CHUNK 1024
static inline T CS_FN(row_max_wdiff)(const T *x, cs_intp C, const T *w, double *d)
{
    const T x0 = x[0];
    double dd = 0.0;
#if defined(__clang__)
    /* no vectorised max reduction under clang: its own max, then the sum */
    T m = CS_FN(row_max)(x, C);
    for (cs_intp j0 = 0; j0 < C; j0 += CS_WDIFF_CHUNK) {
        cs_intp j1 = C - j0 > CS_WDIFF_CHUNK ? j0 + CS_WDIFF_CHUNK : C;
        T part = 0;
        if (w != NULL) {
#pragma omp simd reduction(+ : part)
            for (cs_intp j = j0; j < j1; j++)
                part += w[j] * (x[j] - x0);
        } else {
#pragma omp simd reduction(+ : part)
            for (cs_intp j = j0; j < j1; j++)
                part += x[j] - x0;
        }
        dd += part;
    }
#else
    T m = x0;
    for (cs_intp j0 = 0; j0 < C; j0 += CS_WDIFF_CHUNK) {
        cs_intp j1 = C - j0 > CS_WDIFF_CHUNK ? j0 + CS_WDIFF_CHUNK : C;
        T part = 0;
        if (w != NULL) {
#pragma omp simd reduction(max : m) reduction(+ : part)
            for (cs_intp j = j0; j < j1; j++) {
                m = x[j] > m ? x[j] : m;
                part += w[j] * (x[j] - x0);
            }
        } else {
#pragma omp simd reduction(max : m) reduction(+ : part)
            for (cs_intp j = j0; j < j1; j++) {
                m = x[j] > m ? x[j] : m;
                part += x[j] - x0;
            }
        }
        dd += part;
    }
#endif
    *d = dd;
    return m;
}

/* The smoothing's sum of row_max_wdiff, d[q] = sum_j w_j (x_q[j] - x_q[0]),
   for four float32 rows x_q at once, each row in CS_VL lanes of its own:
   its whole vectors, then its last CS_VL entries as one more vector, then
   the lanes added by halving (a[l] + a[l + h], h = CS_VL / 2, ..., 1); a
   row shorter than a vector in order.  In that last vector the lanes
   already counted take the row's x_q[0] in place of x_q[j] (adding w_j
   times 0), so that every term is w_j (x - x_q[0]) as in the loop before:
   a compiler that fuses the multiply and the add then does so for every
   row alike (a select of the product or 0 let GCC fuse some rows' terms
   and not others', and a row's bits depended on its place among the four).
   The same operations whichever of the four a row is, so a spare row may
   repeat another.  For rows of fewer than CS_STREAM_WIDE_BYTES bytes, which
   no call takes one at a time (row_max_wdiff, with the max, takes wider
   rows everywhere): the four rows' reductions overlap, where each row's own
   pass ended on a chain of them.  With vector extensions the four rows'
   halvings go together, a vector a step (rows4_tree); in arrays, a store
   and a reload a step, they cost the four-row sum most of its gain at
   x86-64-v4, as did a scalar tail.  The cross-entropy with label
   smoothing, kernel-only, AMD Zen 4, 409600 entries in cache, one thread,
   min of 3 interleaved rounds, ns an entry, against a row at a time:
   x86-64-v4 C = 8 1.48 against 2.22, C = 16 1.10 against 1.33, C = 24 1.12
   against 1.37, C = 33 0.89 against 1.01, C = 48 0.62 against 0.69, C = 64
   0.55 against 0.61, C = 100 0.55 against 0.61, C = 127 0.61 against 0.70
   (without smoothing: C = 24 0.85, C = 100 0.49); with class weights too
   C = 8 1.53 against 2.26, C = 100 0.57 against 0.63; x86-64-v3 C = 24-100
   1-2 % faster, C = 8 3 % slower; baseline 1-4 % faster.  Float64 keeps
   row_max_wdiff (C = 8-24 at most 5 % faster this way, C = 10 5 %
   slower). */
#if CS_TR
typedef T CS_FN(vec) __attribute__((vector_size(CS_VEC_BYTES)));
/* s[q] = the halving sum of row q's lanes a[q * CS_VL ...], four rows: each
   step adds a half of every row's lanes to the other half, the rows packed
   side by side (the same additions as the tree in arrays) */
CS_INLINE void CS_FN(rows4_tree)(const T *a, T *s)
{
    CS_FN(vec) A0, A1, A2, A3;
    memcpy(&A0, a, sizeof A0), memcpy(&A1, a + CS_VL, sizeof A1);
    memcpy(&A2, a + 2 * CS_VL, sizeof A2), memcpy(&A3, a + 3 * CS_VL, sizeof A3);
#if CS_VEC_BYTES / CS_T_BYTES == 16
    CS_FN(vec) u = CS_SHUF(A0, A1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                   CS_SHUF(A0, A1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    CS_FN(vec) v = CS_SHUF(A2, A3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                   CS_SHUF(A2, A3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    CS_FN(vec) g = CS_SHUF(u, v, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
                   CS_SHUF(u, v, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    CS_FN(vec) h = CS_SHUF(g, g, 0, 1, 4, 5, 8, 9, 12, 13, 0, 1, 4, 5, 8, 9, 12, 13) +
                   CS_SHUF(g, g, 2, 3, 6, 7, 10, 11, 14, 15, 2, 3, 6, 7, 10, 11, 14, 15);
    CS_FN(vec) r = CS_SHUF(h, h, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6) +
                   CS_SHUF(h, h, 1, 3, 5, 7, 1, 3, 5, 7, 1, 3, 5, 7, 1, 3, 5, 7);
    s[0] = r[0], s[1] = r[1], s[2] = r[2], s[3] = r[3];
#elif CS_VEC_BYTES / CS_T_BYTES == 8
    CS_FN(vec) u = CS_SHUF(A0, A1, 0, 1, 2, 3, 8, 9, 10, 11) + CS_SHUF(A0, A1, 4, 5, 6, 7, 12, 13, 14, 15);
    CS_FN(vec) v = CS_SHUF(A2, A3, 0, 1, 2, 3, 8, 9, 10, 11) + CS_SHUF(A2, A3, 4, 5, 6, 7, 12, 13, 14, 15);
    CS_FN(vec) g = CS_SHUF(u, v, 0, 1, 4, 5, 8, 9, 12, 13) + CS_SHUF(u, v, 2, 3, 6, 7, 10, 11, 14, 15);
    CS_FN(vec) r = CS_SHUF(g, g, 0, 2, 4, 6, 0, 2, 4, 6) + CS_SHUF(g, g, 1, 3, 5, 7, 1, 3, 5, 7);
    s[0] = r[0], s[1] = r[1], s[2] = r[2], s[3] = r[3];
#elif CS_VEC_BYTES / CS_T_BYTES == 4
    CS_FN(vec) u = CS_SHUF(A0, A1, 0, 1, 4, 5) + CS_SHUF(A0, A1, 2, 3, 6, 7);
    CS_FN(vec) v = CS_SHUF(A2, A3, 0, 1, 4, 5) + CS_SHUF(A2, A3, 2, 3, 6, 7);
    CS_FN(vec) r = CS_SHUF(u, v, 0, 2, 4, 6) + CS_SHUF(u, v, 1, 3, 5, 7);
    s[0] = r[0], s[1] = r[1], s[2] = r[2], s[3] = r[3];
#else /* 2 lanes */
    CS_FN(vec) u = CS_SHUF(A0, A1, 0, 2) + CS_SHUF(A0, A1, 1, 3);
    CS_FN(vec) v = CS_SHUF(A2, A3, 0, 2) + CS_SHUF(A2, A3, 1, 3);
    s[0] = u[0], s[1] = u[1], s[2] = v[0], s[3] = v[1];
#endif
}
#else
CS_INLINE void CS_FN(rows4_tree)(T *a, T *s)
{
    for (int q = 0; q < 4; q++) {
        T *aq = a + q * CS_VL;
        for (int h = (int)CS_VL / 2; h > 0; h /= 2)
            for (int l = 0; l < h; l++)
                aq[l] += aq[l + h];
        s[q] = aq[0];
    }
}
#endif

static inline void CS_FN(rows4_wdiff)(const T *x0, const T *x1, const T *x2, const T *x3, cs_intp C,
                                      const T *w, double *d)
{
    const T z0 = x0[0], z1 = x1[0], z2 = x2[0], z3 = x3[0];
    const cs_intp n = C & ~(CS_VL - 1);
    const int t = (int)(C - n);
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (n > 0) {
        T a[4 * CS_VL], s[4];
        T *a0 = a, *a1 = a + CS_VL, *a2 = a + 2 * CS_VL, *a3 = a + 3 * CS_VL;
        for (int l = 0; l < 4 * (int)CS_VL; l++)
            a[l] = 0;
        /* whole vectors, then the last CS_VL entries as one more vector,
           its lanes before the last t (counted already) adding w_j (x_q[0]
           - x_q[0]) */
        const cs_intp e = C - CS_VL;
        for (cs_intp j = 0; j < n; j += CS_VL) {
#pragma omp simd
            for (int l = 0; l < (int)CS_VL; l++) {
                const T wl = w != NULL ? w[j + l] : (T)1;
                a0[l] += wl * (x0[j + l] - z0), a1[l] += wl * (x1[j + l] - z1);
                a2[l] += wl * (x2[j + l] - z2), a3[l] += wl * (x3[j + l] - z3);
            }
        }
        if (t > 0) {
#pragma omp simd
            for (int l = 0; l < (int)CS_VL; l++) {
                const int k = l >= (int)CS_VL - t;
                const T wl = w != NULL ? w[e + l] : (T)1;
                const T v0 = k ? x0[e + l] : z0, v1 = k ? x1[e + l] : z1;
                const T v2 = k ? x2[e + l] : z2, v3 = k ? x3[e + l] : z3;
                a0[l] += wl * (v0 - z0), a1[l] += wl * (v1 - z1);
                a2[l] += wl * (v2 - z2), a3[l] += wl * (v3 - z3);
            }
        }
        CS_FN(rows4_tree)(a, s);
        s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    } else {
        /* rows shorter than a vector: in order */
        for (cs_intp j = 0; j < C; j++) {
            const T wj = w != NULL ? w[j] : (T)1;
            s0 += wj * (x0[j] - z0), s1 += wj * (x1[j] - z1);
            s2 += wj * (x2[j] - z2), s3 += wj * (x3[j] - z3);
        }
    }
    d[0] = s0, d[1] = s1, d[2] = s2, d[3] = s3;
}

/* Mid-width rows go CS_MID_ROWS (4) at a time: one loop takes the four maxima,
   one the four sums, each row with its own accumulators, so that the
   horizontal reductions, the divisions and the logarithms of four rows overlap
   instead of each lying on its own row's critical path (one row at a time, a
   row of 64 cost 2.5x a row of 1000 per entry).  Up to CS_MID_BYTES a row
   (softmax; CS_MID_LOG_BYTES log_softmax, whose wide path pipelines its
   logarithm): four rows in and out stay in L1.  On an AMD Zen 4 core the
   four rows of log_softmax are ahead up to 2048 bytes (kernel-only, one
   thread, 409600 entries, ns an entry: x86-64-v4 float32 C = 300 0.44
   against 0.55-0.56, C = 384 0.40-0.41 against 0.44-0.45, C = 512 0.39-0.42
   against 0.42-0.44, float64 C = 200 0.97-0.98 against 1.05, C = 256 0.92-0.93
   against 0.98; x86-64-v3 float32 C = 384 0.52 against 0.58 (minima);
   baseline float32 C = 300 1.30 against 1.44, float64 C = 256 1-2 %
   slower), not at 4096 (float32 C = 1000 0.45 against 0.40).  On an Intel
   Xeon (family 6 model 207) the wide path is ahead from 1536 bytes, by more
   than it is behind on the AMD core (the same measure, x86-64-v4, arrays 16
   bytes past a page: float32 C = 384 0.46-0.47 against 0.57, C = 512
   0.44-0.45 against 0.56, float64 C = 200 0.89 against 1.17, C = 256 0.88
   against 1.18), and float32 C = 300, 18.75 vectors, still does better four
   rows at a time (0.54 against 0.69): hence 1280 bytes.  Each loop
   runs over whole vectors [0, n) and leaves the last C - n entries to a
   plain loop (a masked vector over the last CS_VL entries measured slower,
   2x at C = 33). */
#define CS_MID_ROWS 4
#define CS_MID_BYTES 4096
#define CS_MID_LOG_BYTES 1280

/* A row of 1, 2, 3, 4, 6 or 8 whole vectors: call(W) with the width W a
   constant, so that the four-row loops are unrolled, with no remainder loop
   and no trip-count tests (the four-row functions are always inlined for
   this); other widths any(C).  Float32 softmax on an AMD Zen 3 core at
   x86-64-v3, 409600 entries in cache, kernel only: C = 16 0.99 against 1.52
   ns an entry, C = 24 0.86 against 1.33, C = 48 0.66 against 0.86, C = 64
   0.63 against 0.78; float64 C = 16 1.71 against 2.71; log_softmax C = 32
   0.97 against 1.32, C = 64 0.77 against 1.12. */
#define CS_MID_WIDTHS_VL(call, any, C, VL)                      \
    do {                                                        \
        if ((C) == (VL)) {                                      \
            call(VL);                                           \
        } else if ((C) == 2 * (VL)) {                           \
            call(2 * (VL));                                     \
        } else if ((C) == 3 * (VL)) {                           \
            call(3 * (VL));                                     \
        } else if ((C) == 4 * (VL)) {                           \
            call(4 * (VL));                                     \
        } else if ((C) == 6 * (VL)) {                           \
            call(6 * (VL));                                     \
        } else if ((C) == 8 * (VL)) {                           \
            call(8 * (VL));                                     \
        } else {                                                \
            any(C);                                             \
        }                                                       \
    } while (0)
#define CS_MID_WIDTHS(call, any, C) CS_MID_WIDTHS_VL(call, any, C, CS_VL)

static inline int CS_FN(is_mid)(cs_intp C, cs_intp bytes)
{
    return C > CS_NARROW && C * (cs_intp)sizeof(T) <= bytes;
}

/* m[q] = max of row q of x (rows xs apart), q < 4; a nan may be skipped, or
   be the max (clang: integer keys). */
CS_INLINE void CS_FN(rows4_max)(const T *x, cs_intp xs, cs_intp C, T *m)
{
#if defined(__clang__)
    for (int q = 0; q < CS_MID_ROWS; q++)
        m[q] = CS_FN(row_max)(x + q * xs, C);
#else
    const T *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
    T m0 = x0[0], m1 = x1[0], m2 = x2[0], m3 = x3[0];
    const cs_intp n = C & ~(CS_VL - 1);
#pragma omp simd reduction(max : m0, m1, m2, m3)
    for (cs_intp j = 0; j < n; j++) {
        m0 = x0[j] > m0 ? x0[j] : m0;
        m1 = x1[j] > m1 ? x1[j] : m1;
        m2 = x2[j] > m2 ? x2[j] : m2;
        m3 = x3[j] > m3 ? x3[j] : m3;
    }
    for (cs_intp j = n; j < C; j++) {
        m0 = x0[j] > m0 ? x0[j] : m0;
        m1 = x1[j] > m1 ? x1[j] : m1;
        m2 = x2[j] > m2 ? x2[j] : m2;
        m3 = x3[j] > m3 ? x3[j] : m3;
    }
    CS_MAX_FIX(T, m0, C, 1, x0[j_]);
    CS_MAX_FIX(T, m1, C, 1, x1[j_]);
    CS_MAX_FIX(T, m2, C, 1, x2[j_]);
    CS_MAX_FIX(T, m3, C, 1, x3[j_]);
    m[0] = m0, m[1] = m1, m[2] = m2, m[3] = m3;
#endif
}

/* rows4_sumexp for float32: each row's exponentials (pairs, as pair_half
   says, added in float first) go a vector at a time into CS_VL double lanes,
   folded to CS_SUM_VL and added by lanes_sum; the last C % CS_VL follow one
   by one.  An OpenMP sum reduction in their place left gcc to add its
   lanes one by one at the end of each loop (a vector of 16 floats taken as
   16 doubles at x86-64-v4), a cost every four rows that the short rows
   could not amortise.  On an AMD Zen 4 core at x86-64-v4, kernel-only, one
   thread, in cache, medians of 5 interleaved rounds, ns an entry: softmax C
   = 64 0.42 against 0.47, C = 100 0.57 against 0.65, C = 200 0.475 against
   0.49, C = 1000 0.40 against 0.41; log_softmax C = 100 0.55 against 0.64;
   earlier, for rows of under four vectors alone, softmax C = 16 0.575
   against 0.855 and C = 32 0.49 against 0.60.  x86-64-v3 even (C = 16-1000).
   The stores of the exponentials are loops of their own (the sums are the
   same with and without them), except in the pairs' loop with 64-byte
   vectors (CS_E_IN_LOOP): there the loop keeps fewer vectors live when each
   row's pair is stored as it is made, and gcc no longer keeps two rows'
   sums in memory at the widths known only at run time (AMD Zen 4,
   kernel-only, one thread, 409600 float32 entries in cache, ns an entry:
   softmax C = 96 0.345-0.348 against 0.380-0.382, C = 100 0.468 against
   0.486, C = 256 0.387-0.395 against 0.411-0.415, C = 1000 0.370-0.374
   against 0.395-0.398; C = 64 even).  With 32-byte vectors or fewer the
   separate stores stay faster (x86-64-v3 C = 96 0.55 against 0.60,
   baseline 1.31 against 1.38). */
#define CS_E_IN_LOOP (CS_VEC_BYTES >= 64)
CS_INLINE void CS_FN(rows4_sumexp_lanes)(const T *x, cs_intp xs, cs_intp C, const T *m,
                                         T *e, cs_intp es, double *s, int tail4)
{
    const T *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
    const T m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
    double q0[CS_VL], q1[CS_VL], q2[CS_VL], q3[CS_VL];
    for (int l = 0; l < CS_VL; l++)
        q0[l] = q1[l] = q2[l] = q3[l] = 0.0;
    const cs_intp n = C & ~(CS_VL - 1), h = CS_FN(pair_half)(n);
    for (cs_intp j = 0; j < h; j += CS_VL) {
        if (CS_E_IN_LOOP && e != NULL) {
            T *e0 = e, *e1 = e + es, *e2 = e + 2 * es, *e3 = e + 3 * es;
#pragma omp simd
CS_FLOAT_VEC
            for (int l = 0; l < CS_VL; l++) {
                T v, w;
                v = EXPNEG(x0[j + l] - m0), w = EXPNEG(x0[j + h + l] - m0);
                e0[j + l] = v, e0[j + h + l] = w, q0[l] += (double)(v + w);
                v = EXPNEG(x1[j + l] - m1), w = EXPNEG(x1[j + h + l] - m1);
                e1[j + l] = v, e1[j + h + l] = w, q1[l] += (double)(v + w);
                v = EXPNEG(x2[j + l] - m2), w = EXPNEG(x2[j + h + l] - m2);
                e2[j + l] = v, e2[j + h + l] = w, q2[l] += (double)(v + w);
                v = EXPNEG(x3[j + l] - m3), w = EXPNEG(x3[j + h + l] - m3);
                e3[j + l] = v, e3[j + h + l] = w, q3[l] += (double)(v + w);
            }
            continue;
        }
        T v0[CS_VL], v1[CS_VL], v2[CS_VL], v3[CS_VL];
        T w0[CS_VL], w1[CS_VL], w2[CS_VL], w3[CS_VL];
#pragma omp simd
CS_FLOAT_VEC
        for (int l = 0; l < CS_VL; l++) {
            v0[l] = EXPNEG(x0[j + l] - m0), v1[l] = EXPNEG(x1[j + l] - m1);
            v2[l] = EXPNEG(x2[j + l] - m2), v3[l] = EXPNEG(x3[j + l] - m3);
            w0[l] = EXPNEG(x0[j + h + l] - m0), w1[l] = EXPNEG(x1[j + h + l] - m1);
            w2[l] = EXPNEG(x2[j + h + l] - m2), w3[l] = EXPNEG(x3[j + h + l] - m3);
            q0[l] += (double)(v0[l] + w0[l]), q1[l] += (double)(v1[l] + w1[l]);
            q2[l] += (double)(v2[l] + w2[l]), q3[l] += (double)(v3[l] + w3[l]);
        }
        if (e != NULL) {
            CS_FN(store_vec)(e + j, v0), CS_FN(store_vec)(e + es + j, v1);
            CS_FN(store_vec)(e + 2 * es + j, v2), CS_FN(store_vec)(e + 3 * es + j, v3);
            CS_FN(store_vec)(e + j + h, w0), CS_FN(store_vec)(e + es + j + h, w1);
            CS_FN(store_vec)(e + 2 * es + j + h, w2), CS_FN(store_vec)(e + 3 * es + j + h, w3);
        }
    }
    for (cs_intp j = 2 * h; j < n; j += CS_VL) {
        T v0[CS_VL], v1[CS_VL], v2[CS_VL], v3[CS_VL];
#pragma omp simd
CS_FLOAT_VEC
        for (int l = 0; l < CS_VL; l++) {
            v0[l] = EXPNEG(x0[j + l] - m0), v1[l] = EXPNEG(x1[j + l] - m1);
            v2[l] = EXPNEG(x2[j + l] - m2), v3[l] = EXPNEG(x3[j + l] - m3);
            q0[l] += v0[l], q1[l] += v1[l], q2[l] += v2[l], q3[l] += v3[l];
        }
        if (e != NULL) {
            CS_FN(store_vec)(e + j, v0), CS_FN(store_vec)(e + es + j, v1);
            CS_FN(store_vec)(e + 2 * es + j, v2), CS_FN(store_vec)(e + 3 * es + j, v3);
        }
    }
    /* the four rows' folds in one loop (vec_lanes_sum four times: float32
       C = 48 at x86-64-v4, 0.48 against 0.44 ns an entry) */
    for (int k = CS_SUM_VL; k < CS_VL; k += CS_SUM_VL)
        for (int l = 0; l < CS_SUM_VL; l++)
            q0[l] += q0[k + l], q1[l] += q1[k + l], q2[l] += q2[k + l], q3[l] += q3[k + l];
    double a0 = CS_FN(lanes_sum)(q0), a1 = CS_FN(lanes_sum)(q1);
    double a2 = CS_FN(lanes_sum)(q2), a3 = CS_FN(lanes_sum)(q3);
    if (tail4) {
        /* the last C % CS_VL entries a column at a time, the four rows'
           entries as one vector of four lanes: the same operations for each
           row as the loop below.  Inlined into softmax_rows4_any, gcc left
           that loop to scalar exponentials with a detour through integer
           registers (in a call of its own it forms these vectors itself). */
        double a[CS_MID_ROWS] = {a0, a1, a2, a3};
        const T mq[CS_MID_ROWS] = {m0, m1, m2, m3};
        for (cs_intp j = n; j < C; j++) {
            const T xq[CS_MID_ROWS] = {x0[j], x1[j], x2[j], x3[j]};
            T v[CS_MID_ROWS];
#pragma omp simd
            for (int q = 0; q < CS_MID_ROWS; q++) {
                v[q] = EXPNEG(xq[q] - mq[q]);
                a[q] += v[q];
            }
            if (e != NULL)
                e[j] = v[0], e[es + j] = v[1], e[2 * es + j] = v[2], e[3 * es + j] = v[3];
        }
        s[0] = a[0], s[1] = a[1], s[2] = a[2], s[3] = a[3];
        return;
    }
    for (cs_intp j = n; j < C; j++) {
        T v0 = EXPNEG(x0[j] - m0), v1 = EXPNEG(x1[j] - m1);
        T v2 = EXPNEG(x2[j] - m2), v3 = EXPNEG(x3[j] - m3);
        if (e != NULL)
            e[j] = v0, e[es + j] = v1, e[2 * es + j] = v2, e[3 * es + j] = v3;
        a0 += v0, a1 += v1, a2 += v2, a3 += v3;
    }
    s[0] = a0, s[1] = a1, s[2] = a2, s[3] = a3;
}

/* s[q] = sum of exp(x[q] - m[q]) over four rows: float32 by
   rows4_sumexp_lanes, float64 by row_sumexp_at's arithmetic (chunks of
   CS_ROW_CHUNK in CS_ROW_LANES explicit lanes, totals added with
   cs_two_sum), so that a row gets the same bits one or four at a time; e
   (rows es apart, possibly x) receives the exponentials unless NULL; tail4
   (float32) takes the rows' last C % CS_VL entries as vectors across the
   four rows, the same bits. */
CS_INLINE void CS_FN(rows4_sumexp)(const T *x, cs_intp xs, cs_intp C, const T *m,
                                       T *e, cs_intp es, double *s, int tail4)
{
    if (sizeof(T) == 4) {
        CS_FN(rows4_sumexp_lanes)(x, xs, C, m, e, es, s, tail4);
        return;
    }
    const T *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
    T *e0 = e, *e1 = e, *e2 = e, *e3 = e;
    if (e != NULL)
        e1 = e + es, e2 = e + 2 * es, e3 = e + 3 * es;
    const T m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    double r0 = 0.0, r1 = 0.0, r2 = 0.0, r3 = 0.0;
    const cs_intp chunk = CS_ROW_CHUNK;
    for (cs_intp j0 = 0; j0 < C; j0 += chunk) {
        cs_intp j1 = C - j0 > chunk ? j0 + chunk : C;
        double a0[CS_ROW_LANES] = {0, 0, 0, 0, 0, 0, 0, 0}, a1[CS_ROW_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
        double a2[CS_ROW_LANES] = {0, 0, 0, 0, 0, 0, 0, 0}, a3[CS_ROW_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
        cs_intp j = j0;
        for (; j + CS_ROW_LANES <= j1; j += CS_ROW_LANES) {
            if (e != NULL) {
#pragma omp simd
CS_LANE_LOOP
                for (int l = 0; l < CS_ROW_LANES; l++) {
                    T v0 = EXPNEG(x0[j + l] - m0), v1 = EXPNEG(x1[j + l] - m1);
                    T v2 = EXPNEG(x2[j + l] - m2), v3 = EXPNEG(x3[j + l] - m3);
                    e0[j + l] = v0, e1[j + l] = v1, e2[j + l] = v2, e3[j + l] = v3;
                    a0[l] += v0, a1[l] += v1, a2[l] += v2, a3[l] += v3;
                }
            } else {
#pragma omp simd
CS_LANE_LOOP
                for (int l = 0; l < CS_ROW_LANES; l++) {
                    a0[l] += EXPNEG(x0[j + l] - m0), a1[l] += EXPNEG(x1[j + l] - m1);
                    a2[l] += EXPNEG(x2[j + l] - m2), a3[l] += EXPNEG(x3[j + l] - m3);
                }
            }
        }
        for (int l = 0; j + l < j1; l++) {
            T v0 = EXPNEG(x0[j + l] - m0), v1 = EXPNEG(x1[j + l] - m1);
            T v2 = EXPNEG(x2[j + l] - m2), v3 = EXPNEG(x3[j + l] - m3);
            if (e != NULL)
                e0[j + l] = v0, e1[j + l] = v1, e2[j + l] = v2, e3[j + l] = v3;
            a0[l] += v0, a1[l] += v1, a2[l] += v2, a3[l] += v3;
        }
        cs_two_sum(&s0, &r0, CS_FN(lanes8_sum)(a0)), cs_two_sum(&s1, &r1, CS_FN(lanes8_sum)(a1));
        cs_two_sum(&s2, &r2, CS_FN(lanes8_sum)(a2)), cs_two_sum(&s3, &r3, CS_FN(lanes8_sum)(a3));
    }
    s[0] = s0 + r0, s[1] = s1 + r1, s[2] = s2 + r2, s[3] = s3 + r3;
}

/* Whether any of n maxima is not finite (m - m is 0 only for a finite m):
   one vector pass, so that the rows that need a second look (rare) cost a
   test a block, not a branch a row (that branch took 9 % of float32
   log_softmax at C = 8; AMD Zen 3, v3, kernel only). */
static inline int CS_FN(any_nonfinite)(const T *m, cs_intp n)
{
    int some = 0;
#pragma omp simd reduction(| : some)
    for (cs_intp r = 0; r < n; r++)
        some |= !(m[r] - m[r] == 0);
    return some;
}

/* ls[r] = log(s[r]).  Where the max is not finite, SciPy's log_softmax shifts by
   0 instead; m[r] and ls[r] are redone that way (rare: scalar libm). */
static inline void CS_FN(log_sums)(const T *x, cs_intp xs, cs_intp nb, cs_intp C,
                                   T *m, const double *s, double *ls)
{
#pragma omp simd
    for (cs_intp r = 0; r < nb; r++)
        ls[r] = cs_log_sum(s[r]);
    const int some = CS_FN(any_nonfinite)(m, nb);
    for (cs_intp r = 0; some && r < nb; r++) {
        if (isfinite(m[r]))
            continue;
        const T *xr = x + r * xs;
        double sr = 0.0;
        for (cs_intp j = 0; j < C; j++)
            sr += exp((double)xr[j]);
        m[r] = 0;
        ls[r] = log(sr);
    }
}

/* rows4_sumexp at a width known only at run time for the cross-entropy's
   mid-width rows: a call (the forward's rows were a tenth slower with it
   inlined, float32 softmax out of cache at C = 256 on an AMD Zen 3 core,
   before they became one call each; the explicit tail4 slowed these 1-2 %). */
CS_NOINLINE void CS_FN(rows4_sumexp_call)(const T *x, cs_intp xs, cs_intp C, const T *m,
                                         T *e, cs_intp es, double *s)
{
    CS_FN(rows4_sumexp)(x, xs, C, m, e, es, s, 0);
}

/* Four rows of softmax (x and y rows xs and ys apart; y may be x); C a
   constant (softmax_rows4) or not (softmax_rows4_any). */
CS_INLINE void CS_FN(softmax_rows4)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp C)
{
    T *y0 = y, *y1 = y0 + ys, *y2 = y1 + ys, *y3 = y2 + ys;
    T m[CS_MID_ROWS];
    double s[CS_MID_ROWS];
    CS_FN(rows4_max)(x, xs, C, m);
    CS_FN(rows4_sumexp)(x, xs, C, m, y, ys, s, 1);
    T k0 = (T)(1.0 / s[0]), k1 = (T)(1.0 / s[1]);
    T k2 = (T)(1.0 / s[2]), k3 = (T)(1.0 / s[3]);
    const cs_intp n = C & ~(CS_VL - 1);
#pragma omp simd
    for (cs_intp j = 0; j < n; j++) {
        y0[j] *= k0, y1[j] *= k1;
        y2[j] *= k2, y3[j] *= k3;
    }
    for (cs_intp j = n; j < C; j++) {
        y0[j] *= k0, y1[j] *= k1;
        y2[j] *= k2, y3[j] *= k3;
    }
}

/* softmax_rows4 at a width known only at run time, as one call with the
   sums inlined in it (not, as before, the sums a call of their own and the
   rest inlined in the block's loop), each row's last C % CS_VL entries by
   rows4_sumexp's tail4.  Kernel-only, one thread, 409600 entries in cache,
   ns an entry, AMD Zen 4: float32 x86-64-v4 C = 33 0.61-0.62 against 0.71,
   C = 40 0.75 against 0.80-0.81, C = 56 0.62-0.64 against 0.65-0.67, C =
   100 0.45 against 0.47, C = 200 0.43 against 0.44; x86-64-v3 C = 40 0.65
   against 0.73-0.75, C = 100 0.59 against 0.61-0.62; baseline C = 40 1.34
   against 1.45; float64 x86-64-v4 C = 33 1.11 against 1.20, C = 100 1.07
   against 1.13.  The sums inlined with gcc's own tail were slower at
   float32 C = 36-60 (C = 40 0.97 against 0.81). */
CS_NOINLINE void CS_FN(softmax_rows4_any)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp C)
{
    CS_FN(softmax_rows4)(x, xs, y, ys, C);
}

/* y = (x - m) - l over one row: a loop of its own, so that the compiler
   aligns its stores (see log_softmax_rows4). */
static inline void CS_FN(shift_row)(const T *x, T *y, cs_intp C, T m, T l)
{
#pragma omp simd
    for (cs_intp j = 0; j < C; j++)
        y[j] = (x[j] - m) - l;
}

/* Four rows of log_softmax, as softmax_rows4; widths known only at run time
   by log_softmax_rows4_any.  The last pass, y = (x - m) - log S, goes a row
   at a time in rows of CS_LOG_ROW_BYTES or more.  Four rows in one loop
   leave four store streams that the compiler cannot all align; where y is
   not on a line (NumPy's arrays lie 16 bytes past one), each vector store
   then straddles two lines, and on an Intel core the loads of x behind it
   wait on it (their addresses match y's in the low 12 bits where x and y
   both lie at the same offset past a page, as large arrays do).  Kernel-
   only, Intel Xeon (family 6 model 207), one thread, 409600 entries, x and
   y 16 bytes past a page, ns an entry: x86-64-v4 float32 C = 128 0.41-0.46
   against 0.59-0.61, C = 256 0.54-0.57 against 0.76-0.81, float64 C = 64
   0.96 against 1.27, C = 128 1.08 against 1.61; x86-64-v3 float32 C = 128
   0.73 against 0.92.  Aligned rows even; shorter rows do better four at a
   time (float64 C = 40 1.0 against 1.3). */
#define CS_LOG_ROW_BYTES 512
CS_INLINE void CS_FN(log_softmax_rows4)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp C)
{
    const T *x0 = x, *x1 = x0 + xs, *x2 = x1 + xs, *x3 = x2 + xs;
    T *y0 = y, *y1 = y0 + ys, *y2 = y1 + ys, *y3 = y2 + ys;
    T m[CS_MID_ROWS];
    double s[CS_MID_ROWS], ls[CS_MID_ROWS];
    CS_FN(rows4_max)(x, xs, C, m);
    CS_FN(rows4_sumexp)(x, xs, C, m, NULL, 0, s, 0);
    CS_FN(log_sums)(x, xs, CS_MID_ROWS, C, m, s, ls);
    T m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
    T l0 = (T)ls[0], l1 = (T)ls[1], l2 = (T)ls[2], l3 = (T)ls[3];
    if (C * (cs_intp)sizeof(T) >= CS_LOG_ROW_BYTES) {
        for (int q = 0; q < CS_MID_ROWS; q++)
            CS_FN(shift_row)(x + q * xs, y + q * ys, C, m[q], (T)ls[q]);
        return;
    }
    const cs_intp n = C & ~(CS_VL - 1);
#pragma omp simd
    for (cs_intp j = 0; j < n; j++) {
        y0[j] = (x0[j] - m0) - l0, y1[j] = (x1[j] - m1) - l1;
        y2[j] = (x2[j] - m2) - l2, y3[j] = (x3[j] - m3) - l3;
    }
    for (cs_intp j = n; j < C; j++) {
        y0[j] = (x0[j] - m0) - l0, y1[j] = (x1[j] - m1) - l1;
        y2[j] = (x2[j] - m2) - l2, y3[j] = (x3[j] - m3) - l3;
    }
}

/* log_softmax_rows4 at a width known only at run time, as one call with the
   sums inlined (as softmax_rows4_any; tail4 was even or 1-3 % slower here,
   where no exponential is stored).  Kernel-only, one thread, 409600 entries
   in cache, ns an entry, against the sums in a call of their own and the
   rest inlined in the block's loop: AMD Zen 4, x86-64-v4, float32
   C = 33 0.69-0.70 against 0.78-0.79, C = 100 0.50 against 0.51, C = 200
   0.47 against 0.47-0.48; float64 C = 33 1.23-1.25 against 1.35, C = 100
   1.03-1.06 against 1.15-1.19; x86-64-v3 float32 C = 33 0.82 against 0.85,
   C = 100 0.60 against 0.59-0.60, float64 C = 100 1.23 against 1.35-1.37. */
CS_NOINLINE void CS_FN(log_softmax_rows4_any)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp C)
{
    CS_FN(log_softmax_rows4)(x, xs, y, ys, C);
}

/* The last n < CS_MID_ROWS rows of a call (rows xs apart) into buf, C
   apart, the first of them repeated to make four: the four-row loops then
   take them as any four rows, each with the bits it gets among others. */
static inline void CS_FN(rows4_pad)(const T *x, cs_intp xs, cs_intp n, cs_intp C, T *buf)
{
    for (cs_intp q = 0; q < CS_MID_ROWS; q++) {
        const T *xr = x + (q < n ? q : 0) * xs;
        for (cs_intp j = 0; j < C; j++)
            buf[q * C + j] = xr[j];
    }
}

/* Mid-width rows, four at a time by f.  The last nrows % 4 rows go through f
   too, copied into a buffer (the spare rows repeat the first): a row's bits
   must not depend on how the rows were split between threads.  With pf
   (rows streamed from memory: see CS_STREAM_BYTES) the next group's rows of
   x and y are prefetched, a line at a time, while a group is taken, into
   the second-level cache, not the first: on an AMD Zen 4 core, prefetches
   into the first filled its miss buffers and waited there (perf), and
   float32 softmax, 8.2M entries, two threads, x86-64-v4, kernel-only,
   medians of 5 interleaved rounds, took C = 64 0.43 against 0.48 ns an
   entry, C = 100 0.43-0.52 against 0.62, C = 256 0.43 against 0.65-0.68
   (none: 0.48, 0.57-0.68, 0.63-0.68; two groups ahead no better). */
CS_INLINE void CS_FN(mid_rows)(const T *x, cs_intp xs, T *y, cs_intp ys, cs_intp nrows, cs_intp C,
                                   void (*f)(const T *, cs_intp, T *, cs_intp, cs_intp), int pf)
{
    cs_intp r = 0;
    for (; r + CS_MID_ROWS <= nrows; r += CS_MID_ROWS) {
        if (pf && r + 2 * CS_MID_ROWS <= nrows) {
            const cs_intp bytes = C * (cs_intp)sizeof(T);
            for (int q = 0; q < CS_MID_ROWS; q++) {
                const char *px = (const char *)(x + (r + CS_MID_ROWS + q) * xs);
                char *py = (char *)(y + (r + CS_MID_ROWS + q) * ys);
                for (cs_intp b = 0; b < bytes; b += 64)
                    CS_PREFETCH(px + b, 0, 1);
                for (cs_intp b = 0; b < bytes; b += 64)
                    CS_PREFETCH(py + b, 1, 1);
            }
        }
        f(x + r * xs, xs, y + r * ys, ys, C);
    }
    if (r == nrows)
        return;
    T buf[CS_MID_ROWS * (CS_MID_BYTES / sizeof(T))];
    CS_FN(rows4_pad)(x + r * xs, xs, nrows - r, C, buf);
    f(buf, C, buf, C, C);
    for (cs_intp q = 0; r + q < nrows; q++) {
        T *yr = y + (r + q) * ys;
        for (cs_intp j = 0; j < C; j++)
            yr[j] = buf[q * C + j];
    }
}

/* The max and sum of exponentials of nb mid-width rows, four at a time: m[r],
   s[r], and unless nan is NULL nan[r] (row_nan, before e is written); e (rows
   es apart, possibly x) receives the exponentials unless NULL.  The last
   nb % 4 rows go through a buffer, as in mid_rows.  fixed: C is a constant
   (mid_sums_w), and the four-row sums are inlined; else they are a call. */
CS_INLINE void CS_FN(mid_sums_at)(const T *x, cs_intp xs, T *e, cs_intp es, cs_intp nb, cs_intp C,
                                  T *m, double *s, unsigned char *nan, int fixed)
{
    cs_intp r = 0;
    for (; r + CS_MID_ROWS <= nb; r += CS_MID_ROWS) {
        CS_FN(rows4_max)(x + r * xs, xs, C, m + r);
        for (cs_intp q = 0; nan != NULL && q < CS_MID_ROWS; q++)
            nan[r + q] = CS_FN(row_nan)(x + (r + q) * xs, C, m[r + q]);
        if (fixed)
            CS_FN(rows4_sumexp)(x + r * xs, xs, C, m + r, e != NULL ? e + r * es : NULL, es, s + r, 0);
        else
            CS_FN(rows4_sumexp_call)(x + r * xs, xs, C, m + r, e != NULL ? e + r * es : NULL, es, s + r);
    }
    if (r == nb)
        return;
    T buf[CS_MID_ROWS * (CS_MID_BYTES / sizeof(T))], mb[CS_MID_ROWS];
    double sb[CS_MID_ROWS];
    CS_FN(rows4_pad)(x + r * xs, xs, nb - r, C, buf);
    CS_FN(rows4_max)(buf, C, C, mb);
    for (cs_intp q = 0; nan != NULL && r + q < nb; q++)
        nan[r + q] = CS_FN(row_nan)(buf + q * C, C, mb[q]);
    CS_FN(rows4_sumexp_call)(buf, C, C, mb, e != NULL ? buf : NULL, C, sb);
    for (cs_intp q = 0; r + q < nb; q++) {
        m[r + q] = mb[q];
        s[r + q] = sb[q];
        if (e != NULL)
            for (cs_intp j = 0; j < C; j++)
                e[(r + q) * es + j] = buf[q * C + j];
    }
}

static inline void CS_FN(mid_sums)(const T *x, cs_intp xs, T *e, cs_intp es, cs_intp nb, cs_intp C,
                                   T *m, double *s, unsigned char *nan)
{
    CS_FN(mid_sums_at)(x, xs, e, es, nb, C, m, s, nan, 0);
}

/* mid_sums at the widths of CS_MID_WIDTHS, W (k vectors) a constant: one
   function a width, the four-row sums unrolled in it, no remainder loop.
   The cross-entropy with class indices, kernel-only, AMD Zen 4, 409600
   entries in cache, one thread unless said, medians of 3-5 interleaved
   rounds, ns an entry: x86-64-v4 float32 C = 16 0.84 against 0.99 (two
   threads 0.42 against 0.50), C = 32 0.62 against 0.69, C = 48 0.49 against
   0.59, C = 64 0.45 against 0.49, C = 128 0.39 against 0.43; float64 C = 24
   1.22 against 1.35, C = 48 1.00 against 1.35, C = 64 0.98 against 1.05;
   x86-64-v3 float32 C = 16 0.99 against 1.11, C = 64 0.59 against 0.64;
   baseline C = 16 1.92 against 2.07.  The same bits.  The cross-entropy with
   probability targets too: float32 x86-64-v4 C = 16 1.80-1.82 against
   1.95-1.97, C = 48 0.94 against 1.05, C = 64 0.79-0.81 against 0.86-0.87,
   C = 128 even; float64 C = 24 1.66 against 1.82-1.84, C = 64 2.56 against
   2.48-2.51; x86-64-v3 float32 C = 16 1.62 against 1.74. */
#define CS_MID_SUMS_FN(k)                                                                            \
    CS_NOINLINE void CS_FN(mid_sums_##k)(const T *x, cs_intp xs, T *e, cs_intp es, cs_intp nb, T *m, \
                                         double *s, unsigned char *nan)                              \
    {                                                                                                \
        CS_FN(mid_sums_at)(x, xs, e, es, nb, k * CS_VL, m, s, nan, 1);                               \
    }
CS_MID_SUMS_FN(1)
CS_MID_SUMS_FN(2)
CS_MID_SUMS_FN(3)
CS_MID_SUMS_FN(4)
CS_MID_SUMS_FN(6)
CS_MID_SUMS_FN(8)
CS_INLINE void CS_FN(mid_sums_w)(const T *x, cs_intp xs, T *e, cs_intp es, cs_intp nb, cs_intp W,
                                 T *m, double *s, unsigned char *nan)
{
    /* by W / CS_VL, one of CS_MID_WIDTHS's: a constant where this is inlined,
       and so a direct call */
    static void (*const f[9])(const T *, cs_intp, T *, cs_intp, cs_intp, T *, double *, unsigned char *) = {
        NULL, CS_FN(mid_sums_1), CS_FN(mid_sums_2), CS_FN(mid_sums_3), CS_FN(mid_sums_4),
        NULL, CS_FN(mid_sums_6), NULL, CS_FN(mid_sums_8)};
    f[W / CS_VL](x, xs, e, es, nb, m, s, nan);
}

/* mid_sums as a call (no nan flags): the probability-target kernel's, whose
   other paths ran 8 % slower with it inlined (float32 C = 128, kernel-only). */
CS_NOINLINE void CS_FN(mid_sums_call)(const T *x, cs_intp xs, T *e, cs_intp es, cs_intp nb, cs_intp C,
                                      T *m, double *s)
{
    CS_FN(mid_sums)(x, xs, e, es, nb, C, m, s, NULL);
}

/* A narrow width of whole vectors, at least `least` entries, goes the
   mid-width way too (four rows at a time, no remainder): measured on an Intel
   x86-64-v4 core, float32 on 2 threads, softmax at C = 32 took 0.35 against
   0.71 ns an entry out of cache, at C = 16 0.49 against 0.67; log_softmax at
   C = 32 0.46 against 0.71, but at C = 16 0.75 against 0.55 (so log_softmax
   starts at 32); at C = 24, a vector and a half, the narrow block stays ahead. */
static inline int CS_FN(whole_vectors)(cs_intp C, cs_intp least)
{
    return C >= least && C <= CS_NARROW && C % (cs_intp)(CS_VEC_BYTES / sizeof(T)) == 0;
}

/* Whether rows of C entries go one at a time in a call that streams from
   memory (pf): those of CS_STREAM_WIDE_BYTES or more. */
static inline int CS_FN(stream_one_row)(cs_intp C, int pf)
{
    return pf && C * (cs_intp)sizeof(T) >= CS_STREAM_WIDE_BYTES;
}

static void CS_FN(softmax_block)(const T *x, cs_intp xs, T *y, cs_intp ys,
                                cs_intp nrows, cs_intp C, int pf, const T *after)
{
    T t[CS_BLOCK + CS_NARROW], e[CS_BLOCK + CS_NARROW], m[CS_BLOCK], k[CS_BLOCK];
    double s[CS_BLOCK];
    /* pf: a call that streams from memory (big_call); after: the row of C
       entries to prefetch past the last (NULL: none), as wide rows there
       prefetch the next */
    const int one_row = CS_FN(stream_one_row)(C, pf);
    if (!one_row && (CS_FN(is_mid)(C, CS_MID_BYTES) || CS_FN(whole_vectors)(C, 16))) {
#define CS_MID_CALL(W) CS_FN(mid_rows)(x, xs, y, ys, nrows, W, CS_FN(softmax_rows4), pf)
#define CS_MID_ANY(W) CS_FN(mid_rows)(x, xs, y, ys, nrows, W, CS_FN(softmax_rows4_any), pf)
        CS_MID_WIDTHS(CS_MID_CALL, CS_MID_ANY, C);
#undef CS_MID_CALL
#undef CS_MID_ANY
        return;
    }
    cs_intp nbmax = CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *xb = x + i0 * xs;
        T *yb = y + i0 * ys;
        if (CS_FN(is_narrow)(C)) {
            int flat = CS_FN(softmax_flat)(C) && xs == C && ys == C;
            /* float32 in a call that streams from memory (pf), contiguous
               rows: the sums prefetch the next block, a share of it with
               each class (prefetch_class).  Kernel-only, AMD Zen 4, v4,
               8.2M entries, medians of 6, ns an entry: two threads C = 24
               0.68 against 0.94, C = 10 0.66 against 0.85, C = 2 0.67
               against 0.79; one thread C = 24 1.1 against 1.75.  float64
               C = 24 even, so it is left out. */
            const T *px = NULL;
            cs_intp pn = 0;
            if (sizeof(T) == 4 && pf && xs == C && i0 + nb < nrows) {
                px = xb + nb * xs;
                pn = nrows - i0 - nb < nbmax ? nrows - i0 - nb : nbmax;
            }
            CS_FN(narrow_load)(xb, xs, nb, C, t, m);
            CS_FN(narrow_sumexp_at)(t, !flat ? t : NULL, nb, C, m, s, px, pn, pn);
            if (flat) {
                /* the exponentials again, in row order (the same bits) */
#pragma omp simd
                for (cs_intp r = 0; r < nb; r++)
                    k[r] = (T)(1.0 / s[r]);
                CS_FN(narrow_expand)(m, nb, C, t);
                CS_FN(narrow_expand)(k, nb, C, e);
#pragma omp simd
CS_FLOAT_LANES
                for (cs_intp i = 0; i < nb * C; i++)
                    yb[i] = EXPNEG(xb[i] - t[i]) * e[i];
                continue;
            }
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                m[r] = (T)(1.0 / s[r]);
            CS_FN(narrow_store)(t, nb, C, m, yb, ys);
            continue;
        }
        /* wide rows; in a call that streams from memory (pf), each row's
           exponentials prefetch the next row, which its first pass then
           reads from L2: kernel-only, 8.2M entries on two threads, AMD Zen 4,
           ns an entry, x86-64-v4 float32 C = 4096 0.21 against 0.25,
           C = 32768 0.18 against 0.20, float64 C = 4096 0.46 against 0.54,
           x86-64-v3 float32 C = 4096 0.30 against 0.32; C = 256 and 1000
           even */
        for (cs_intp r = 0; r < nb; r++) {
            T *yr = yb + r * ys;
            double sr;
            CS_FN(row_sumexp)(xb + r * xs, C, yr, &sr, !pf ? NULL : i0 + r + 1 < nrows ? xb + (r + 1) * xs : after,
                              NULL);
            T k = (T)(1.0 / sr);
#pragma omp simd
            for (cs_intp j = 0; j < C; j++)
                yr[j] *= k;
        }
    }
}

/* pf: a call that streams from memory (big_call), where rows of
   CS_STREAM_WIDE_BYTES or more go one at a time, as softmax's do
   (stream_one_row; the same bits): the wide rows' prefetch of the next row
   keeps the memory busy, where four mid-width rows side by side left it to
   the hardware prefetchers.  Kernel-only, AMD Zen 4, x86-64-v4, float32,
   8.2M entries, two threads, 16 bytes past a line, ns an entry: C = 200
   0.31 against 0.48, C = 256 0.24 against 0.48, C = 128 and 1000 even;
   float64 C = 100 0.59 against 1.18, C = 128 0.57 against 1.20;
   x86-64-v3 float32 C = 256 0.30 against 0.57, float64 C = 100 0.70
   against 1.33.  In cache the four rows stay ahead (C = 200 0.44 against
   0.61), and take them as before.
   after: the row of C entries that the last wide row's exponentials
   prefetch (NULL: none), as each prefetches the next */
static void CS_FN(log_softmax_block)(const T *x, cs_intp xs, T *y, cs_intp ys,
                                    cs_intp nrows, cs_intp C, int pf, const T *after)
{
    T t[CS_BLOCK + CS_NARROW], e[CS_BLOCK + CS_NARROW], m[CS_BLOCK], k[CS_BLOCK];
    double s[CS_BLOCK], ls[CS_BLOCK];
    if (!CS_FN(stream_one_row)(C, pf) && (CS_FN(is_mid)(C, CS_MID_LOG_BYTES) || CS_FN(whole_vectors)(C, 32))) {
#define CS_MID_CALL(W) CS_FN(mid_rows)(x, xs, y, ys, nrows, W, CS_FN(log_softmax_rows4), 0)
#define CS_MID_ANY(W) CS_FN(mid_rows)(x, xs, y, ys, nrows, W, CS_FN(log_softmax_rows4_any), 0)
        CS_MID_WIDTHS(CS_MID_CALL, CS_MID_ANY, C);
#undef CS_MID_CALL
#undef CS_MID_ANY
        return;
    }
    if (C > CS_NARROW) {
        /* Wide rows: a row is finished after the next one's sum, so that the
           chain of its logarithm runs beside that work, not before its own
           last pass (the row is still in L1).  The sum's exponentials, which
           touch no memory, prefetch the next row of x and the output row
           written next, a line a vector: kernel-only on an AMD Zen 4 core at
           x86-64-v4, ns an entry, 8.2M entries on two threads float32 C =
           1000 0.31 against 0.55 (medians of 5), C = 4096 0.31 against 0.41,
           C = 32768 0.28 against 0.35, float64 C = 1000 0.66 against 1.0,
           C = 4096 0.56 against 0.96; 409600 entries (in L3), one thread,
           float32 C = 384 0.41 against 0.49, C = 4096 0.36 against 0.40,
           float64 C = 1000 0.83 against 0.91.  x86-64-v3: float64 C = 1000
           out of cache 0.87 against 1.21, in L3 even (float64 C = 200 one
           thread 2 % slower).  softmax's wide rows, whose exponentials are
           stored as they go, prefetch the next row only in a call that
           streams from memory (softmax_block).  A block of one row (as
           log_softmax_where_rows gives in such a call) prefetches its own
           output row during its sum: Intel Xeon (family 6 model 207),
           x86-64-v4, float32 (8192, 1000) with where=, two threads,
           1.15-1.46x the unmasked call against 1.42-1.78x (the same
           prefetch in softmax_where_rows lost: 1.24-1.53x against
           1.11-1.32x). */
        for (cs_intp r = 0; r <= nrows; r++) {
            if (r < nrows)
                m[r & 1] = CS_FN(row_sumexp)(x + r * xs, C, NULL, &s[r & 1],
                                              r + 1 < nrows ? x + (r + 1) * xs : after,
                                              r > 0 ? y + (r - 1) * ys : nrows == 1 ? y : NULL);
            if (r == 0)
                continue;
            cs_intp q = (r - 1) & 1;
            const T *xr = x + (r - 1) * xs;
            T *yr = y + (r - 1) * ys;
            CS_FN(log_sums)(xr, xs, 1, C, &m[q], &s[q], &ls[q]);
            T mr = m[q], lr = (T)ls[q];
#pragma omp simd
            for (cs_intp j = 0; j < C; j++)
                yr[j] = (xr[j] - mr) - lr;
        }
        return;
    }
    cs_intp nbmax = CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *xb = x + i0 * xs;
        T *yb = y + i0 * ys;
        CS_FN(narrow_load)(xb, xs, nb, C, t, m);
        CS_FN(narrow_sumexp)(t, nb, C, m, s, 0);
        CS_FN(log_sums)(xb, xs, nb, C, m, s, ls);
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            k[r] = (T)ls[r];
        if (C % CS_VL == 0) {
            /* Rows of whole vectors: each row's m and log S broadcast
               to its vectors, with nothing spread first (float32, AMD
               Zen 3, v3, kernel only, with the test above: C = 8 1.18
               against 1.52 ns an entry, C = 16 1.06 against 1.33,
               C = 24 1.06 against 1.25; float64 at C = 8 1.92 against
               2.38; rows a stride apart, float32 C = 8-24, 15-25 % less
               than the loop below).  The same operations, so the same
               bits. */
            for (cs_intp r = 0; r < nb; r++) {
                const T mr = m[r], kr = k[r];
                const T *xr = xb + r * xs;
                T *yr = yb + r * ys;
                for (cs_intp j = 0; j < C; j += CS_VL) {
#pragma omp simd
                    for (cs_intp l = 0; l < CS_VL; l++)
                        yr[j + l] = (xr[j + l] - mr) - kr;
                }
            }
            continue;
        }
        if (C >= CS_FLAT_LOG_MIN && xs == C && ys == C) {
            CS_FN(narrow_expand)(m, nb, C, t);
            CS_FN(narrow_expand)(k, nb, C, e);
#pragma omp simd
            for (cs_intp i = 0; i < nb * C; i++)
                yb[i] = (xb[i] - t[i]) - e[i];
            continue;
        }
        for (cs_intp j = 0; j < C; j++) {
            const T *tj = t + j * nb;
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                yb[r * ys + j] = (tj[r] - m[r]) - k[r];
        }
    }
}

/* Prefetch the W entries of class c + CS_PF (one strip of a tile; classes
   stride apart from base) if there is such a class and pf, for writing when
   write.
   The whole next tile is prefetched meanwhile too (cols_block_sumexp), but
   with a row stride of a power of two its strips share a few cache sets and
   push each other out.  Softmax over axis 0, two threads, AMD Zen 4, against
   no strip prefetching: float64 (1000, 8192) 5.6 against 7.1 ms; float32
   (tiles of about 256 KiB) x86-64-v4 (8192, 1000) 3.9-4.3 against 5.1-5.9
   ms, (1000, 8192) 2.8-3.0 against 2.9-3.1, x86-64-v3 (8192, 1000) 5.3-5.4
   against 6.0-6.4; one thread, x86-64-v4, (8192, 1000) 6.6-6.9 against 9.0,
   (2000, 4096) 7.4-8.2 against 9.3-9.5. */
static inline void CS_FN(prefetch_strip)(const T *base, cs_intp c, cs_intp C, cs_intp stride,
                                         cs_intp W, int write, int pf)
{
    if (!pf || c + CS_PF >= C)
        return;
    const T *p = base + (c + CS_PF) * stride;
    for (cs_intp j = 0; j < W; j += 64 / sizeof(T)) {
        if (write)
            CS_PREFETCH(p + j, 1, 3);
        else
            CS_PREFETCH(p + j, 0, 3);
    }
}

/* The sums of exponentials of CS_COL_BLOCK columns of a packed tile (its
   classes W apart), s[j] = sum_c exp(b[c * W + j] - m[j]), e receiving the
   exponentials unless NULL (e may be b): each column's running sum stays in
   a register over the classes, where a tile-wide pass per class would load
   and store it every class.  The additions are those of the tile-wide pass,
   in its order (chunks of CS_COL_CHUNK classes, added with cs_two_sum).
   This pass computes from the packed tile and leaves the memory idle; for
   each class it prefetches into L2 the same columns of class row c of px
   (the next tile's input, xs apart) and, for writing, of py (this tile's
   output, ys apart), either skipped when NULL, and the line of class c of
   pk (the next tile's mask, ks apart) unless NULL.  Over the tile's blocks
   that is every line the next tile packs and this one writes.  float32 softmax
   over axis 0 of (1000, 8192), kernel-only, two threads, AMD Zen 4: 0.37
   against 0.60 ns an entry at x86-64-v4, 0.47 against 0.65 at v3; float64
   0.72 against 1.0 (prefetching into L1 instead: 0.47; no gain from the
   register blocks alone, 0.97 against 1.0 on one thread). */
#define CS_COL_BLOCK (2 * CS_VL)
CS_INLINE void CS_FN(cols_block_sumexp)(const T *b, cs_intp W, cs_intp C, const T *m, T *e, double *s,
                                         const T *px, T *py, cs_intp xs, cs_intp ys,
                                         const unsigned char *pk, cs_intp ks)
{
    const cs_intp chunk = CS_COL_CHUNK(C);
    double sb[CS_COL_BLOCK], eb[CS_COL_BLOCK];
    T mb[CS_COL_BLOCK];
    for (int l = 0; l < CS_COL_BLOCK; l++)
        sb[l] = eb[l] = 0.0, mb[l] = m[l];
    for (cs_intp c0 = 0; c0 < C; c0 += chunk) {
        cs_intp c1 = C - c0 > chunk ? c0 + chunk : C;
        double a[CS_COL_BLOCK];
        for (int l = 0; l < CS_COL_BLOCK; l++)
            a[l] = 0.0;
        for (cs_intp c = c0; c < c1; c++) {
            for (cs_intp l = 0; l < CS_COL_BLOCK; l += 64 / (cs_intp)sizeof(T)) {
                if (px != NULL)
                    CS_PREFETCH(px + c * xs + l, 0, 2);
                if (py != NULL)
                    CS_PREFETCH(py + c * ys + l, 1, 2);
            }
            if (pk != NULL)
                CS_PREFETCH(pk + c * ks, 0, 2);
            CS_FN(add_exp)(b + c * W, mb, e != NULL ? e + c * W : NULL, a, CS_COL_BLOCK);
        }
        for (int l = 0; l < CS_COL_BLOCK; l++)
            cs_two_sum(&sb[l], &eb[l], a[l]);
    }
    for (int l = 0; l < CS_COL_BLOCK; l++)
        s[l] = sb[l] + eb[l];
}

/* A tile of W columns (C classes xs apart) packed into buf (C rows of W),
   and each column's max m[j] taken on the way.  With a mask k (its classes
   ks apart, columns contiguous; NULL: none), an entry whose mask byte is 0
   is packed as -inf, as where_select selects rows. */
static inline void CS_FN(cols_pack_max)(const T *x, cs_intp xs, const unsigned char *k, cs_intp ks,
                                        cs_intp C, cs_intp W, T *buf, T *m, int pf)
{
    if (k == NULL) {
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            buf[j] = m[j] = x[j];
    } else {
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            buf[j] = m[j] = k[j] ? x[j] : (T)-INFINITY;
    }
    for (cs_intp c = 1; c < C; c++) {
        const T *xc = x + c * xs;
        T *bc = buf + c * W;
        CS_FN(prefetch_strip)(x, c, C, xs, W, 0, pf);
        if (k == NULL) {
#pragma omp simd
            for (cs_intp j = 0; j < W; j++) {
                bc[j] = xc[j];
                m[j] = xc[j] > m[j] ? xc[j] : m[j];
            }
        } else {
            const unsigned char *kc = k + c * ks;
#pragma omp simd
            for (cs_intp j = 0; j < W; j++) {
                T v = kc[j] ? xc[j] : (T)-INFINITY;
                bc[j] = v;
                m[j] = v > m[j] ? v : m[j];
            }
        }
    }
}

/* Over a strided class axis, W columns (a tile) at a time.  The tile is first
   packed into buf (C rows of W), its max m[j] taken on the way; the passes that
   follow stay in that contiguous copy, not in rows a large power-of-two stride
   apart (measured: a fifth faster at (1000, 8192) over axis 0).
   s[j] = sum of exp(buf - m[j]) by chunks of classes (CS_COL_CHUNK), chunk
   totals added with cs_two_sum; with keep, buf receives the exponentials.
   Meanwhile the next tile (nx, nw columns, classes xs apart; NULL if none)
   and this tile's output (y, classes ys apart) are prefetched, as
   cols_block_sumexp says.  With a mask k (classes ks apart; NULL: none),
   the masked entries are packed as -inf (cols_pack_max). */
static inline void CS_FN(cols_sumexp)(const T *x, cs_intp xs, const unsigned char *k, cs_intp ks,
                                      cs_intp C, cs_intp W, T *buf, int keep, T *m, double *s,
                                      const T *nx, const unsigned char *nk, cs_intp nw, T *y, cs_intp ys, int pf)
{
    double part[CS_TILE], err[CS_TILE];
    CS_FN(cols_pack_max)(x, xs, k, ks, C, W, buf, m, pf);
#pragma omp simd
    for (cs_intp j = 0; j < W; j++) {
        s[j] = 0.0;
        err[j] = 0.0;
    }
    const cs_intp chunk = CS_COL_CHUNK(C), wb = W - W % CS_COL_BLOCK;
    for (cs_intp j0 = 0; j0 < wb; j0 += CS_COL_BLOCK) {
        const T *px = nx != NULL && j0 + CS_COL_BLOCK <= nw ? nx + j0 : NULL;
        T *py = y != NULL ? y + j0 : NULL;
        const unsigned char *pk = nk != NULL && j0 % 64 == 0 && j0 < nw ? nk + j0 : NULL;
        if (keep)
            CS_FN(cols_block_sumexp)(buf + j0, W, C, m + j0, buf + j0, s + j0, px, py, xs, ys, pk, ks);
        else
            CS_FN(cols_block_sumexp)(buf + j0, W, C, m + j0, NULL, s + j0, px, py, xs, ys, pk, ks);
    }
    if (wb == W)
        return;
    for (cs_intp c0 = 0; c0 < C; c0 += chunk) {
        cs_intp c1 = C - c0 > chunk ? c0 + chunk : C;
        for (cs_intp j = wb; j < W; j++)
            part[j] = 0.0;
        for (cs_intp c = c0; c < c1; c++)
            CS_FN(add_exp)(buf + c * W + wb, m + wb, keep ? buf + c * W + wb : NULL, part + wb, W - wb);
#pragma omp simd
        for (cs_intp j = wb; j < W; j++)
            cs_two_sum(&s[j], &err[j], part[j]);
    }
#pragma omp simd
    for (cs_intp j = wb; j < W; j++)
        s[j] += err[j];
}

/* Streaming stores for a tile's output strips: y[0, W) = v[0, W), by
   stores that write whole lines to memory without first reading them into
   the caches.  A tile streams (stream_tile) when the caller asks for it
   (nt) and every strip lies on a line, W whole lines: the first one on a
   line, the class rows a whole number of lines apart.  On other CPUs than
   x86-64 it never does.  Each strip is computed into v (strip_out) and then
   streamed (strip_done); a tile that does not stream computes into y
   itself, its lines prefetched for writing a few classes ahead.
   stream_fence orders the streamed stores before what the thread writes
   next. */
static inline int CS_FN(stream_tile)(const T *y, cs_intp ys, cs_intp W, int nt)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return nt && ((size_t)y & 63) == 0 && (W * (cs_intp)sizeof(T)) % 64 == 0
           && (ys * (cs_intp)sizeof(T)) % 64 == 0;
#else
    (void)y, (void)ys, (void)W, (void)nt;
    return 0;
#endif
}

static inline void CS_FN(stream_strip)(T *y, const T *v, cs_intp W)
{
#if defined(__x86_64__) && defined(__clang__)
    typedef T cs_nt_vec __attribute__((vector_size(CS_VEC_BYTES)));
    for (cs_intp j = 0; j < W; j += CS_VEC_BYTES / (cs_intp)sizeof(T)) {
        cs_nt_vec a;
        memcpy(&a, v + j, sizeof a);
        __builtin_nontemporal_store(a, (cs_nt_vec *)(y + j));
    }
#elif defined(__x86_64__) && defined(__GNUC__) && defined(__AVX512F__)
    for (cs_intp j = 0; j < W; j += 64 / (cs_intp)sizeof(T))
        _mm512_stream_si512((void *)(y + j), _mm512_loadu_si512((const void *)(v + j)));
#elif defined(__x86_64__) && defined(__GNUC__) && defined(__AVX__)
    for (cs_intp j = 0; j < W; j += 32 / (cs_intp)sizeof(T))
        _mm256_stream_si256((__m256i *)(y + j), _mm256_loadu_si256((const __m256i *)(v + j)));
#elif defined(__x86_64__) && defined(__GNUC__)
    for (cs_intp j = 0; j < W; j += 16 / (cs_intp)sizeof(T))
        _mm_stream_si128((__m128i *)(y + j), _mm_loadu_si128((const __m128i *)(v + j)));
#else
    memcpy(y, v, (size_t)W * sizeof(T));
#endif
}

static inline void CS_FN(stream_fence)(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_ia32_sfence();
#endif
}

static inline T *CS_FN(strip_out)(T *y, cs_intp c, cs_intp C, cs_intp ys, cs_intp W, int pf, int st, T *v)
{
    if (st)
        return v;
    CS_FN(prefetch_strip)(y, c, C, ys, W, 1, pf);
    return y + c * ys;
}

static inline void CS_FN(strip_done)(T *yc, const T *v, cs_intp W, int st)
{
    if (st)
        CS_FN(stream_strip)(yc, v, W);
}

/* A tile of softmax over a strided class axis; with a mask k (classes ks
   apart, columns contiguous; NULL: none) only the set entries take part, as
   in softmax_where_rows: a masked entry gets 0, and so does every entry of a
   column with none set (its entries all packed as -inf, it came out nan). */
static void CS_FN(softmax_tile)(const T *x, cs_intp xs, const unsigned char *k, cs_intp ks, T *y, cs_intp ys,
                                cs_intp C, cs_intp W, T *buf, const T *nx, const unsigned char *nk, cs_intp nw,
                                int pf, int nt)
{
    T m[CS_TILE], v[CS_TILE];
    double s[CS_TILE];
    const int st = CS_FN(stream_tile)(y, ys, W, nt);
    CS_FN(cols_sumexp)(x, xs, k, ks, C, W, buf, 1, m, s, nx, nk, nw, st ? NULL : y, ys, pf);
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        m[j] = (T)(1.0 / s[j]);
    for (cs_intp c = 0; c < C; c++) {
        const T *bc = buf + c * W;
        T *o = CS_FN(strip_out)(y, c, C, ys, W, pf, st, v);
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            o[j] = bc[j] * m[j];
        CS_FN(strip_done)(y + c * ys, o, W, st);
    }
    if (st)
        CS_FN(stream_fence)();
    for (cs_intp j = 0; k != NULL && j < W; j++) {
        if (!isnan(s[j]))
            continue;
        cs_intp c = 0;
        while (c < C && !k[c * ks + j])
            c++;
        for (cs_intp i = 0; c == C && i < C; i++)
            y[i * ys + j] = 0;
    }
}

/* A tile of log_softmax over a strided class axis; with a mask mk (classes
   mks apart, columns contiguous; NULL: none) only the set entries take part,
   as in log_softmax_where_rows: a masked entry gets -inf.  It comes out
   (-inf - m) - log s, which is -inf unless log s is not finite (a nan
   set, no entry set, or all set ones -inf): only those columns are set
   again. */
static void CS_FN(log_softmax_tile)(const T *x, cs_intp xs, const unsigned char *mk, cs_intp mks,
                                    T *y, cs_intp ys, cs_intp C, cs_intp W, T *buf, const T *nx,
                                    const unsigned char *nk, cs_intp nw, int pf, int nt)
{
    T m[CS_TILE], k[CS_TILE], v[CS_TILE];
    double s[CS_TILE], ls[CS_TILE];
    const int st = CS_FN(stream_tile)(y, ys, W, nt);
    CS_FN(cols_sumexp)(x, xs, mk, mks, C, W, buf, 0, m, s, nx, nk, nw, st ? NULL : y, ys, pf);
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        ls[j] = cs_log_sum(s[j]);
    const int some = CS_FN(any_nonfinite)(m, W);
    for (cs_intp j = 0; some && j < W; j++) {
        if (isfinite(m[j]))
            continue;
        double sj = 0.0;
        for (cs_intp c = 0; c < C; c++)
            sj += exp((double)buf[c * W + j]);
        m[j] = 0;
        ls[j] = log(sj);
    }
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        k[j] = (T)ls[j];
    for (cs_intp c = 0; c < C; c++) {
        const T *bc = buf + c * W;
        T *o = CS_FN(strip_out)(y, c, C, ys, W, pf, st, v);
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            o[j] = (bc[j] - m[j]) - k[j];
        CS_FN(strip_done)(y + c * ys, o, W, st);
    }
    if (st)
        CS_FN(stream_fence)();
    for (cs_intp j = 0; mk != NULL && j < W; j++) {
        if (isfinite(k[j]))
            continue;
        for (cs_intp c = 0; c < C; c++)
            if (!mk[c * mks + j])
                y[c * ys + j] = (T)-INFINITY;
    }
}

/* log_softmax_backward's exp(log s): a log-softmax is <= 0, where EXPNEG_FMA
   (degree 5, one scale factor, no overflow; its one-step range reduction
   exact as fused multiply-adds) serves at x86-64-v3 and v4, which have FMA
   (float32 on an AMD Zen 3 core: 0.70 against 0.46 ns an entry at C = 1000,
   0.83 against 0.70 at C = 24, against EXP).  The log-softmax is given, not
   rounded here: with an inexact reduction its rounding error would not hide
   below that of the argument, as it does in softmax.  A row (or a column)
   holding an entry above 0 takes EXP, as do levels without FMA and the
   narrow rows (whose strided loads cost more than the exponential: slower
   with the extra test).  A nan is not above 0, and EXPNEG_FMA keeps it. */
#define CS_LOG_BWD_NEG (CS_VEC_BYTES >= 32)

/* Below these widths the backward passes take the narrow path: its strided
   loads cost about the same per entry at any width, the per-row loop's
   horizontal sum falls behind below them (measured on an Intel x86-64-v4 core,
   float32, 409600 entries: softmax_backward 0.6 against 1.4 ms at C = 2, the
   same at C = 8, 0.6 against 0.2 ms at C = 16; log_softmax_backward 0.6
   against 1.0 ms at C = 12 and 2.8 ms at C = 2; float64 softmax_backward 0.63
   against 0.85 ms at C = 2, 0.68 against 0.55 at C = 7). */
#define CS_BWD_NARROW (sizeof(T) == 8 ? 5 : 8)
#define CS_LOG_BWD_NARROW 16

/* The backward passes' narrow rows, when contiguous, take their last pass
   flat, as log_softmax's (narrow_expand).  Float32 on an AMD Zen 3 core at
   x86-64-v3, kernel-only: log_softmax_backward C = 2 1.72 against 1.33 ns an
   entry, C = 10 1.70 against 1.06, C = 15 1.69 against 0.98 (C = 8, one
   vector a row: even), float64 C = 10 3.10 against 2.26; softmax_backward
   C = 3 1.02 against 0.78, C = 7 1.00 against 0.63, float64 C = 3 1.16
   against 1.00.  At the baseline level float32 gains too (C = 10 3.15
   against 2.43), float64 not (log_softmax_backward 12.1 against 12.7, its
   exponential not vectorised there; softmax_backward C = 4 1.15 against
   1.20). */
static inline int CS_FN(bwd_flat)(void)
{
    return sizeof(T) == 4 || CS_VEC_BYTES >= 32;
}

/* Narrow rows go a block of rows at a time, each loop
   running down the block's rows in full vectors (a row of a few entries
   never fills one): the sums per row, then the outputs.  Each row's sum adds
   its entries in order, whatever the block, so the bits do not depend on how
   rows are split between threads.  s holds the softmax (log: the
   log-softmax); the sum is <g, s> (log: sum(g)). */
static void CS_FN(backward_narrow)(const T *s, cs_intp ss, const T *g, cs_intp gs,
                                  T *out, cs_intp os, cs_intp nrows, cs_intp C, int log)
{
    double acc[CS_BLOCK];
    T d[CS_BLOCK], e[CS_BLOCK + CS_NARROW];
    const int flat = CS_FN(bwd_flat)() && ss == C && gs == C && os == C;
    cs_intp nbmax = CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *sb = s + i0 * ss, *gb = g + i0 * gs;
        T *ob = out + i0 * os;
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            acc[r] = 0.0;
        for (cs_intp j = 0; j < C; j++) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                acc[r] += (double)gb[r * gs + j] * (log ? 1.0 : (double)sb[r * ss + j]);
        }
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            d[r] = (T)acc[r];
        if (flat) {
            /* contiguous rows: the output in row order, whole vectors, d
               spread over each row's entries (the same bits) */
            CS_FN(narrow_expand)(d, nb, C, e);
            if (log) {
#pragma omp simd
                for (cs_intp i = 0; i < nb * C; i++)
                    ob[i] = gb[i] - EXP(sb[i]) * e[i];
            } else {
#pragma omp simd
                for (cs_intp i = 0; i < nb * C; i++)
                    ob[i] = sb[i] * (gb[i] - e[i]);
            }
            continue;
        }
        for (cs_intp j = 0; j < C; j++) {
            if (log) {
#pragma omp simd
                for (cs_intp r = 0; r < nb; r++)
                    ob[r * os + j] = gb[r * gs + j] - EXP(sb[r * ss + j]) * d[r];
            } else {
#pragma omp simd
                for (cs_intp r = 0; r < nb; r++)
                    ob[r * os + j] = sb[r * ss + j] * (gb[r * gs + j] - d[r]);
            }
        }
    }
}

/* Mid-width rows of softmax_backward go four at a time, as the forward's:
   one loop takes the four rows' <g, s>, each row with its own accumulators,
   so that their horizontal reductions overlap and the loop carries four
   independent chains; then the four rows' outputs.  Rows of whole vectors
   get the width as a constant (CS_MID_WIDTHS_VL in backward_mid; float32 on an AMD Zen 3 core
   at x86-64-v3, C = 8 0.86 against 0.39 ns an entry, C = 24 0.35 against
   0.23, C = 64 0.26 against 0.32 with NumPy's 16-byte offset).  Up to
   CS_BWD_MID_BYTES a row; wider, one row at a time is ahead (same core,
   kernel-only: float32 C = 200 0.20 against 0.23 ns an entry, C = 256 0.20
   against 0.23, float64 C = 100 0.37 against 0.49, also at the baseline
   level; at 512 bytes the two are even).  Rows are given by
   pointer: the last nrows % 4 rows go with the first of them repeated, its
   output to a spare row, so a row's bits do not depend on how rows were
   split between threads.  log_softmax_backward takes the same way where
   its exponential is EXPNEG_FMA (log_backward_rows4). */
#define CS_BWD_MID_BYTES 512

/* o = s * (g - d) over one row: a loop of its own, so that the compiler
   aligns its stores.  backward_rows4 writes its rows of CS_BWD_ROW_BYTES or
   more this way, for the reason log_softmax_rows4 does (four store streams
   16 bytes past a line stall the loads behind them on an Intel core):
   kernel-only, Intel Xeon (family 6 model 207), x86-64-v4, one thread,
   409600 entries 16 bytes past a page, ns an entry: float64 C = 32 0.88
   against 1.18-1.21, C = 48 0.88 against 1.16-1.33, C = 64 0.91-0.92
   against 1.21-1.48; float32 C = 64-128 even; aligned rows even. */
#define CS_BWD_ROW_BYTES 256
static inline void CS_FN(bwd_out_row)(const T *s, const T *g, T *o, cs_intp C, T d)
{
#pragma omp simd
    for (cs_intp j = 0; j < C; j++)
        o[j] = s[j] * (g[j] - d);
}

CS_INLINE void CS_FN(backward_rows4)(const T *const *sp, const T *const *gp, T *const *op, cs_intp n, cs_intp C)
{
    const T *s0 = sp[0], *s1 = sp[1], *s2 = sp[2], *s3 = sp[3];
    const T *g0 = gp[0], *g1 = gp[1], *g2 = gp[2], *g3 = gp[3];
    T *o0 = op[0], *o1 = op[1], *o2 = op[2], *o3 = op[3];
    /* each row's lanes in double, added at the end by lanes_sum: the same
       operations for every row, whichever of the four it is (clang, allowed
       to reorder a reduction over four rows' sums, did not add them alike) */
    double q0[CS_SUM_VL], q1[CS_SUM_VL], q2[CS_SUM_VL], q3[CS_SUM_VL];
    for (int l = 0; l < CS_SUM_VL; l++)
        q0[l] = q1[l] = q2[l] = q3[l] = 0.0;
    if (sizeof(T) == 8 || C == 3 * CS_SUM_VL) {
        for (cs_intp j = 0; j < n; j += CS_SUM_VL) {
#pragma omp simd
            for (int l = 0; l < CS_SUM_VL; l++) {
                q0[l] += (double)(g0[j + l] * s0[j + l]), q1[l] += (double)(g1[j + l] * s1[j + l]);
                q2[l] += (double)(g2[j + l] * s2[j + l]), q3[l] += (double)(g3[j + l] * s3[j + l]);
            }
        }
    } else {
        /* float32: per row a vector of float lanes takes up to four terms
           each (as row_dot), then goes into the row's double lanes (AMD Zen
           3, v3: C = 16 0.31 against 0.21 ns an entry; at three vectors,
           C = 24, 0.25 against 0.39: the loop above) */
        for (cs_intp j0 = 0; j0 < n; j0 += 4 * CS_SUM_VL) {
            const cs_intp j1 = n - j0 > 4 * CS_SUM_VL ? j0 + 4 * CS_SUM_VL : n;
            T f0[CS_SUM_VL], f1[CS_SUM_VL], f2[CS_SUM_VL], f3[CS_SUM_VL];
            for (int l = 0; l < CS_SUM_VL; l++)
                f0[l] = f1[l] = f2[l] = f3[l] = 0;
            for (cs_intp j = j0; j < j1; j += CS_SUM_VL) {
#pragma omp simd
                for (int l = 0; l < CS_SUM_VL; l++) {
                    f0[l] += g0[j + l] * s0[j + l], f1[l] += g1[j + l] * s1[j + l];
                    f2[l] += g2[j + l] * s2[j + l], f3[l] += g3[j + l] * s3[j + l];
                }
            }
#pragma omp simd
            for (int l = 0; l < CS_SUM_VL; l++)
                q0[l] += f0[l], q1[l] += f1[l], q2[l] += f2[l], q3[l] += f3[l];
        }
    }
    double a0 = CS_FN(lanes_sum)(q0), a1 = CS_FN(lanes_sum)(q1);
    double a2 = CS_FN(lanes_sum)(q2), a3 = CS_FN(lanes_sum)(q3);
    for (cs_intp j = n; j < C; j++) {
        a0 += (double)(g0[j] * s0[j]), a1 += (double)(g1[j] * s1[j]);
        a2 += (double)(g2[j] * s2[j]), a3 += (double)(g3[j] * s3[j]);
    }
    const T d0 = (T)a0, d1 = (T)a1, d2 = (T)a2, d3 = (T)a3;
    /* four calls, not a loop over sp, gp and op as log_softmax_rows4 has:
       with the loop, gcc contracted this function's dot-product tail into
       fused multiply-adds differently, and float64 rows lost the bits of
       backward_row1 at x86-64-v3 and v4 */
    if (C * (cs_intp)sizeof(T) >= CS_BWD_ROW_BYTES) {
        CS_FN(bwd_out_row)(s0, g0, o0, C, d0);
        CS_FN(bwd_out_row)(s1, g1, o1, C, d1);
        CS_FN(bwd_out_row)(s2, g2, o2, C, d2);
        CS_FN(bwd_out_row)(s3, g3, o3, C, d3);
        return;
    }
#pragma omp simd
    for (cs_intp j = 0; j < n; j++) {
        o0[j] = s0[j] * (g0[j] - d0), o1[j] = s1[j] * (g1[j] - d1);
        o2[j] = s2[j] * (g2[j] - d2), o3[j] = s3[j] * (g3[j] - d3);
    }
    for (cs_intp j = n; j < C; j++) {
        o0[j] = s0[j] * (g0[j] - d0), o1[j] = s1[j] * (g1[j] - d1);
        o2[j] = s2[j] * (g2[j] - d2), o3[j] = s3[j] * (g3[j] - d3);
    }
}

/* One row by backward_rows4's arithmetic: the same lanes, chunks and order of
   additions, so the same bits as when the row goes four at a time.  For calls
   that stream their rows from memory (backward_mid). */
CS_INLINE void CS_FN(backward_row1)(const T *s0, const T *g0, T *o0, cs_intp C)
{
    const cs_intp n = C & ~(CS_SUM_VL - 1);
    double q0[CS_SUM_VL];
    for (int l = 0; l < CS_SUM_VL; l++)
        q0[l] = 0.0;
    if (sizeof(T) == 8 || C == 3 * CS_SUM_VL) {
        for (cs_intp j = 0; j < n; j += CS_SUM_VL) {
#pragma omp simd
            for (int l = 0; l < CS_SUM_VL; l++)
                q0[l] += (double)(g0[j + l] * s0[j + l]);
        }
    } else {
        for (cs_intp j0 = 0; j0 < n; j0 += 4 * CS_SUM_VL) {
            const cs_intp j1 = n - j0 > 4 * CS_SUM_VL ? j0 + 4 * CS_SUM_VL : n;
            T f0[CS_SUM_VL];
            for (int l = 0; l < CS_SUM_VL; l++)
                f0[l] = 0;
            for (cs_intp j = j0; j < j1; j += CS_SUM_VL) {
#pragma omp simd
                for (int l = 0; l < CS_SUM_VL; l++)
                    f0[l] += g0[j + l] * s0[j + l];
            }
#pragma omp simd
            for (int l = 0; l < CS_SUM_VL; l++)
                q0[l] += f0[l];
        }
    }
    double a0 = CS_FN(lanes_sum)(q0);
    for (cs_intp j = n; j < C; j++)
        a0 += (double)(g0[j] * s0[j]);
    const T d0 = (T)a0;
#pragma omp simd
    for (cs_intp j = 0; j < C; j++)
        o0[j] = s0[j] * (g0[j] - d0);
}

/* Which of four rows hold an entry above 0 (bit q for row q; a nan is not
   above 0), and one row's output with the general exponential: out of line,
   for they serve only arrays that are not log-softmaxes. */
CS_NOINLINE unsigned CS_FN(rows_above0)(const T *const *lp, cs_intp C)
{
    unsigned mask = 0;
    for (int q = 0; q < CS_MID_ROWS; q++) {
        int pos = 0;
#pragma omp simd reduction(| : pos)
        for (cs_intp j = 0; j < C; j++)
            pos |= lp[q][j] > 0;
        mask |= (unsigned)pos << q;
    }
    return mask;
}

CS_NOINLINE void CS_FN(log_backward_exp_row)(const T *lr, const T *gr, T *o, cs_intp C, T k)
{
#pragma omp simd
    for (cs_intp j = 0; j < C; j++)
        o[j] = gr[j] - EXP(lr[j]) * k;
}

CS_NOINLINE void CS_FN(log_backward_fma_row)(const T *lr, const T *gr, T *o, cs_intp C, T k)
{
#pragma omp simd
    for (cs_intp j = 0; j < C; j++)
        o[j] = gr[j] - EXPNEG_FMA(lr[j]) * k;
}

/* The first pass of log_softmax_backward over a row's entries j0 to j1 (j0
   a multiple of 2 CS_SUM_VL, j1 a multiple of CS_SUM_VL): the sum of g into
   the double lanes q, and in p whether the log-softmax l has an entry above
   0.  Float32 entries go in pairs, g[j + t] + g[j + CS_SUM_VL + t] added in
   float before the lane takes it: one float rounding of a pair's sum, and
   half the conversions and double additions, which otherwise compete with
   the exponentials' multiply-adds for the same pipes.  Every path of
   log_softmax_backward (log_backward_rows4, log_backward_row1,
   log_backward_pipe) sums a row this way, so a row gets the same bits on
   any of them. */
#define CS_LOG_PAIRS (sizeof(T) == 4)
CS_INLINE void CS_FN(log_sum_lanes)(const T *l, const T *g, cs_intp j0, cs_intp j1, double *q, int *p)
{
    cs_intp j = j0;
    for (; CS_LOG_PAIRS && j + 2 * CS_SUM_VL <= j1; j += 2 * CS_SUM_VL) {
        const cs_intp h = j + CS_SUM_VL;
#pragma omp simd
        for (int t = 0; t < CS_SUM_VL; t++) {
            q[t] += g[j + t] + g[h + t];
            p[t] |= (l[j + t] > 0) | (l[h + t] > 0);
        }
    }
    for (; j < j1; j += CS_SUM_VL) {
#pragma omp simd
        for (int t = 0; t < CS_SUM_VL; t++) {
            q[t] += g[j + t];
            p[t] |= l[j + t] > 0;
        }
    }
}

/* The end of a row's first pass: its lanes added by lanes_sum, then the
   entries from n (C rounded down to CS_SUM_VL) on; *pos whether l has an
   entry above 0.  q and p are zeroed for the next row. */
CS_INLINE double CS_FN(log_sum_end)(const T *l, const T *g, cs_intp n, cs_intp C, double *q, int *p, int *pos)
{
    double a = CS_FN(lanes_sum)(q);
    int above = 0;
    for (int t = 0; t < CS_SUM_VL; t++)
        above |= p[t], q[t] = 0.0, p[t] = 0;
    for (cs_intp j = n; j < C; j++) {
        a += g[j];
        above |= l[j] > 0;
    }
    *pos = above;
    return a;
}

/* Four rows of log_softmax_backward, out = g - exp(log s) sum(g) (rows as
   backward_rows4's): one loop takes the four sums of g, each row's lanes
   added by lanes_sum, and a test for an entry above 0 over the four rows;
   then one loop the four outputs with EXPNEG_FMA.  A row holding an entry
   above 0 is not a log-softmax: it takes the general exponential, out of
   line, and its output in the four-row loop goes to a spare row, so that
   the other rows take the same loop, and get the same bits, whatever their
   neighbours.  The horizontal reductions of four rows overlap, and a group's
   test is one branch, not four.  Only where CS_LOG_BWD_NEG: on an AMD Zen 3
   core at x86-64-v3, kernel-only, min of 9 interleaved rounds, ns an entry
   against one row at a time: float32 C = 8 0.79-0.81 against 0.96-1.45,
   C = 16 0.61-0.66 against 0.74-0.76, C = 48 0.52-0.54 against 0.58-0.60,
   C = 64 0.49-0.51 against 0.56-0.62; float64 C = 8 1.52-1.61 against
   1.80-1.93, C = 16 1.48-1.51 against 1.54-1.62, C = 32 1.38-1.41 against
   1.44-1.48, but C = 48 (384 bytes) 1.87 against 1.51, so float64 rows up
   to 256 bytes, and at x86-64-v4 float32 rows too (wider ones take
   log_backward_pipe there).  Rows of 12 and 16 vectors are no faster with
   the width a constant (float32 C = 128 0.55 against 0.52), which
   backward_mid leaves to softmax_backward.  At the baseline level (EXP
   every row) even or slower. */
#define CS_LOG_BWD_MID_BYTES (CS_LOG_PIPE || sizeof(T) == 8 ? 256 : CS_BWD_MID_BYTES)
CS_INLINE void CS_FN(log_backward_rows4)(const T *const *lp, const T *const *gp, T *const *op, cs_intp n, cs_intp C)
{
    const T *l0 = lp[0], *l1 = lp[1], *l2 = lp[2], *l3 = lp[3];
    const T *g0 = gp[0], *g1 = gp[1], *g2 = gp[2], *g3 = gp[3];
    double q0[CS_SUM_VL], q1[CS_SUM_VL], q2[CS_SUM_VL], q3[CS_SUM_VL];
    int p[CS_SUM_VL];
    for (int l = 0; l < CS_SUM_VL; l++)
        q0[l] = q1[l] = q2[l] = q3[l] = 0.0, p[l] = 0;
    /* log_sum_lanes for the four rows in one loop (as four calls of it, one
       row after another, and the test for an entry above 0 taken from
       them: float32 at v4, kernel-only, min of 7, C = 16 0.62 against 0.47
       ns an entry, C = 33 0.62 against 0.51, C = 64 0.37 against 0.33;
       float64 C = 24 0.99 against 0.91) */
    cs_intp j = 0;
    for (; CS_LOG_PAIRS && j + 2 * CS_SUM_VL <= n; j += 2 * CS_SUM_VL) {
        const cs_intp h = j + CS_SUM_VL;
#pragma omp simd
        for (int l = 0; l < CS_SUM_VL; l++) {
            q0[l] += g0[j + l] + g0[h + l], q1[l] += g1[j + l] + g1[h + l];
            q2[l] += g2[j + l] + g2[h + l], q3[l] += g3[j + l] + g3[h + l];
            p[l] |= (l0[j + l] > 0) | (l1[j + l] > 0) | (l2[j + l] > 0) | (l3[j + l] > 0) |
                    (l0[h + l] > 0) | (l1[h + l] > 0) | (l2[h + l] > 0) | (l3[h + l] > 0);
        }
    }
    for (; j < n; j += CS_SUM_VL) {
#pragma omp simd
        for (int l = 0; l < CS_SUM_VL; l++) {
            q0[l] += g0[j + l], q1[l] += g1[j + l], q2[l] += g2[j + l], q3[l] += g3[j + l];
            p[l] |= (l0[j + l] > 0) | (l1[j + l] > 0) | (l2[j + l] > 0) | (l3[j + l] > 0);
        }
    }
    double a0 = CS_FN(lanes_sum)(q0), a1 = CS_FN(lanes_sum)(q1);
    double a2 = CS_FN(lanes_sum)(q2), a3 = CS_FN(lanes_sum)(q3);
    int pos = 0;
    for (int l = 0; l < CS_SUM_VL; l++)
        pos |= p[l];
    for (cs_intp j = n; j < C; j++) {
        a0 += g0[j], a1 += g1[j], a2 += g2[j], a3 += g3[j];
        pos |= (l0[j] > 0) | (l1[j] > 0) | (l2[j] > 0) | (l3[j] > 0);
    }
    const T k[CS_MID_ROWS] = {(T)a0, (T)a1, (T)a2, (T)a3};
    T *o0 = op[0], *o1 = op[1], *o2 = op[2], *o3 = op[3];
    T spare[CS_BWD_MID_BYTES / sizeof(T)];
    unsigned above = 0;
    if (pos) {
        above = CS_FN(rows_above0)(lp, C);
        o0 = above & 1 ? spare : o0, o1 = above & 2 ? spare : o1;
        o2 = above & 4 ? spare : o2, o3 = above & 8 ? spare : o3;
    }
#define CS_LOG_BWD4(j)                                                                           \
    (o0[j] = g0[j] - EXPNEG_FMA(l0[j]) * k[0], o1[j] = g1[j] - EXPNEG_FMA(l1[j]) * k[1],         \
     o2[j] = g2[j] - EXPNEG_FMA(l2[j]) * k[2], o3[j] = g3[j] - EXPNEG_FMA(l3[j]) * k[3])
    /* Whole vectors first.  Where a vector is wider than CS_SUM_VL (float32
       at x86-64-v4), a row's last C % CS_VL entries then go in vectors of
       CS_SUM_VL under a mask: gcc took at most one half vector of them and
       left the rest to scalar exponentials, four rows' worth one by one.  On
       an AMD Zen 4 core, kernel-only, one thread, min of 7 interleaved
       rounds: C = 100 0.386 against 0.444 ns an entry, C = 24 and 33 even
       (softmax_backward's output, cheaper, keeps gcc's way: under a mask C =
       33 took 0.26 against 0.22). */
    const cs_intp m = CS_VL > CS_SUM_VL ? n - n % CS_VL : C;
#pragma omp simd
    for (cs_intp j = 0; j < m; j++)
        CS_LOG_BWD4(j);
    for (cs_intp j0 = m; j0 < C; j0 += CS_SUM_VL) {
#pragma omp simd
        for (cs_intp j = j0; j < j0 + CS_SUM_VL; j++)
            if (j < C)
                CS_LOG_BWD4(j);
    }
#undef CS_LOG_BWD4
    for (int q = 0; above != 0 && q < CS_MID_ROWS; q++)
        if (above >> q & 1)
            CS_FN(log_backward_exp_row)(lp[q], gp[q], op[q], C, k[q]);
}

/* One row by log_backward_rows4's arithmetic (the same bits), for calls that
   stream their rows from memory (backward_mid). */
CS_INLINE void CS_FN(log_backward_row1)(const T *l0, const T *g0, T *o0, cs_intp C)
{
    const cs_intp n = C & ~(CS_SUM_VL - 1);
    double q0[CS_SUM_VL];
    int p[CS_SUM_VL];
    for (int l = 0; l < CS_SUM_VL; l++)
        q0[l] = 0.0, p[l] = 0;
    CS_FN(log_sum_lanes)(l0, g0, 0, n, q0, p);
    int pos;
    const T k = (T)CS_FN(log_sum_end)(l0, g0, n, C, q0, p, &pos);
    if (pos) {
        CS_FN(log_backward_exp_row)(l0, g0, o0, C, k);
        return;
    }
#pragma omp simd
    for (cs_intp j = 0; j < C; j++)
        o0[j] = g0[j] - EXPNEG_FMA(l0[j]) * k;
}

/* Rows of log_softmax_backward past CS_LOG_BWD_MID_BYTES, where the
   exponential is EXPNEG_FMA, in a pipeline: the loop that writes a row's
   output also takes the next row's first pass (log_sum_lanes, a vector pair
   at a time), so that its conversions and additions fill the cycles the
   exponentials leave between their multiply-adds, instead of taking cycles
   of their own; the next row's lines come into L1 meanwhile.  A row gets
   log_backward_row1's bits.  On an AMD Zen 4 core at x86-64-v4,
   kernel-only, one thread, 409600 entries, min of 7 interleaved rounds, ns
   an entry, against the two passes one after the other (four rows at a
   time up to 512 bytes): float32 C = 100 0.34 against 0.39, C = 200 0.30
   against 0.38, C = 1000 0.28 against 0.32, C = 4096 0.27 against 0.36;
   float64 C = 48 0.75 against 0.82, C = 200 0.69 against 0.82, C = 1000
   0.70 against 0.84.  At 256 bytes a row and below, four rows at a time
   stay ahead (float32 C = 48 0.34 against 0.51, C = 64 0.33 against 0.34).
   At x86-64-v3 (16 vector registers) it lost on the same core (float64
   C = 200 1.14 against 1.05, float32 C = 1000 0.52 against 0.38), so it
   is for x86-64-v4 only. */
#define CS_LOG_PIPE (CS_LOG_BWD_NEG && CS_VEC_BYTES >= 64)
#define CS_LOG_PIPE_STEP (CS_LOG_PAIRS ? 2 * CS_SUM_VL : CS_VL)
CS_INLINE void CS_FN(log_backward_pipe)(const T *ls, cs_intp ss, const T *g, cs_intp gs, T *out, cs_intp os,
                                        cs_intp nrows, cs_intp C)
{
    const cs_intp n = C & ~(CS_SUM_VL - 1), m = C - C % CS_LOG_PIPE_STEP;
    double q[CS_SUM_VL];
    int p[CS_SUM_VL];
    for (int t = 0; t < CS_SUM_VL; t++)
        q[t] = 0.0, p[t] = 0;
    CS_FN(log_sum_lanes)(ls, g, 0, n, q, p);
    for (cs_intp i = 0; i < nrows; i++) {
        const T *l0 = ls + i * ss, *g0 = g + i * gs, *l1 = l0 + ss, *g1 = g0 + gs;
        T *o0 = out + i * os;
        int pos;
        const T k = (T)CS_FN(log_sum_end)(l0, g0, n, C, q, p, &pos);
        if (pos || i + 1 == nrows) {
            if (pos)
                CS_FN(log_backward_exp_row)(l0, g0, o0, C, k);
            else
                CS_FN(log_backward_fma_row)(l0, g0, o0, C, k);
            if (i + 1 < nrows)
                CS_FN(log_sum_lanes)(l1, g1, 0, n, q, p);
            continue;
        }
        for (cs_intp j = 0; j < m; j += CS_LOG_PIPE_STEP) {
            CS_FN(log_sum_lanes)(l1, g1, j, j + CS_LOG_PIPE_STEP, q, p);
#pragma omp simd
            for (cs_intp t = j; t < j + CS_LOG_PIPE_STEP; t++)
                o0[t] = g0[t] - EXPNEG_FMA(l0[t]) * k;
        }
        CS_FN(log_sum_lanes)(l1, g1, m, n, q, p);
        /* the last C % CS_LOG_PIPE_STEP entries: under a mask where a vector
           is wider than CS_SUM_VL, as in log_backward_rows4 */
        if (CS_VL > CS_SUM_VL) {
            for (cs_intp j0 = m; j0 < C; j0 += CS_SUM_VL) {
#pragma omp simd
                for (cs_intp t = j0; t < j0 + CS_SUM_VL; t++)
                    if (t < C)
                        o0[t] = g0[t] - EXPNEG_FMA(l0[t]) * k;
            }
        } else {
#pragma omp simd
            for (cs_intp t = m; t < C; t++)
                o0[t] = g0[t] - EXPNEG_FMA(l0[t]) * k;
        }
    }
}

/* Mid-width rows four at a time by f (backward_rows4 or log_backward_rows4),
   given the row's whole vectors n (C rounded down to CS_SUM_VL) and C; n a
   constant for rows of 1, 2, 3, 4, 6 or 8 times CS_SUM_VL entries, and with
   dot (softmax_backward's f) of 12 and 16 times too, and at float32 for rows
   that have such n and a few entries more.  With one (a call that streams
   its rows from memory: see CS_STREAM_BYTES), a row at a time by f1, the
   same arithmetic for one row: four rows read side by side lose when their
   lines come from memory.  On an AMD Zen 4 core at x86-64-v4, two threads,
   kernel-only, medians of 5 interleaved rounds, ns an entry, one row
   against four: softmax_backward float32 at 2.1M entries (8 MiB an array)
   C = 64 0.18 against 0.27, C = 128 0.19 against 0.42; at 8.2M entries
   C = 48 0.34 against 0.39, C = 100 0.32 against 0.66, C = 128 0.32 against
   0.62, float64 C = 32 0.77 against 1.04, C = 64 0.82 against 1.11; but in
   cache (409600 entries) C = 64 0.15 against 0.11. */
CS_INLINE void CS_FN(backward_mid)(const T *s, cs_intp ss, const T *g, cs_intp gs,
                                   T *out, cs_intp os, cs_intp nrows, cs_intp C,
                                   void (*f)(const T *const *, const T *const *, T *const *, cs_intp, cs_intp),
                                   void (*f1)(const T *, const T *, T *, cs_intp), int dot, int one)
{
    if (one) {
        for (cs_intp i = 0; i < nrows; i++)
            f1(s + i * ss, g + i * gs, out + i * os, C);
        return;
    }
    const T *sp[CS_MID_ROWS], *gp[CS_MID_ROWS];
    T *op[CS_MID_ROWS];
    cs_intp r = 0;
#define CS_BWD_GROUPS(N, CC)                                                               \
    for (; r + CS_MID_ROWS <= nrows; r += CS_MID_ROWS) {                                   \
        for (int q = 0; q < CS_MID_ROWS; q++)                                              \
            sp[q] = s + (r + q) * ss, gp[q] = g + (r + q) * gs, op[q] = out + (r + q) * os; \
        f(sp, gp, op, N, CC);                                                              \
    }
#define CS_BWD_LOOP(W)             \
    if (C == (W)) {                \
        CS_BWD_GROUPS(W, W)        \
    } else {                       \
        CS_BWD_GROUPS(W, C)        \
    }
#define CS_BWD_ANY(W) CS_BWD_GROUPS(n, C)
    /* 12 and 16 times CS_SUM_VL too: the float32 dot product's chunks
       unrolled (AMD Zen 3, v3, NumPy's 16-byte offset: C = 96 0.22-0.25
       against 0.27-0.30 ns an entry, C = 128 0.23 against 0.26).
       softmax_backward's float32 rows of whole vectors and a few entries
       more take their whole vectors as a constant too, the rest after them
       (rows of whole vectors keep a code of their own: with the loop over
       the rest beside, C = 24, 48 and 96 were 4-10 % slower).  Kernel-only,
       AMD Zen 4, x86-64-v4, one thread, ns an entry: C = 17 0.21 against
       0.33, C = 33 0.17-0.18 against 0.24, C = 50 0.20 against 0.23, C = 100
       0.19 against 0.21-0.22.  Not log_softmax_backward (C = 16 and 24 3-7 %
       slower with the extra code, 17-50 faster), nor float64, whose last
       entries' products go into the sum in double, where a fused multiply-
       add may or may not be formed: its two builds gave the same bits in
       their one-row and four-row paths, but not the same as each other. */
    const cs_intp n = C & ~(CS_SUM_VL - 1), w = dot && sizeof(T) == 4 ? n : C;
    if (dot && w == 12 * CS_SUM_VL) {
        CS_BWD_LOOP(12 * CS_SUM_VL)
    } else if (dot && w == 16 * CS_SUM_VL) {
        CS_BWD_LOOP(16 * CS_SUM_VL)
    } else {
        CS_MID_WIDTHS_VL(CS_BWD_LOOP, CS_BWD_ANY, w, CS_SUM_VL);
    }
#undef CS_BWD_GROUPS
#undef CS_BWD_LOOP
#undef CS_BWD_ANY
    if (r == nrows)
        return;
    T spare[CS_BWD_MID_BYTES / sizeof(T)];
    for (int q = 0; q < CS_MID_ROWS; q++) {
        cs_intp i = r + q < nrows ? r + q : r;
        sp[q] = s + i * ss, gp[q] = g + i * gs;
        op[q] = r + q < nrows ? out + i * os : spare;
    }
    f(sp, gp, op, n, C);
}

/* <g, s> over a wide row.  In float32, CS_DOT_LANES lanes of float take
   four terms each (a chunk of CS_DOT_CHUNK), and the chunks' lanes are added
   in double: each lane's float sum of four terms is within 2 eps of the sum
   of their magnitudes, and the float-to-double conversions, one a chunk
   instead of one a term, no longer bound the loop (float32 at C = 1000 on an
   AMD Zen 3 core: 0.36 against 0.27 ns an entry, with products in float and
   sums in double).  At x86-64-v4 under GCC the loop runs on 32-byte
   vectors, out of line (a function may not be inlined into one of another
   vector width): the same lanes in the same order, so the same bits, but
   rows 16 bytes past a line, as NumPy places them, cost one 64-byte load
   astride two lines per vector, and the 32-byte loads are cheaper there
   (AMD Zen 4, kernel-only, one thread, in cache, ns an entry of the whole
   softmax_backward: float32 C = 768 0.149 against 0.164, C = 1000 0.146
   against 0.160, C = 2048 0.137 against 0.146, C = 4096 0.166 against
   0.170; float64 C = 72 0.332 against 0.367, C = 256 0.293 against 0.341,
   C = 1000 0.271 against 0.288; rows 48 bytes past alike, rows on a line
   even; out of line alone, at 64 bytes, 1-4 % slower). */
#define CS_DOT_LANES 16
#define CS_DOT_CHUNK (4 * CS_DOT_LANES)
#if CS_VEC_BYTES >= 64 && defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, target("prefer-vector-width=256"))) static double CS_FN(row_dot)(const T *g, const T *s,
                                                                                           cs_intp C)
#else
static inline double CS_FN(row_dot)(const T *g, const T *s, cs_intp C)
#endif
{
    double dl[CS_DOT_LANES] = {0};
    cs_intp j = 0;
    /* float64: the lanes in double from the start (four vectors' worth of
       independent chains at x86-64-v3, not one) */
    for (; sizeof(T) == 8 && j + CS_DOT_LANES <= C; j += CS_DOT_LANES) {
#pragma omp simd
        for (int l = 0; l < CS_DOT_LANES; l++)
            dl[l] += (double)g[j + l] * (double)s[j + l];
    }
    for (; sizeof(T) == 4 && j + CS_DOT_CHUNK <= C; j += CS_DOT_CHUNK) {
        T fl[CS_DOT_LANES] = {0};
        for (cs_intp k = 0; k < CS_DOT_CHUNK; k += CS_DOT_LANES) {
#pragma omp simd
            for (int l = 0; l < CS_DOT_LANES; l++)
                fl[l] += g[j + k + l] * s[j + k + l];
        }
#pragma omp simd
        for (int l = 0; l < CS_DOT_LANES; l++)
            dl[l] += fl[l];
    }
    for (; j + CS_DOT_LANES <= C; j += CS_DOT_LANES) {
#pragma omp simd
        for (int l = 0; l < CS_DOT_LANES; l++)
            dl[l] += (double)(g[j + l] * s[j + l]);
    }
    for (int l = 0; j + l < C; l++)
        dl[l] += (double)(g[j + l] * s[j + l]);
    for (int l = 0; l < CS_DOT_LANES / 2; l++)
        dl[l] += dl[l + CS_DOT_LANES / 2];
    return ((dl[0] + dl[1]) + (dl[2] + dl[3])) + ((dl[4] + dl[5]) + (dl[6] + dl[7]));
}

/* The entries of a row of n before the first 64-byte line boundary of its
   inputs q and r, where the two lie as far into their lines; else 0.  An
   elementwise loop that takes these first runs its loads on whole lines, and
   its stores too where the output lies as far into its lines: NumPy places
   large arrays 16 bytes past a line, and a vector load or store astride two
   lines costs two.  softmax_backward's output pass, its three arrays 16
   bytes past a line, kernel-only, AMD Zen 4, x86-64-v4, one thread, in
   cache, ns an entry: float32 C = 256 0.164 against 0.182, C = 1000 0.161
   against 0.175, C = 4096 0.172 against 0.201; float64 C = 1000 0.290
   against 0.319, C = 2048 0.343 against 0.399; two threads float32 C = 4096
   0.087 against 0.102; x86-64-v3 C = 1000 0.150 against 0.162.  With the
   output at another offset (a fresh output, of another allocation than the
   inputs), loads on whole lines are ahead of stores on whole lines (medians
   of 5 interleaved rounds, inputs 16 bytes past a line, output on a line:
   float32 C = 256 0.176 against 0.195, C = 1000 0.178 against 0.183, C =
   4096 0.173 against 0.205, output 48 bytes past: C = 1000 0.174 against
   0.194, C = 4096 0.190 against 0.222; float64 C = 512 0.324 against 0.346,
   C = 4096 0.396 against 0.438, but C = 256 0.356 against 0.347 (min);
   x86-64-v3 float32 C = 1000 0.167 against 0.176, C = 4096 0.175 against
   0.184).  Not for the dot product before the output pass: its lanes would
   then depend on where the row lies, and so would its bits. */
static inline cs_intp CS_FN(line_head)(const T *q, const T *r, cs_intp n)
{
    const uintptr_t a = (uintptr_t)q & 63;
    if (((uintptr_t)r & 63) != a || a % sizeof(T) != 0)
        return 0;
    cs_intp h = (cs_intp)(((64 - a) & 63) / sizeof(T));
    return h < n ? h : n;
}

/* Rows over CS_BWD_BACK_BYTES an array (their three arrays then near or past
   the 32-48 KiB of L1 data cache of current x86 cores) take their output pass
   backwards, a block of CS_BWD_BACK_BYTES / 2 at a time: the end of the row,
   read last by the dot product, is still in L1 when the output pass begins
   there, where going forwards it starts from lines that have left.  The
   output is elementwise: the order changes no bit.  On an AMD Zen 4 core at
   x86-64-v4, kernel-only, one thread, medians of 7-9 interleaved rounds, ns
   an entry, against forwards: float32 C = 4096 0.204 against 0.216, C =
   10000 0.202-0.207 against 0.208-0.236 (two runs), C = 32768 even (a row
   of s and g fills L1 four times over); float64 C = 2048 0.403-0.405
   against 0.441-0.444, C = 4096 0.417 against 0.469, C = 10000 0.414
   against 0.426; float32 C = 2048 (inside the bound) even.  Out of line:
   inlined, even behind a test, it cost the narrower rows' plain loop
   (float32 C = 200 0.19-0.20 against 0.18). */
#define CS_BWD_BACK_BYTES 8192
CS_NOINLINE void CS_FN(backward_out_back)(const T *sr, const T *gr, T *o, cs_intp C, T d)
{
    const cs_intp B = CS_BWD_BACK_BYTES / 2 / (cs_intp)sizeof(T);
    const cs_intp h = CS_FN(line_head)(sr, gr, C);
    for (cs_intp j0 = h + (C - h - 1) / B * B; j0 >= h; j0 -= B) {
        const cs_intp j1 = C - j0 > B ? j0 + B : C;
#pragma omp simd
        for (cs_intp j = j0; j < j1; j++)
            o[j] = sr[j] * (gr[j] - d);
    }
#pragma omp simd
    for (cs_intp j = 0; j < h; j++)
        o[j] = sr[j] * (gr[j] - d);
}

/* Rows of CS_BWD_REG_MIN to CS_BWD_REG_WIDE float32 entries at x86-64-v4 go
   one at a time, held in vector registers (the level has 32): the dot
   product loads s and g once and the output is computed from the registers,
   where the two-pass loops read the row again from L1, about a fifth of
   their time at these widths.  A row is its K = C / 16 whole vectors and,
   unless C is a multiple of 16, its last 16 entries as one more vector,
   overlapping the one before: in the dot, that vector's lanes already
   counted are masked off.  Up to CS_BWD_REGS whole vectors are all held;
   in wider rows the first CS_BWD_HELD, the rest read twice (holding them
   all, the compiler's spills and reloads cost what they save).  The dot
   takes the products by chunks of up to four vectors, in order (the last
   vector in the last chunk), each chunk summed in float lanes (at most four
   terms a lane, as row_dot's chunks) and then added into double lanes; the
   16 double lanes are folded to 8 and added in a tree.  A row's bits depend
   on its width alone, not on the call, the split between threads or where
   the row lies.  The last vector's output is stored after the others, over
   the entries they share, with the same values; every load of a vector
   comes before its store, so the output may be s or g.  Kernel-only, AMD
   Zen 4, one thread, 409600 entries in cache, the arrays 16 bytes past a
   line, min of 3 interleaved rounds, ns an entry, against the four-row and
   wide-row paths: C = 37 0.200 against 0.215, C = 40 0.191 against 0.248,
   C = 48 0.155 against 0.187, C = 64 0.144 against 0.180, C = 100 0.139
   against 0.193, C = 128 0.152 against 0.175, C = 200 0.142 against 0.180,
   C = 224 0.143 against 0.177, C = 232 0.151 against 0.174, C = 256 0.159
   against 0.170, C = 300 0.147 against 0.158, C = 384 0.155 against 0.165,
   C = 512 0.156 against 0.171, C = 640 0.170 against 0.174; wider rows
   gain nothing (C = 768 even, C = 1000 0.169 against 0.166), nor do
   narrower ones, which do not amortise the reduction (C = 33 0.224 against
   0.169, C = 36 0.190 against 0.185).  Rows held whole add each chunk's
   halves into the double lanes by one conversion of 8 floats (CS_CVT_D8;
   GCC's generic conversion was two of 4 and a shuffle): C = 37 0.167
   against 0.197, C = 40 0.155 against 0.182, C = 48 0.140 against 0.152,
   C = 56 0.136 against 0.148, C = 64 0.134 against 0.139, C = 128 0.141
   against 0.144 (same bits).  Wider rows keep the generic one: with
   CS_CVT_D8 there too, C = 300-512 were 2-6 % faster but C = 520-640 5-7 %
   slower.
   With the three arrays 16 bytes past a line, as NumPy places them, every
   load and store here is astride two lines; with all three on lines the
   same calls take about a fifth less (C = 256 0.131 against 0.162 ns an
   entry, 409600 entries from L3).  Taking such rows by whole lines instead
   (the dot's lanes gathered by line and each chunk turned back into the
   vector's order by one permute, so the same bits; the row's first and
   last 16 entries loaded and stored unaligned over the lines' ends) was
   measured and left (same conditions, ns an entry, against this code):
   C = 128 0.152 against 0.160, C = 256 0.154 against 0.162, C = 384 0.145
   against 0.156, C = 448 0.141 against 0.154, C = 640 0.160 against 0.170,
   but C = 224 0.151 against 0.143, C = 512 0.163 against 0.158, C = 100
   0.157 against 0.142 and C = 64 0.195 against 0.158: the permutes, two
   loads and two stores more a row cost what the whole lines save. */
#if CS_TR && CS_VEC_BYTES >= 64
#define CS_BWD_REGS 14
#define CS_BWD_REG_MIN 37
#define CS_BWD_REG_MAX (16 * CS_BWD_REGS)
#define CS_BWD_HELD 12
#define CS_BWD_REG_WIDE 640
/* The total of the 8 lanes of *v: lanes 4 apart added, then 2, then 1
   (through a pointer: a vector argument of 64 bytes has an ABI of its own
   where AVX-512 is off). */
CS_INLINE double CS_FN(d8_sum)(const cs_d8 *v)
{
    cs_d8 a = *v;
    a = a + CS_SHUF(a, a, 4, 5, 6, 7, 0, 1, 2, 3);
    a = a + CS_SHUF(a, a, 2, 3, 0, 1, 6, 7, 4, 5);
    a = a + CS_SHUF(a, a, 1, 0, 3, 2, 5, 4, 7, 6);
    return a[0];
}
/* The first n vectors of the rows a and b (16 entries each) into A and B,
   and their last 16 entries into Ae and Be: a row of C >= 16 entries held
   in vector registers (after inlining, n a constant). */
CS_INLINE void CS_FN(regs_load)(const float *a, const float *b, cs_intp n, cs_intp C, cs_f16 *A, cs_f16 *B,
                                cs_f16 *Ae, cs_f16 *Be)
{
    for (cs_intp k = 0; k < n; k++) {
        memcpy(&A[k], a + 16 * k, sizeof A[k]);
        memcpy(&B[k], b + 16 * k, sizeof B[k]);
    }
    memcpy(Ae, a + C - 16, sizeof *Ae);
    memcpy(Be, b + C - 16, sizeof *Be);
}

CS_INLINE void CS_FN(backward_regs)(const T *s0, const T *g0, T *o0, cs_intp C, cs_intp K, int R)
{
    /* K = C / 16 whole vectors, the first R of them held: R = K, or
       CS_BWD_HELD (a multiple of 4) of more; R a constant where inlined, and
       K too where R = K */
    const float *s = (const float *)s0, *g = (const float *)g0;
    float *o = (float *)o0;
    cs_f16 S[CS_BWD_REGS], G[CS_BWD_REGS], Se, Ge, f;
    CS_FN(regs_load)(s, g, R, C, S, G, &Se, &Ge);
    const int t = (int)(C - 16 * K);     /* entries past the whole vectors */
    /* the products by chunks of up to four vectors, in order (the last
       vector in the last chunk), each chunk summed in float lanes, then in
       double lanes */
    cs_d8 lo = {0}, hi = {0};
    cs_intp k = 0;
    /* (the conversion: see above; R < K only in wide rows) */
#define CS_BWD_CHUNK_END()                                                            \
    do {                                                                              \
        const cs_f8 fl_ = CS_SHUF(f, f, 0, 1, 2, 3, 4, 5, 6, 7);                      \
        const cs_f8 fh_ = CS_SHUF(f, f, 8, 9, 10, 11, 12, 13, 14, 15);                \
        if (R < K) {                                                                  \
            lo += __builtin_convertvector(fl_, cs_d8);                                \
            hi += __builtin_convertvector(fh_, cs_d8);                                \
        } else {                                                                      \
            lo += CS_CVT_D8(fl_);                                                     \
            hi += CS_CVT_D8(fh_);                                                     \
        }                                                                             \
    } while (0)
    for (; k + 4 <= R; k += 4) {
        f = G[k] * S[k];
        for (int q = 1; q < 4; q++)
            f += G[k + q] * S[k + q];
        CS_BWD_CHUNK_END();
    }
    f = (cs_f16){0};
    for (int q = (int)k; q < R; q++)                /* (R = K) its last vectors */
        f += G[q] * S[q];
    for (; k + 4 <= K; k += 4) {                   /* (R < K) those not held */
        for (int q = 0; q < 4; q++) {
            cs_f16 a, b;
            memcpy(&a, s + 16 * (k + q), sizeof a);
            memcpy(&b, g + 16 * (k + q), sizeof b);
            f += b * a;
        }
        CS_BWD_CHUNK_END();
        f = (cs_f16){0};
    }
    for (cs_intp q = k > R ? k : R; q < K; q++) {
        cs_f16 a, b;
        memcpy(&a, s + 16 * q, sizeof a);
        memcpy(&b, g + 16 * q, sizeof b);
        f += b * a;
    }
    if (t > 0) {
        /* lanes 16 - t and on: the row's last t entries (+0 elsewhere,
           which leaves a lane's sum as it is: a sum from +0 is never -0) */
        const cs_i16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        f += (cs_f16)((cs_i16)(Ge * Se) & (lane >= 16 - t));
    }
    if (k < K || t > 0)
        CS_BWD_CHUNK_END();
#undef CS_BWD_CHUNK_END
    cs_d8 a = lo + hi;
    a = a + CS_SHUF(a, a, 1, 0, 3, 2, 5, 4, 7, 6);
    a = a + CS_SHUF(a, a, 2, 3, 0, 1, 6, 7, 4, 5);
    a = a + CS_SHUF(a, a, 4, 5, 6, 7, 0, 1, 2, 3);
    const float d = (float)a[0];
    const cs_f16 dv = {d, d, d, d, d, d, d, d, d, d, d, d, d, d, d, d};
    for (int q = 0; q < R; q++) {
        cs_f16 v = S[q] * (G[q] - dv);
        memcpy(o + 16 * q, &v, sizeof v);
    }
    for (cs_intp q = R; q < K; q++) {
        cs_f16 a, b;
        memcpy(&a, s + 16 * q, sizeof a);
        memcpy(&b, g + 16 * q, sizeof b);
        cs_f16 v = a * (b - dv);
        memcpy(o + 16 * q, &v, sizeof v);
    }
    if (t > 0) {
        cs_f16 v = Se * (Ge - dv);
        memcpy(o + C - 16, &v, sizeof v);
    }
}
#endif

/* out = s * (g - <g, s>): float32 rows of CS_BWD_REG_MIN to CS_BWD_REG_WIDE
   entries at x86-64-v4 by backward_regs; otherwise narrow rows by blocks,
   mid-width rows four at a time (one at a time in a call that streams), wide
   rows by row_dot and an output pass (the figures of backward_mid and
   line_head at v4 for the widths backward_regs now takes were measured
   before it). */
static void CS_FN(softmax_backward_block)(const T *s, cs_intp ss, const T *g, cs_intp gs,
                                         T *out, cs_intp os, cs_intp nrows, cs_intp C, int stream)
{
#if CS_TR && CS_VEC_BYTES >= 64
    if (sizeof(T) == 4 && C >= CS_BWD_REG_MIN && C <= CS_BWD_REG_WIDE) {
        if (C > CS_BWD_REG_MAX) {
            for (cs_intp i = 0; i < nrows; i++)
                CS_FN(backward_regs)(s + i * ss, g + i * gs, out + i * os, C, C / 16, CS_BWD_HELD);
            return;
        }
        switch (C / 16) {   /* the vectors held, a constant in each case */
#define CS_BWD_REG_ROWS(K)                                                      \
    case K:                                                                     \
        for (cs_intp i = 0; i < nrows; i++)                                     \
            CS_FN(backward_regs)(s + i * ss, g + i * gs, out + i * os, C, K, K); \
        return;
            CS_BWD_REG_ROWS(2) CS_BWD_REG_ROWS(3) CS_BWD_REG_ROWS(4) CS_BWD_REG_ROWS(5) CS_BWD_REG_ROWS(6)
            CS_BWD_REG_ROWS(7) CS_BWD_REG_ROWS(8) CS_BWD_REG_ROWS(9) CS_BWD_REG_ROWS(10) CS_BWD_REG_ROWS(11)
            CS_BWD_REG_ROWS(12) CS_BWD_REG_ROWS(13) CS_BWD_REG_ROWS(14)
#undef CS_BWD_REG_ROWS
        }
    }
#endif
    if (C < CS_BWD_NARROW) {
        CS_FN(backward_narrow)(s, ss, g, gs, out, os, nrows, C, 0);
        return;
    }
    if (C * (cs_intp)sizeof(T) <= CS_BWD_MID_BYTES) {
        CS_FN(backward_mid)(s, ss, g, gs, out, os, nrows, C, CS_FN(backward_rows4), CS_FN(backward_row1), 1,
                            stream);
        return;
    }
    for (cs_intp i = 0; i < nrows; i++) {
        const T *sr = s + i * ss, *gr = g + i * gs;
        T *o = out + i * os;
        T d = (T)CS_FN(row_dot)(gr, sr, C);
        if (C * (cs_intp)sizeof(T) > CS_BWD_BACK_BYTES) {
            CS_FN(backward_out_back)(sr, gr, o, C, d);
            continue;
        }
        const cs_intp h = CS_FN(line_head)(sr, gr, C);
#pragma omp simd
        for (cs_intp j = 0; j < h; j++)
            o[j] = sr[j] * (gr[j] - d);
#pragma omp simd
        for (cs_intp j = h; j < C; j++)
            o[j] = sr[j] * (gr[j] - d);
    }
}

/* The sum of g over W entries, in double, and in *above whether l holds an
   entry above 0: tested only where CS_LOG_BWD_NEG (elsewhere every row takes
   EXP, and *above is 0).  Always inlined: W is a constant where the caller's
   is. */
CS_INLINE double CS_FN(log_backward_sum)(const T *lr, const T *gr, cs_intp W, int *above)
{
    double sg = 0.0;
    int pos = 0;
    if (CS_LOG_BWD_NEG) {
#pragma omp simd reduction(+ : sg) reduction(| : pos)
        for (cs_intp j = 0; j < W; j++) {
            sg += gr[j];
            pos |= lr[j] > 0;
        }
    } else {
#pragma omp simd reduction(+ : sg)
        for (cs_intp j = 0; j < W; j++)
            sg += gr[j];
    }
    *above = pos;
    return sg;
}

/* One row of log_softmax_backward: out = g - exp(log s) sum(g), the
   exponential EXPNEG_FMA unless the row has an entry above 0 (see
   CS_LOG_BWD_NEG).  Always inlined: W is a constant where the caller's is. */
CS_INLINE void CS_FN(log_backward_row)(const T *lr, const T *gr, T *o, cs_intp W)
{
    int pos;
    T k = (T)CS_FN(log_backward_sum)(lr, gr, W, &pos);
    if (CS_LOG_BWD_NEG && !pos) {
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            o[j] = gr[j] - EXPNEG_FMA(lr[j]) * k;
    } else {
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            o[j] = gr[j] - EXP(lr[j]) * k;
    }
}

/* Rows of CS_LOG_REG_MIN to CS_LOG_REG_MAX float32 entries at x86-64-v4
   go one at a time, held in vector registers, as backward_regs takes
   softmax_backward's: the sum of g and the test for an entry above 0 load
   l and g once, and the output is computed from the registers.  A row is
   its K = C / 16 whole vectors and, unless C is a multiple of 16, its last
   16 entries as one more vector, overlapping the one before (its lanes
   already counted are masked off the sum).  The sum takes each vector's
   two halves added in float, then added into 8 double lanes, in order, and
   the lanes added in a tree (log_sum_lanes and lanes_sum: the same bits as
   the other paths where C is a multiple of 8).  The exponential is
   cs_expneg_fma_f32 written for whole vectors (the same operations, the
   same bits).  A row holding an entry above 0 takes log_backward_exp_row.
   The last vector's output is stored after the others, over the entries
   they share, with the same values; every load comes before any store, so
   the output may be l or g.  A row's bits depend on its width alone.
   Kernel-only, AMD Zen 4, one thread, 409600 entries in cache, the arrays
   16 bytes past a line, log-softmax inputs, min of 3 interleaved rounds, ns
   an entry, against the four-row path (to 64 entries) and the pipeline:
   C = 17 0.66 against 0.72, C = 20 0.56 against 0.64, C = 28 0.40 against
   0.61, C = 31 0.36 against 0.79, C = 32 0.35 against 0.36, C = 33 0.45
   against 0.52, C = 40 0.37 against 0.45, C = 48 0.31 against 0.35, C = 64
   0.29 against 0.33, C = 72 0.31 against 0.37, C = 100 0.31 against 0.34,
   C = 128 0.28 against 0.30, C = 150 0.30 against 0.35, C = 159 0.28
   against 0.39.  Rows of 16 go four at a time (log_backward_regs4): 0.36
   against 0.47 (one at a time, 0.48).  C = 24 too: on that AMD core the
   four-row path, which shares the test for an entry above 0 and has the
   width as a constant, was a little faster (0.45 against 0.47), but on an
   Intel Xeon (family 6 model 207), interleaved, the call took 0.68-0.73 of
   its time this way (0.47-0.51 against 0.67-0.74 ns an entry, one thread;
   0.68-0.78 on two), wherever the arrays lay.  Not past 159, where the
   ten or more vectors of l and g no longer fit beside the exponential's
   (C = 160 even, C = 192 0.34 against 0.29, C = 256 0.38 against 0.28). */
#if CS_TR && CS_VEC_BYTES >= 64
/* a vector's two halves added in float, as 8 doubles (log_sum_lanes's pairs) */
#define CS_PAIRS_D8(v) CS_CVT_D8(CS_SHUF(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + CS_SHUF(v, v, 8, 9, 10, 11, 12, 13, 14, 15))
/* every lane of the int vector a set to the OR of its lanes */
#define CS_OR_LANES(a)                                                                 \
    do {                                                                               \
        (a) |= CS_SHUF(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);   \
        (a) |= CS_SHUF(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);   \
        (a) |= CS_SHUF(a, a, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);   \
        (a) |= CS_SHUF(a, a, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);   \
    } while (0)
#define CS_LOG_REG_MIN 16
#define CS_LOG_REG_MAX 159
CS_INLINE void CS_FN(expneg_fma_f16)(const cs_f16 *xp, cs_f16 *yp)
{
    /* (through pointers: a vector argument of 64 bytes has an ABI of its
       own where AVX-512 is off, as in the v4-kernels-for-v3 test build) */
    const cs_f16 x = *xp, zero = {0};
    const cs_f16 l2e = zero + 0x1.715476p0f, shift = zero + 0x1.8p23f;
    const cs_f16 ln2 = zero - CS_LN2_F32, ln2lo = zero - CS_LN2_LO_F32;
    /* the range reduction's multiply-adds fused, as the scalar function's
       fmaf: exact whatever the compiler contracts */
    cs_f16 z, r;
    CS_FMA16(z, x, l2e, shift);
    const cs_f16 kd = z - shift;
    CS_FMA16(r, kd, ln2, x);
    CS_FMA16(r, kd, ln2lo, r);
    cs_f16 q = CS_EXPNEG_Q_F32(r);
    /* 2^k from z's low bits, in unsigned ints: far below -87.5 the sum
       leaves the int range (such lanes are set to 0 below) */
    cs_f16 scale = (cs_f16)(((cs_u16)z << 23) + 0x3f800000U);
    cs_f16 y = (q * r + 1.0f) * scale;
    *yp = (cs_f16)((cs_i16)y & ~(x < -87.5f));
}

/* One row (see above): 0 when its output is written; 1 when it holds an
   entry above 0, its sum in *ka (nothing written). */
CS_INLINE int CS_FN(log_backward_regs)(const T *l0, const T *g0, T *o0, cs_intp C, cs_intp K, T *ka)
{
    const float *l = (const float *)l0, *g = (const float *)g0;
    float *o = (float *)o0;
    cs_f16 L[CS_LOG_REG_MAX / 16], G[CS_LOG_REG_MAX / 16], Le, Ge;
    CS_FN(regs_load)(l, g, K, C, L, G, &Le, &Ge);
    const int t = (int)(C - 16 * K);     /* entries past the whole vectors */
    cs_d8 q = {0};
    cs_i16 above = {0};
    for (cs_intp k = 0; k < K; k++) {
        q += CS_PAIRS_D8(G[k]);
        above |= L[k] > 0;
    }
    if (t > 0) {
        /* lanes 16 - t and on: the row's last t entries (+0 elsewhere) */
        const cs_i16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        const cs_f16 v = (cs_f16)((cs_i16)Ge & (lane >= 16 - t));
        q += CS_PAIRS_D8(v);
        above |= Le > 0;
    }
    const float k = (float)CS_FN(d8_sum)(&q);
    CS_OR_LANES(above);
    if (above[0]) {
        *ka = (T)k;
        return 1;
    }
    const cs_f16 kv = {k, k, k, k, k, k, k, k, k, k, k, k, k, k, k, k};
    for (cs_intp j = 0; j < K; j++) {
        cs_f16 e;
        CS_FN(expneg_fma_f16)(&L[j], &e);
        const cs_f16 v = G[j] - e * kv;
        memcpy(o + 16 * j, &v, sizeof v);
    }
    if (t > 0) {
        cs_f16 e;
        CS_FN(expneg_fma_f16)(&Le, &e);
        const cs_f16 v = Ge - e * kv;
        memcpy(o + C - 16, &v, sizeof v);
    }
    return 0;
}

/* Four rows of one vector each (C = 16) by log_backward_regs's
   arithmetic (the same bits): one test for an entry above 0 over the four
   (1 returned, nothing written, when a row has one) and their sums'
   trees side by side in shared vectors. */
CS_INLINE int CS_FN(log_backward_regs4)(const T *l0, cs_intp ss, const T *g0, cs_intp gs, T *o0, cs_intp os)
{
    const float *l = (const float *)l0, *g = (const float *)g0;
    float *o = (float *)o0;
    cs_f16 L[4], G[4];
    for (int r = 0; r < 4; r++) {
        memcpy(&L[r], l + r * ss, sizeof L[r]);
        memcpy(&G[r], g + r * gs, sizeof G[r]);
    }
    cs_i16 above = (L[0] > 0) | (L[1] > 0) | (L[2] > 0) | (L[3] > 0);
    CS_OR_LANES(above);
    if (above[0])
        return 1;
    cs_d8 q[4];
    for (int r = 0; r < 4; r++) {
        q[r] = (cs_d8){0};    /* from +0, as log_backward_regs's: -0 lanes sum to +0 */
        q[r] += CS_PAIRS_D8(G[r]);
    }
    /* lanes_sum's halvings, two rows to a vector and then four */
    const cs_d8 x01 = CS_SHUF(q[0], q[1], 0, 1, 2, 3, 8, 9, 10, 11) + CS_SHUF(q[0], q[1], 4, 5, 6, 7, 12, 13, 14, 15);
    const cs_d8 x23 = CS_SHUF(q[2], q[3], 0, 1, 2, 3, 8, 9, 10, 11) + CS_SHUF(q[2], q[3], 4, 5, 6, 7, 12, 13, 14, 15);
    cs_d8 y = CS_SHUF(x01, x23, 0, 1, 4, 5, 8, 9, 12, 13) + CS_SHUF(x01, x23, 2, 3, 6, 7, 10, 11, 14, 15);
    y = y + CS_SHUF(y, y, 1, 0, 3, 2, 5, 4, 7, 6);     /* row r's sum in lane 2 r */
    const cs_f8 k = __builtin_convertvector(y, cs_f8);
    cs_f16 kv[4];
    kv[0] = CS_SHUF(k, k, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    kv[1] = CS_SHUF(k, k, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2);
    kv[2] = CS_SHUF(k, k, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4);
    kv[3] = CS_SHUF(k, k, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6);
    for (int r = 0; r < 4; r++) {
        cs_f16 e;
        CS_FN(expneg_fma_f16)(&L[r], &e);
        const cs_f16 v = G[r] - e * kv[r];
        memcpy(o + r * os, &v, sizeof v);
    }
    return 0;
}

/* Rows by log_backward_regs, K whole vectors each (rows of 16 four at a
   time by log_backward_regs4, a group holding an entry above 0 one at a
   time); those it leaves (an entry above 0) by log_backward_exp_row after
   each batch of up to 64: a call in the row loop would make the compiler
   reload the exponential's constants every row. */
CS_INLINE void CS_FN(log_regs_rows)(const T *ls, cs_intp ss, const T *g, cs_intp gs, T *out, cs_intp os,
                                    cs_intp nrows, cs_intp C, cs_intp K)
{
    for (cs_intp i0 = 0; i0 < nrows; i0 += 64) {
        const cs_intp i1 = nrows - i0 < 64 ? nrows : i0 + 64;
        cs_intp left[64];
        T ks[64];
        int nl = 0;
        cs_intp i = i0;
        for (; K == 1 && C == 16 && i + 4 <= i1; i += 4) {
            if (!CS_FN(log_backward_regs4)(ls + i * ss, ss, g + i * gs, gs, out + i * os, os))
                continue;
            for (cs_intp j = i; j < i + 4; j++)
                if (CS_FN(log_backward_regs)(ls + j * ss, g + j * gs, out + j * os, C, K, &ks[nl]))
                    left[nl++] = j;
        }
        for (; i < i1; i++) {
            if (CS_FN(log_backward_regs)(ls + i * ss, g + i * gs, out + i * os, C, K, &ks[nl]))
                left[nl++] = i;
        }
        for (int a = 0; a < nl; a++) {
            const cs_intp i = left[a];
            CS_FN(log_backward_exp_row)(ls + i * ss, g + i * gs, out + i * os, C, ks[a]);
        }
    }
}
#endif

/* out = g - exp(log_s) * sum(g) */
static void CS_FN(log_softmax_backward_block)(const T *ls, cs_intp ss, const T *g, cs_intp gs,
                                             T *out, cs_intp os, cs_intp nrows, cs_intp C, int stream)
{
    /* Narrow rows take the narrow block, except rows of one or two whole
       vectors at x86-64-v3 (on an AMD Zen 3 core, kernel-only: float32 at
       C = 8 0.95 against 1.79 ns an entry for the narrow block, float64 at
       C = 8 1.95 against 3.18).  Where the exponential is EXPNEG_FMA, those
       and the wider rows up to CS_LOG_BWD_MID_BYTES go four at a time
       (log_backward_rows4), and at x86-64-v4 the rest in the pipeline
       (log_backward_pipe); the others row by row.  Four at a time and row
       by row, a row of whole vectors has the width a constant (CS_MID_WIDTHS; float32 at
       x86-64-v3, row by row: C = 16 0.79 against 1.05 ns an entry, C = 24
       0.69 against 0.84, C = 64 0.58 against 0.65; float64 no slower; four
       at a time, C = 8 0.80 against 1.20, C = 16 0.61 against 0.80).
       Before all these, float32 rows of CS_LOG_REG_MIN to CS_LOG_REG_MAX
       entries at x86-64-v4 take log_regs_rows. */
#if CS_TR && CS_VEC_BYTES >= 64
    if (sizeof(T) == 4 && C >= CS_LOG_REG_MIN && C <= CS_LOG_REG_MAX) {
        switch (C / 16) {   /* the whole vectors, a constant in each case */
#define CS_LOG_REG_ROWS(K)                                               \
    case K:                                                              \
        CS_FN(log_regs_rows)(ls, ss, g, gs, out, os, nrows, C, K); \
        return;
            CS_LOG_REG_ROWS(1) CS_LOG_REG_ROWS(2) CS_LOG_REG_ROWS(3) CS_LOG_REG_ROWS(4) CS_LOG_REG_ROWS(5)
            CS_LOG_REG_ROWS(6) CS_LOG_REG_ROWS(7) CS_LOG_REG_ROWS(8) CS_LOG_REG_ROWS(9)
#undef CS_LOG_REG_ROWS
        }
    }
#endif
    if (C < CS_LOG_BWD_NARROW && !(CS_VEC_BYTES == 32 && (C == CS_VL || C == 2 * CS_VL))) {
        CS_FN(backward_narrow)(ls, ss, g, gs, out, os, nrows, C, 1);
        return;
    }
    if (CS_LOG_BWD_NEG && C * (cs_intp)sizeof(T) <= CS_LOG_BWD_MID_BYTES) {
        CS_FN(backward_mid)(ls, ss, g, gs, out, os, nrows, C, CS_FN(log_backward_rows4),
                            CS_FN(log_backward_row1), 0, stream);
        return;
    }
    if (CS_LOG_PIPE) {
        CS_FN(log_backward_pipe)(ls, ss, g, gs, out, os, nrows, C);
        return;
    }
#define CS_LOG_BWD_LOOP(W)                                                          \
    for (cs_intp i = 0; i < nrows; i++)                                             \
        CS_FN(log_backward_row)(ls + i * ss, g + i * gs, out + i * os, W);
    CS_MID_WIDTHS(CS_LOG_BWD_LOOP, CS_LOG_BWD_LOOP, C);
#undef CS_LOG_BWD_LOOP
}

/* pf: prefetch each pass's strips a few classes ahead (prefetch_strip; see
   softmax_backward_cols), a constant where inlined. */
CS_INLINE void CS_FN(softmax_backward_tile)(const T *s, cs_intp ss, const T *g, cs_intp gs,
                                            T *out, cs_intp os, cs_intp C, cs_intp W, const int pf)
{
    double dot[CS_TILE];
    for (cs_intp j = 0; j < W; j++)
        dot[j] = 0.0;
    for (cs_intp c = 0; c < C; c++) {
        const T *sc = s + c * ss, *gc = g + c * gs;
        CS_FN(prefetch_strip)(s, c, C, ss, W, 0, pf);
        CS_FN(prefetch_strip)(g, c, C, gs, W, 0, pf);
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            dot[j] += (double)gc[j] * (double)sc[j];
    }
    T d[CS_TILE];
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        d[j] = (T)dot[j];
    for (cs_intp c = 0; c < C; c++) {
        const T *sc = s + c * ss, *gc = g + c * gs;
        T *o = out + c * os;
        CS_FN(prefetch_strip)(s, c, C, ss, W, 0, pf);
        CS_FN(prefetch_strip)(g, c, C, gs, W, 0, pf);
        CS_FN(prefetch_strip)(out, c, C, os, W, 1, pf);
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            o[j] = sc[j] * (gc[j] - d[j]);
    }
}

CS_INLINE void CS_FN(log_softmax_backward_tile)(const T *ls, cs_intp ss, const T *g, cs_intp gs,
                                                T *out, cs_intp os, cs_intp C, cs_intp W, const int pf)
{
    /* with the sums, which columns have an entry above 0: those take EXP
       (see CS_LOG_BWD_NEG) */
    double sg[CS_TILE];
    unsigned char pos[CS_TILE];
    for (cs_intp j = 0; j < W; j++)
        sg[j] = 0.0, pos[j] = 0;
    for (cs_intp c = 0; c < C; c++) {
        const T *gc = g + c * gs, *lc = ls + c * ss;
        CS_FN(prefetch_strip)(g, c, C, gs, W, 0, pf);
        CS_FN(prefetch_strip)(ls, c, C, ss, W, 0, pf && CS_LOG_BWD_NEG);
        if (CS_LOG_BWD_NEG) {
#pragma omp simd
            for (cs_intp j = 0; j < W; j++) {
                sg[j] += gc[j];
                pos[j] |= lc[j] > 0;
            }
        } else {
#pragma omp simd
            for (cs_intp j = 0; j < W; j++)
                sg[j] += gc[j];
        }
    }
    T k[CS_TILE];
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        k[j] = (T)sg[j];
    int any = !CS_LOG_BWD_NEG;
    for (cs_intp j = 0; CS_LOG_BWD_NEG && j < W; j++)
        any |= pos[j];
    for (cs_intp c = 0; c < C; c++) {
        const T *lc = ls + c * ss, *gc = g + c * gs;
        T *o = out + c * os;
        CS_FN(prefetch_strip)(ls, c, C, ss, W, 0, pf);
        CS_FN(prefetch_strip)(g, c, C, gs, W, 0, pf);
        CS_FN(prefetch_strip)(out, c, C, os, W, 1, pf);
        if (!any) {
#pragma omp simd
            for (cs_intp j = 0; j < W; j++)
                o[j] = gc[j] - EXPNEG_FMA(lc[j]) * k[j];
        } else if (CS_LOG_BWD_NEG) {
            for (cs_intp j = 0; j < W; j++)
                o[j] = gc[j] - (pos[j] ? EXP(lc[j]) : EXPNEG_FMA(lc[j])) * k[j];
        } else {
#pragma omp simd
            for (cs_intp j = 0; j < W; j++)
                o[j] = gc[j] - EXP(lc[j]) * k[j];
        }
    }
}

/* J[i] = diag(s) - s s^T.  s goes into J[i]'s first row, which is overwritten
   last; the diagonal is s (1 - s), not s - s*s, which cancels near s = 1. */
static void CS_FN(jacobian_block)(const T *x, cs_intp xs, T *J, cs_intp nrows, cs_intp C)
{
    /* the rows' softmax in one call, row i into the first row of J_i: a
       call a row took narrow rows through the transposed block one at a
       time (AMD Zen 4, x86-64-v4, float64 with out=, us a call: (16, 10)
       2.6 against 11.8, (1000, 10) 22 against 196; (1000, 100) and
       (100, 1000) even) */
    CS_FN(softmax_block)(x, xs, J, C * C, nrows, C, 0, NULL);
    for (cs_intp i = 0; i < nrows; i++) {
        T *Ji = J + i * C * C;
        const T *sv = Ji;
        for (cs_intp r = C - 1; r >= 0; r--) {
            T sr = sv[r];
            T *Jr = Ji + r * C;
#pragma omp simd
            for (cs_intp j = 0; j < C; j++)
                Jr[j] = -sr * sv[j];
            Jr[r] = sr * ((T)1 - sr);
        }
    }
}

/* The smoothing's share of nb gradient rows (gs apart): row r less ku[r]
   times the class weights cwt (NULL: all 1). */
static inline void CS_FN(ce_smooth_rows)(T *g, cs_intp gs, cs_intp nb, cs_intp C, const double *ku,
                                         const T *cwt)
{
    for (cs_intp r = 0; r < nb; r++) {
        T *gr = g + r * gs, kw = (T)ku[r];
        for (cs_intp j = 0; j < C; j++)
            gr[j] -= kw * (cwt != NULL ? cwt[j] : (T)1);
    }
}

/* Whether the cross-entropy takes rows of C entries as a mid-width block:
   up to CS_MID_BYTES, and rows of whole vectors from `least` entries, unless
   the call streams from memory (pf) and they are of CS_STREAM_WIDE_BYTES or
   more. */
static inline int CS_FN(ce_is_mid)(cs_intp C, cs_intp least, int pf)
{
    return (CS_FN(is_mid)(C, CS_MID_BYTES) || CS_FN(whole_vectors)(C, least)) && !CS_FN(stream_one_row)(C, pf);
}

/* Rows of the cross-entropy's mid-width block: their exponentials stay in
   L1 (CS_CE_MID_BYTES) between the sums and the gradient's scaling, and the
   per-row work (logarithm, loss, scale) runs across the block's rows. */
#define CS_CE_MID_BYTES 8192
static inline cs_intp CS_FN(ce_mid_rows)(cs_intp C)
{
    cs_intp r = (CS_CE_MID_BYTES / (cs_intp)sizeof(T) / C) & ~(cs_intp)(CS_MID_ROWS - 1);
    return r > CS_MID_ROWS ? r : CS_MID_ROWS;
}

/* The gradient's scale of nb rows of the cross-entropy, q[r] = k A / s[r],
   and the smoothing's ku[r] = k u, with k = rscale[r] gscale (rscale NULL:
   gscale) and A = ac[r] + uw (without options, A = 1).  A loop of its own,
   vectorised: in one loop with the label's entry, whose branch kept that loop
   scalar, the division was 6 % of the narrow rows' samples (AMD Zen 4,
   x86-64-v4, float32 (4096, 10), one thread: 50.2 against 51.5 us a call,
   float64 66.3 against 68.7). */
static inline void CS_FN(ce_scales)(const double *rscale, double gscale, int opts, const double *ac, double uw,
                                    double u, const double *s, double *q, double *ku, cs_intp nb)
{
#pragma omp simd
    for (cs_intp r = 0; r < nb; r++) {
        double k = (rscale != NULL ? rscale[r] : 1.0) * gscale;
        double A = opts ? ac[r] + uw : 1.0;
        q[r] = k * A / s[r];
        ku[r] = k * u;
    }
}

/* Rows r < nb of g (gs apart, W entries) times q[r], rounded to T, less
   the smoothing's ku[r] times the class weights cwt (ku NULL: no smoothing;
   cwt NULL: all 1): the cross-entropy gradient's last pass, W a constant
   where CS_MID_WIDTHS gives one, and each case a loop of its own (AMD Zen 4,
   x86-64-v4, 409600 entries in cache, one thread, ns an entry: float32 C =
   32 0.705 against 0.73, C = 64 0.50 against 0.515, C = 128 0.439 against
   0.452, C = 256 0.414 against 0.425; float64 C = 32 1.14 against 1.18). */
CS_INLINE void CS_FN(scale_rows)(T *g, cs_intp gs, const double *q, const double *ku, const T *cwt,
                                 cs_intp nb, cs_intp W)
{
    for (cs_intp r = 0; ku == NULL && r < nb; r++) {
        T *gr = g + r * gs;
        const T k = (T)q[r];
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            gr[j] *= k;
    }
    for (cs_intp r = 0; ku != NULL && cwt == NULL && r < nb; r++) {
        T *gr = g + r * gs;
        const T k = (T)q[r], kw = (T)ku[r];
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            gr[j] = gr[j] * k - kw;
    }
    for (cs_intp r = 0; ku != NULL && cwt != NULL && r < nb; r++) {
        T *gr = g + r * gs;
        const T k = (T)q[r], kw = (T)ku[r];
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            gr[j] = gr[j] * k - kw * cwt[j];
    }
}

/* Cross-entropy with class indices: loss = lse - z[c]; grad = k (s - onehot(c)).
   A row whose max is not finite takes log_softmax's rule (shift by 0): +inf
   in the row gives a loss of +inf (nan if z[c] is +inf), and its softmax, so
   its gradient, is nan, as softmax gives.
   A label outside [0, C) (the caller has refused those) gives a nan loss and is
   never used as an index.  The gradient may overwrite the logits in place:
   z[c], and whether a row with a max that is not finite holds a nan, are
   read before any write.

   With class weights w (cw, NULL: all 1, summing to wsum) and label smoothing
   eps, the target puts (1 - eps) on class c and u = eps / C on every class,
   each weighted by its class: with a_j its coefficient, a_c' = (1 - eps) w_c,
   A = a_c' + u wsum,
     loss = sum_j a_j (lse - z_j) = a_c' (lse - z_c) + u (wsum lse - sum_j w_j z_j)
     grad = k (A s - a):  k (A / S) (e - (a_c' / A) S onehot(c)) - k u w,
   with e = exp(z - m) and S their sum: the plain pass with A / S for 1 / S,
   the label's entry taken down by (a_c' / A) S, and k u w subtracted.  The
   sum u sum_j w_j (lse - z_j) is taken as u wsum (m - z_0 + log S) - u sum_j
   w_j (z_j - z_0), z_0 the row's first entry: only the row's spread cancels,
   not its magnitude, and it is read before the gradient may overwrite z.
   Where wsum (m - z_0) overflows (float64 logits of some 1e305 at C = 1000,
   far below the loss's own overflow), both terms are scaled by u before the
   difference; row_wdiff_careful takes the sums that overflow themselves.  cwt:
   the class weights in T (for the vector loops), NULL when cw is.  pf: the
   call streams from memory (big_call); then each wide row's exponentials
   prefetch the row after it, the block's next or `after` past its last
   (NULL: none).  The first pass over a row, which brings it in, then reads
   L2: kernel-only, 8.2M entries on two threads, AMD Zen 4, x86-64-v4, ns an
   entry, float32 C = 1000 0.27 against 0.35, with label smoothing (whose
   sum rides on that pass) 0.28 against 0.35. */
static void CS_FN(ce_index_block)(const T *z, cs_intp zs, const cs_intp *label, T *grad, cs_intp gs,
                                 const double *rscale, double gscale, double *loss,
                                 cs_intp nrows, cs_intp C, const double *cw, const T *cwt, double wsum,
                                 double eps, int pf, const T *after)
{
    T t[CS_BLOCK + CS_NARROW], e[CS_BLOCK + CS_NARROW], m[CS_BLOCK], zc[CS_BLOCK], z0[CS_BLOCK], ec[CS_BLOCK];
    double s[CS_BLOCK], ls[CS_BLOCK], q[CS_BLOCK], ac[CS_BLOCK], dz[CS_BLOCK], ku[CS_BLOCK];
    unsigned char zn[CS_BLOCK];   /* the row holds a nan (row_nan), where z is overwritten */
    unsigned char scaled[CS_BLOCK];   /* dz is row_wdiff_careful's, scaled by u */
    const int opts = cw != NULL || eps != 0.0;
    const double u = eps / (double)C;
    const int us = u != 0.0 && wsum != 0.0;   /* the smoothing adds to the loss */
    const double uw = u * wsum;
    /* mid-width rows: a block of them, their sums four rows at a time; in
       a call that streams from memory (pf), rows of CS_STREAM_WIDE_BYTES or
       more one at a time, as softmax takes them (float32 C = 1000, kernel
       only, 8.2M entries on two threads, AMD Zen 4, v4: 0.27 against 0.35
       ns an entry; C = 256 0.46 against 0.65; v3 C = 256 0.40 against 0.59;
       the same bits either way).  Narrow rows of whole vectors go this way
       too, as softmax's do: in float32 from 16 entries, in float64 from 24
       (AMD Zen 4, 409600 entries, one thread, calls, ns an entry: v4 float32
       C = 16 0.99 against 1.07, C = 32 0.72 against 1.03, float64 C = 24
       1.26 against 1.49-1.62, C = 32 1.18 against 1.43-1.60; v3 float32
       C = 16 1.14 against 1.25, C = 24 0.99 against 1.19, C = 32 0.80
       against 1.17; baseline float32 C = 16 2.13-2.18 against 2.41, C = 32
       1.73 against 2.16; float64 C = 16 at v3 1.83-1.86 against 1.77-1.78).
       With label smoothing too, its sum taken row by row before the four-row
       sums (as the narrow rows take it), by the function that gives it to
       the wide rows, so a row has the same bits on either path.  Such rows
       went one at a time, and narrow ones of whole vectors as other narrow
       rows (AMD Zen 4, 409600 entries, one thread, kernel-only, ns an entry,
       with class weights and ignored rows as well: v4 float32 C = 33 1.09
       against 2.89, C = 100 0.64 against 1.21, C = 256 0.49 against 0.64,
       C = 32 0.97 against 1.24, C = 16 even; float64 C = 33 1.73 against
       3.74, C = 100 1.29 against 1.80, C = 24 1.64 against 1.85-1.89; v3
       float32 C = 100 0.74 against 1.30, C = 32 0.93 against 1.07, but
       C = 16 1.41-1.46 against 1.25) */
    const int mid = CS_FN(ce_is_mid)(C, sizeof(T) == 4 ? 16 : 24, pf);
    cs_intp nbmax = mid ? CS_FN(ce_mid_rows)(C) : CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *zb = z + i0 * zs;
        const cs_intp *lb = label + i0;
        T *gb = grad != NULL ? grad + i0 * gs : NULL;
        int narrow = CS_FN(is_narrow)(C) && !mid;
        /* the gradient's last pass in row order (see narrow_expand) */
        int flat = narrow && gb != NULL && CS_FN(ce_flat)(C) && zs == C && gs == C;
        /* the sums write the exponentials over z (in place, outside the
           narrow block): whether a row holds a nan is taken before */
        int over = !narrow && gb == zb && gs == zs;
        /* float64 narrow rows take z[c] from the block once it is loaded
           (below): kernel-only, AMD Zen 4, v4, one thread, 409600 entries,
           ns an entry, C = 4 1.93 against 2.00, C = 10 1.38 against 1.42,
           C = 16 1.25 against 1.30; float32 rows lost 2-3 % that way */
        const int zc_late = narrow && sizeof(T) == 8;
        for (cs_intp r = 0; r < nb; r++) {
            int ok = lb[r] >= 0 && lb[r] < C;
            if (!zc_late)
                zc[r] = ok ? zb[r * zs + lb[r]] : (T)NAN;
            ac[r] = ok ? (1.0 - eps) * (cw != NULL ? cw[lb[r]] : 1.0) : 0.0;
        }
        /* the smoothing's sum where the pass that takes the max does not
           (narrow and mid-width rows), before the sums may overwrite z:
           float32 rows that no call takes one at a time four at a time
           (rows4_wdiff), a spare row repeating the group's first */
        if (u != 0.0 && (narrow || mid)) {
            int odd = 0;
            for (cs_intp r = 0; r < nb; r++)
                z0[r] = zb[r * zs], scaled[r] = 0;
            if (sizeof(T) == 4 && C * (cs_intp)sizeof(T) < CS_STREAM_WIDE_BYTES) {
                for (cs_intp r = 0; r < nb; r += CS_MID_ROWS) {
                    const T *zr[CS_MID_ROWS];
                    double d4[CS_MID_ROWS];
                    for (cs_intp q = 0; q < CS_MID_ROWS; q++)
                        zr[q] = zb + (r + q < nb ? r + q : r) * zs;
                    CS_FN(rows4_wdiff)(zr[0], zr[1], zr[2], zr[3], C, cwt, d4);
                    for (cs_intp q = 0; q < CS_MID_ROWS && r + q < nb; q++)
                        dz[r + q] = d4[q], odd |= !(d4[q] - d4[q] == 0.0);
                }
            } else {
                for (cs_intp r = 0; r < nb; r++) {
                    (void)CS_FN(row_max_wdiff)(zb + r * zs, C, cwt, &dz[r]);
                    odd |= !(dz[r] - dz[r] == 0.0);
                }
            }
            /* the rare rows whose sum is not finite (a first logit that is not
               finite makes its own term, w_0 (x_0 - x_0), nan) */
            for (cs_intp r = 0; odd && r < nb; r++)
                if (!isfinite(dz[r])) {
                    dz[r] = CS_FN(row_wdiff_careful)(zb + r * zs, C, cw, u, &z0[r]);
                    scaled[r] = 1;
                }
        }
        if (narrow) {
            CS_FN(narrow_load)(zb, zs, nb, C, t, m);
            for (cs_intp r = 0; zc_late && r < nb; r++) {
                cs_intp c = lb[r];
                zc[r] = c >= 0 && c < C ? t[c * nb + r] : (T)NAN;
            }
            CS_FN(narrow_sumexp)(t, nb, C, m, s, gb != NULL && !flat);
        } else if (mid) {
#define CS_CE_SUMS(W) CS_FN(mid_sums_w)(zb, zs, gb, gs, nb, W, m, s, over ? zn : NULL)
#define CS_CE_SUMS_ANY(W) CS_FN(mid_sums)(zb, zs, gb, gs, nb, W, m, s, over ? zn : NULL)
            CS_MID_WIDTHS(CS_CE_SUMS, CS_CE_SUMS_ANY, C);
#undef CS_CE_SUMS
#undef CS_CE_SUMS_ANY
        } else {
            /* wide rows: the smoothing's sum rides on the pass that takes the max */
            for (cs_intp r = 0; r < nb; r++) {
                const T *zr = zb + r * zs;
                if (u != 0.0) {
                    z0[r] = zr[0];
                    m[r] = CS_FN(row_max_wdiff)(zr, C, cwt, &dz[r]);
                    scaled[r] = !isfinite(dz[r]);
                    if (scaled[r])
                        dz[r] = CS_FN(row_wdiff_careful)(zr, C, cw, u, &z0[r]);
                } else {
                    m[r] = CS_FN(row_max)(zr, C);
                }
                if (over)
                    zn[r] = CS_FN(row_nan)(zr, C, m[r]);
                CS_FN(row_sumexp_at)(zr, C, m[r], gb != NULL ? gb + r * gs : NULL, &s[r],
                                     pf ? (i0 + r + 1 < nrows ? zr + zs : after) : NULL, NULL);
            }
        }
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            ls[r] = cs_log_sum(s[r]);
        if (!opts) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                loss[i0 + r] = ((double)m[r] - (double)zc[r]) + ls[r];
        } else {
            /* a term of coefficient 0 adds nothing, even where its logit is
               -inf (so is the smoothing's where all class weights are 0) */
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++) {
                double l = ac[r] != 0.0 ? ac[r] * (((double)m[r] - (double)zc[r]) + ls[r]) : 0.0;
                if (us) {
                    /* u (wsum a - dz), or where that overflows (float64 logits
                       of some 1e305) u wsum a - u dz; the careful sum comes
                       scaled already */
                    double a = ((double)m[r] - (double)z0[r]) + ls[r];
                    double lq = l + u * (wsum * a - dz[r]);
                    if (scaled[r] || (!(lq - lq == 0.0) && dz[r] - dz[r] == 0.0))
                        lq = l + (uw * a - (scaled[r] ? dz[r] : u * dz[r]));
                    l = lq;
                }
                loss[i0 + r] = l;
            }
        }
        /* a max that is not finite: log_softmax's rule, lse = +inf with +inf
           in the row (each other term's log-softmax -inf, its own nan), nan
           with a nan in it (looked for in z, or in place in zn, taken while z
           was intact) or all -inf.  So the loss is +inf unless a nonzero
           coefficient falls on a +inf logit (z[c]'s, or a weighted class's,
           which the smoothing's careful sum marks nan), and 0 where every
           coefficient is 0. */
        const int some = CS_FN(any_nonfinite)(m, nb);
        for (cs_intp r = 0; some && r < nb; r++) {
            if (isfinite(m[r]))
                continue;
            int nan = over ? zn[r] : CS_FN(row_nan)(zb + r * zs, C, m[r]);
            double l = NAN;
            if (ac[r] == 0.0 && !us)
                l = 0.0;
            else if (!nan && m[r] == INFINITY && !(ac[r] != 0.0 && zc[r] == INFINITY) && !(us && isnan(dz[r])))
                l = INFINITY;
            loss[i0 + r] = l;
        }
        if (gb == NULL)
            continue;
        /* grad = q (e - b S onehot) - k u w, q = k A / S, b = a_c' / A (1
           without options): the label's entry is taken down before the
           scaling, so a certain prediction gives exactly 0 without smoothing */
        if (flat) {
            /* in row order: the exponentials again (the same bits as the
               sum's), scaled; then each label's entry, from its logit read
               before any write */
            CS_FN(ce_scales)(rscale != NULL ? rscale + i0 : NULL, gscale, opts, ac, uw, u, s, q, ku, nb);
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++) {
                ec[r] = EXPNEG(zc[r] - m[r]);
                z0[r] = (T)q[r];
            }
            CS_FN(narrow_expand)(m, nb, C, t);
            CS_FN(narrow_expand)(z0, nb, C, e);
#pragma omp simd
CS_FLOAT_LANES
            for (cs_intp i = 0; i < nb * C; i++)
                gb[i] = EXPNEG(zb[i] - t[i]) * e[i];
            for (cs_intp r = 0; r < nb; r++) {
                double A = opts ? ac[r] + uw : 1.0;
                cs_intp c = lb[r];
                if (c >= 0 && c < C && A != 0.0)
                    gb[r * C + c] = (T)((double)ec[r] - (opts ? ac[r] / A : 1.0) * s[r]) * z0[r];
            }
            if (u != 0.0)
                CS_FN(ce_smooth_rows)(gb, gs, nb, C, ku, cwt);
            continue;
        }
        CS_FN(ce_scales)(rscale != NULL ? rscale + i0 : NULL, gscale, opts, ac, uw, u, s, q, ku, nb);
        for (cs_intp r = 0; r < nb; r++) {
            double A = opts ? ac[r] + uw : 1.0;
            cs_intp c = lb[r];
            if (c >= 0 && c < C && A != 0.0) {
                T *e_c = narrow ? &t[c * nb + r] : &gb[r * gs + c];
                *e_c = (T)((double)*e_c - (opts ? ac[r] / A : 1.0) * s[r]);
            }
        }
        if (narrow) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                m[r] = (T)q[r];
            CS_FN(narrow_store)(t, nb, C, m, gb, gs);
            if (u != 0.0)
                CS_FN(ce_smooth_rows)(gb, gs, nb, C, ku, cwt);
            continue;
        }
#define CS_CE_SCALE(W) CS_FN(scale_rows)(gb, gs, q, u != 0.0 ? ku : NULL, cwt, nb, W)
        CS_MID_WIDTHS(CS_CE_SCALE, CS_CE_SCALE, C);
#undef CS_CE_SCALE
    }
}

/* Whether v, rounded to T, is a normal number of T (neither 0, subnormal,
   infinite nor nan). */
static inline int CS_FN(normal_t)(double v)
{
    double a = fabs(v);
    return a >= (sizeof(T) == 4 ? (double)FLT_MIN : DBL_MIN) && a <= (sizeof(T) == 4 ? (double)FLT_MAX : DBL_MAX);
}

/* A float32 row's loss and target mass without options: *l = sum_j y_j
   ((m - z_j) + lr) over y_j != 0 and *sy = sum_j y_j, each term in float32
   (all are >= 0: a few roundings a term, no cancellation), added in pairs in
   float32 and then in double lanes, as row_sumexp_lanes adds its
   exponentials.  Returns whether both came out finite; where not (a term or
   a pair past float32's range, or an infinite or nan term), the caller takes
   the row in double. */
static inline int CS_FN(prob_loss_lanes)(const T *z, const T *y, cs_intp C, T m, T lr, double *l, double *sy)
{
    double ql[CS_VL], qy[CS_VL];
    for (int k = 0; k < CS_VL; k++)
        ql[k] = qy[k] = 0.0;
    const cs_intp n = C & ~(CS_VL - 1), h = CS_FN(pair_half)(n);
    for (cs_intp j = 0; j < h; j += CS_VL) {
#pragma omp simd
CS_FLOAT_VEC
        for (int k = 0; k < CS_VL; k++) {
            T ya = y[j + k], yb = y[j + h + k];
            T ta = ya * ((m - z[j + k]) + lr), tb = yb * ((m - z[j + h + k]) + lr);
            ql[k] += (double)((ya != 0 ? ta : (T)0) + (yb != 0 ? tb : (T)0));
            qy[k] += (double)(ya + yb);
        }
    }
    for (cs_intp j = 2 * h; j < n; j += CS_VL) {
#pragma omp simd
CS_FLOAT_VEC
        for (int k = 0; k < CS_VL; k++) {
            T ya = y[j + k], ta = ya * ((m - z[j + k]) + lr);
            ql[k] += ya != 0 ? ta : (T)0;
            qy[k] += ya;
        }
    }
    double a = CS_FN(vec_lanes_sum)(ql), c = CS_FN(vec_lanes_sum)(qy);
    for (cs_intp j = n; j < C; j++) {
        T ya = y[j], ta = ya * ((m - z[j]) + lr);
        a += ya != 0 ? ta : (T)0;
        c += ya;
    }
    *l = a;
    *sy = c;
    return isfinite(a) && isfinite(c);
}

/* Cross-entropy with probabilities y: loss = sum_k y_k (lse - z_k) over y_k != 0;
   grad = k (s sum(y) - y).  The gradient never overlaps z or y (the caller
   copies otherwise). */
static void CS_FN(ce_prob_block)(const T *z, cs_intp zs, const T *target, cs_intp ts, T *grad, cs_intp gs,
                                const double *rscale, double gscale, double *loss,
                                cs_intp nrows, cs_intp C, const double *cw, double eps, int pf)
{
    T t[CS_BLOCK], m[CS_BLOCK];
    double s[CS_BLOCK], ls[CS_BLOCK];
    /* mid-width rows: a block of them, their sums four rows at a time and
       their logarithms across the block, as the class-index kernel takes
       them (in a call that streams from memory, rows of
       CS_STREAM_WIDE_BYTES or more one at a time, as there).  Rows of 512
       bytes up to CS_MID_BYTES went one at a time in cache too: kernel-only,
       409600 entries, AMD Zen 4, ns an entry, one thread, x86-64-v4 float32
       C = 128 0.69 against 1.20, C = 256 0.66 against 0.86, C = 1000 0.56
       against 0.62, float64 C = 64 1.37 against 2.53, C = 256 1.23 against
       1.44; two threads float32 C = 128 0.34 against 0.62; x86-64-v3
       float32 C = 128 0.88 against 1.41, float64 C = 64 1.58 against 2.42;
       baseline float32 C = 128 1.77 against 2.23; float64 C = 1000 even.
       The same bits; kernel-only, one thread, 409600 entries, AMD Zen 4,
       x86-64-v4, ns an entry: float32 C = 33 1.41 against 2.56, C = 64 1.19
       against 2.07, C = 127 1.15 against 1.73; float64 C = 33 2.23 against
       3.29.  Narrow rows of whole vectors, 16 entries or more, too (the
       same, calls: v4 float32 C = 16 1.95-1.97 against 2.07, C = 32 1.27
       against 1.67, float64 C = 16 2.08-2.09 against 2.32, C = 24 1.93
       against 2.27, C = 32 1.64 against 2.05; v3 float32 C = 16 1.81
       against 1.94, C = 24 1.52 against 1.78, C = 32 1.17 against 1.56,
       float64 C = 16 2.25-2.30 against 2.36-2.46; baseline float32 C = 32
       2.30 against 2.79). */
    const int mid = CS_FN(ce_is_mid)(C, 16, pf);
    cs_intp nbmax = mid ? CS_FN(ce_mid_rows)(C) : CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *zb = z + i0 * zs;
        T *gb = grad != NULL ? grad + i0 * gs : NULL;
        int narrow = CS_FN(is_narrow)(C) && !mid;
        if (mid) {
#define CS_PROB_SUMS(W) CS_FN(mid_sums_w)(zb, zs, gb, gs, nb, W, m, s, NULL)
#define CS_PROB_SUMS_ANY(W) CS_FN(mid_sums_call)(zb, zs, gb, gs, nb, W, m, s)
            CS_MID_WIDTHS(CS_PROB_SUMS, CS_PROB_SUMS_ANY, C);
#undef CS_PROB_SUMS
#undef CS_PROB_SUMS_ANY
        } else if (narrow) {
            CS_FN(narrow_load)(zb, zs, nb, C, t, m);
            CS_FN(narrow_sumexp)(t, nb, C, m, s, 1);
            if (gb != NULL)
                CS_FN(narrow_store)(t, nb, C, NULL, gb, gs);
        } else {
            for (cs_intp r = 0; r < nb; r++)
                /* the exponentials prefetch the row's target, which the
                   loss's pass then reads from L2 (its pairs read two places
                   of the row: from memory they slowed the pass; 8.2M
                   entries, two threads, float32 C = 1000 0.44 against 0.46
                   ns an entry with the double loss pass before, C = 4096
                   0.38 against 0.47) */
                m[r] = CS_FN(row_sumexp)(zb + r * zs, C, gb != NULL ? gb + r * gs : NULL, &s[r],
                                         target + (i0 + r) * ts, NULL);
        }
        CS_FN(log_sums)(zb, zs, nb, C, m, s, ls);
        for (cs_intp r = 0; r < nb; r++) {
            cs_intp i = i0 + r;
            const T *zr = zb + r * zs, *yr = target + i * ts;
            double mr = m[r], lr = ls[r], l = 0.0, sy = 0.0;
            /* float32 without options, rows of four vectors or more: the
               terms in float32 (prob_loss_lanes; kernel-only, AMD Zen 4, one
               thread, 409600 entries, ns an entry, x86-64-v4 C = 64 0.71
               against 0.84, C = 200 0.94 against 1.02, C = 1000 0.60
               against 0.67; x86-64-v3 C = 33 1.16 against 1.34, C = 1000
               0.82 against 0.92; shorter rows lost to the lanes' set-up);
               in double where that did not come out finite */
            const int plain = cw == NULL && eps == 0.0;
            const int done = plain && sizeof(T) == 4 && C >= 4 * CS_VL
                             && CS_FN(prob_loss_lanes)(zr, yr, C, m[r], (T)lr, &l, &sy);
            if (!done && plain) {
                l = sy = 0.0;
#pragma omp simd reduction(+ : l, sy)
                for (cs_intp j = 0; j < C; j++) {
                    double yj = yr[j];
                    double v = yj * ((mr - (double)zr[j]) + lr);
                    l += yj != 0.0 ? v : 0.0;
                    sy += yj;
                }
            } else if (!done) {
                /* the target (1 - eps) y + eps / C, weighted per class */
#pragma omp simd reduction(+ : l, sy)
                for (cs_intp j = 0; j < C; j++) {
                    double yj = (cw != NULL ? cw[j] : 1.0) * ((1.0 - eps) * yr[j] + eps / C);
                    double v = yj * ((mr - (double)zr[j]) + lr);
                    l += yj != 0.0 ? v : 0.0;
                    sy += yj;
                }
            }
            loss[i] = l;
            if (gb == NULL)
                continue;
            double k = (rscale != NULL ? rscale[i] : 1.0) * gscale;
            double q = k * sy / s[r];
            T *gr = gb + r * gs;
            /* float32 without options: the pass in float32, its scales
               rounded to float32 (e q - k y with a few roundings, within
               the gradient's bound; kernel-only, AMD Zen 4, one thread,
               409600 entries, ns an entry: x86-64-v4 C = 1000 0.70 against
               0.90, C = 100 0.94 against 1.10, x86-64-v3 C = 1000 0.93
               against 1.07), unless a scale is not a normal float32; else
               in double, rounded once */
            if (plain && sizeof(T) == 4 && CS_FN(normal_t)(q) && CS_FN(normal_t)(k)) {
                const T qt = (T)q, kt = (T)k;
#pragma omp simd
                for (cs_intp j = 0; j < C; j++)
                    gr[j] = gr[j] * qt - kt * yr[j];
            } else if (plain) {
#pragma omp simd
                for (cs_intp j = 0; j < C; j++)
                    gr[j] = (T)((double)gr[j] * q - k * (double)yr[j]);
            } else {
#pragma omp simd
                for (cs_intp j = 0; j < C; j++) {
                    double yj = (cw != NULL ? cw[j] : 1.0) * ((1.0 - eps) * yr[j] + eps / C);
                    gr[j] = (T)((double)gr[j] * q - k * yj);
                }
            }
        }
    }
}

/* ---- The kernels of the list: units of a task to pointers. ---- */

#define CS_X(t) ((const T *)(t)->x)
#define CS_G(t) ((const T *)(t)->g)
#define CS_Y(t) ((T *)(t)->y)

/* Whether a call streams its rows from memory (see CS_STREAM_BYTES). */
static inline int CS_FN(big_call)(const cs_task *t)
{
    return t->N * t->C >= CS_STREAM_BYTES / (cs_intp)sizeof(T);
}

/* Whether a call over a strided class axis streams its outer blocks from
   memory (each of CS_STREAM_BYTES or more; packed_width in _runtime.pyx
   takes the same test for the tiles' widths). */
static inline int CS_FN(cols_stream)(const cs_task *t)
{
    return t->C * t->inner >= CS_STREAM_BYTES / (cs_intp)sizeof(T);
}

/* ... and rows of at most CS_STREAM_ROW_BYTES, which the backward passes
   then take one at a time */
static inline int CS_FN(streams)(const cs_task *t)
{
    return CS_FN(big_call)(t) && t->C * (cs_intp)sizeof(T) <= CS_STREAM_ROW_BYTES;
}

/* Units: rows; x and y rows of C contiguous entries; N rows in all. */
static void CS_FN(softmax_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    CS_FN(softmax_block)(CS_X(t) + lo * t->xs0, t->xs0, CS_Y(t) + lo * t->ys0, t->ys0, hi - lo, t->C,
                         CS_FN(big_call)(t), NULL);
}

static void CS_FN(log_softmax_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    CS_FN(log_softmax_block)(CS_X(t) + lo * t->xs0, t->xs0, CS_Y(t) + lo * t->ys0, t->ys0, hi - lo, t->C,
                             CS_FN(big_call)(t), NULL);
}

/* Units: tiles of W columns; each outer block (stride xs0 / ys0) holds
   ceil((inner + shift) / W) of them, classes xs1 / ys1 apart, columns
   contiguous, the first W - shift columns wide (shift < W; see cs_task).
   softmax_cols and log_softmax_cols take a mask (where=) unless t->mask is
   NULL: outer blocks ms0 apart, classes ms1, columns contiguous.
   scratch: C * W entries. */
static inline cs_intp CS_FN(tile_at)(const cs_task *t, cs_intp k, cs_intp *o, cs_intp *j0)
{
    cs_intp per = (t->inner + t->shift + t->W - 1) / t->W, q;
    *o = k / per;
    q = k % per;
    cs_intp lo = q * t->W - t->shift, hi = lo + t->W;
    if (lo < 0)
        lo = 0;
    if (hi > t->inner)
        hi = t->inner;
    *j0 = lo;
    return hi - lo;
}

/* The mask of the tile at outer block o, column j0 (NULL without one). */
static inline const unsigned char *CS_FN(tile_mask)(const cs_task *t, cs_intp o, cs_intp j0)
{
    return t->mask != NULL ? t->mask + o * t->ms0 + j0 : NULL;
}

/* Whether the packed tiles prefetch their strips a few classes ahead
   (prefetch_strip): float64 always; float32 where an outer block of x is
   CS_STREAM_BYTES or more, as the tiles' widths go (packed_width in
   _runtime.pyx), where it was measured. */
static inline int CS_FN(strips_ahead)(const cs_task *t)
{
    return sizeof(T) == 8 || CS_FN(cols_stream)(t);
}

static void CS_FN(softmax_cols)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    const int pf = CS_FN(strips_ahead)(t);
    for (cs_intp k = lo; k < hi; k++) {
        cs_intp o, j0, w = CS_FN(tile_at)(t, k, &o, &j0);
        cs_intp no, nj0, nw = k + 1 < hi ? CS_FN(tile_at)(t, k + 1, &no, &nj0) : 0;
        CS_FN(softmax_tile)(CS_X(t) + o * t->xs0 + j0, t->xs1, CS_FN(tile_mask)(t, o, j0), t->ms1,
                            CS_Y(t) + o * t->ys0 + j0, t->ys1, t->C, w, (T *)scratch,
                            nw ? CS_X(t) + no * t->xs0 + nj0 : NULL,
                            nw ? CS_FN(tile_mask)(t, no, nj0) : NULL, nw, pf, t->nt);
    }
}

static void CS_FN(log_softmax_cols)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    const int pf = CS_FN(strips_ahead)(t);
    for (cs_intp k = lo; k < hi; k++) {
        cs_intp o, j0, w = CS_FN(tile_at)(t, k, &o, &j0);
        cs_intp no, nj0, nw = k + 1 < hi ? CS_FN(tile_at)(t, k + 1, &no, &nj0) : 0;
        CS_FN(log_softmax_tile)(CS_X(t) + o * t->xs0 + j0, t->xs1, CS_FN(tile_mask)(t, o, j0), t->ms1,
                                CS_Y(t) + o * t->ys0 + j0, t->ys1, t->C, w, (T *)scratch,
                                nw ? CS_X(t) + no * t->xs0 + nj0 : NULL,
                                nw ? CS_FN(tile_mask)(t, no, nj0) : NULL, nw, pf, t->nt);
    }
}

/* Units: pieces of one long row x of C entries, `piece` entries each.  Each
   piece's max and sum of exp(x - max) go to pmax[p], psum[p] (an all -inf
   piece: -inf and 0; nan when it holds a nan besides -inf); with keep, the
   exponentials to y.  cs_pieces_combine then merges them.  With a mask
   (t->mask unless NULL, contiguous) each piece is first selected into
   scratch (piece entries), masked entries as -inf, as where_rows selects
   rows: their exponentials are 0.  Where softmax_where_rows took such a row
   on one thread, selected whole into its scratch: Intel Xeon (family 6
   model 207), x86-64-v4, float32, 8.2M entries, two threads, softmax 2.9
   against 8.2 ms, log_softmax 3.3 against 9.6. */
static void CS_FN(piece_sumexp)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        const T *x = CS_X(t) + j0;
        if (t->mask != NULL) {
            CS_FN(where_select)(x, n, t->mask + j0, n, (T *)scratch, 1, n);
            x = (const T *)scratch;
        }
        double s;
        T m = CS_FN(row_sumexp)(x, n, t->keep ? CS_Y(t) + j0 : NULL, &s, NULL, NULL);
        if (m == -INFINITY) {
            s = 0.0;
            for (cs_intp j = 0; j < n; j++)
                if (x[j] != -INFINITY) {
                    s = NAN;
                    break;
                }
        }
        t->pmax[p] = m;
        t->psum[p] = s;
    }
}

/* Units: pieces, after cs_pieces_combine: y = exp(x - M) / S, each piece from
   its kept exponentials (scaled by exp(m_p - M) / S) or, without them, from x
   again -- the same bits either way.  With a mask, a masked entry gets 0 (its
   kept exponential is 0 already). */
static void CS_FN(softmax_piece_finish)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        const T *x = CS_X(t) + j0;
        const unsigned char *k = t->mask != NULL ? t->mask + j0 : NULL;
        T *y = CS_Y(t) + j0;
        double mp = t->pmax[p];
        /* an all -inf piece: exp(-inf - M) = 0 */
        T a = (T)(mp == -INFINITY ? t->M : mp);
        T b = (T)(mp == -INFINITY ? 1.0 : exp(mp - t->M) / t->S);
        if (t->keep && mp != -INFINITY) {
#pragma omp simd
            for (cs_intp j = 0; j < n; j++)
                y[j] *= b;
        } else if (k == NULL) {
#pragma omp simd
            for (cs_intp j = 0; j < n; j++)
                y[j] = EXPNEG(x[j] - a) * b;
        } else {
#pragma omp simd
            for (cs_intp j = 0; j < n; j++)
                y[j] = EXPNEG((k[j] ? x[j] : (T)-INFINITY) - a) * b;
        }
    }
}

/* Units: pieces, after cs_pieces_combine: y = (x - M) - log S; with a mask,
   -inf where it is 0. */
static void CS_FN(log_softmax_piece_finish)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    T M = (T)t->M, L = (T)log(t->S);
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        const T *x = CS_X(t) + j0;
        const unsigned char *k = t->mask != NULL ? t->mask + j0 : NULL;
        T *y = CS_Y(t) + j0;
        if (k == NULL) {
#pragma omp simd
            for (cs_intp j = 0; j < n; j++)
                y[j] = (x[j] - M) - L;
        } else {
#pragma omp simd
            for (cs_intp j = 0; j < n; j++)
                y[j] = k[j] ? (x[j] - M) - L : (T)-INFINITY;
        }
    }
}

/* Units: pieces of one long row (x: the softmax output, g: grad_output),
   `piece` entries each, as the forward's long row: psum[p] = the piece's
   sum of g s (row_dot's).  With d the pieces' sums added (cs_sum, into
   t->S), softmax_backward_piece_finish writes out = s (g - d); out may be
   s or g.  Where the row kernel took such a row on one thread: Intel Xeon
   (family 6 model 207), x86-64-v4, 8.2M entries, two threads, ms:
   softmax_backward float32 3.1 against 6.1, float64 8.2 against 16.9;
   log_softmax_backward float32 2.9 against 5.5, float64 7.2 against 16.4
   (two passes over memory: the row's sum must be known before any output
   entry, where the row kernel's rows are read again from cache). */
static void CS_FN(softmax_backward_pieces)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        t->psum[p] = CS_FN(row_dot)(CS_G(t) + j0, CS_X(t) + j0, n);
    }
}

static void CS_FN(softmax_backward_piece_finish)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    const T d = (T)t->S;
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        CS_FN(bwd_out_row)(CS_X(t) + j0, CS_G(t) + j0, CS_Y(t) + j0, n, d);
    }
}

/* The same for log_softmax_backward (x: the log-softmax output l):
   psum[p] = the piece's sum of g, pmax[p] = 1 where it holds an l above 0
   (else 0; log_backward_sum's, as a row's); log_softmax_backward_piece_finish writes out = g - exp(l) k, k
   the pieces' sums added, the exponential EXPNEG_FMA in a piece with no l
   above 0 where CS_LOG_BWD_NEG (as the row kernels choose it). */
static void CS_FN(log_softmax_backward_pieces)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        int pos;
        t->psum[p] = CS_FN(log_backward_sum)(CS_X(t) + j0, CS_G(t) + j0, n, &pos);
        t->pmax[p] = pos;
    }
}

static void CS_FN(log_softmax_backward_piece_finish)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    const T k = (T)t->S;
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        if (CS_LOG_BWD_NEG && t->pmax[p] == 0)
            CS_FN(log_backward_fma_row)(CS_X(t) + j0, CS_G(t) + j0, CS_Y(t) + j0, n, k);
        else
            CS_FN(log_backward_exp_row)(CS_X(t) + j0, CS_G(t) + j0, CS_Y(t) + j0, n, k);
    }
}

/* Units: rows (x: the softmax or log-softmax output, g: grad_output). */
static void CS_FN(softmax_backward_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    CS_FN(softmax_backward_block)(CS_X(t) + lo * t->xs0, t->xs0, CS_G(t) + lo * t->gs0, t->gs0,
                                  CS_Y(t) + lo * t->ys0, t->ys0, hi - lo, t->C, CS_FN(streams)(t));
}

static void CS_FN(log_softmax_backward_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    CS_FN(log_softmax_backward_block)(CS_X(t) + lo * t->xs0, t->xs0, CS_G(t) + lo * t->gs0, t->gs0,
                                      CS_Y(t) + lo * t->ys0, t->ys0, hi - lo, t->C, CS_FN(streams)(t));
}

/* float32 tiles of more than CS_BWD_PF_BYTES in a call whose outer blocks
   stream from memory prefetch their strips a few classes ahead, in both
   passes (a tile read in place does not stay in L2 between them when its
   strips share a few cache sets).  Two threads, AMD Zen 4, over axis 0, ms,
   against no prefetching: x86-64-v4 softmax_backward (8192, 1000) 6.3-6.4
   against 8.9-9.0, (2000, 4096) 4.5-4.8 against 5.0-5.1, (1000, 8192)
   4.5 against 4.4-4.5; log_softmax_backward (2000, 4096) 5.8-6.1 against
   9.7-10.1, (8192, 1000) 8.0-8.7 against 7.0-9.8; x86-64-v3
   softmax_backward (8192, 1000) 8.6-8.7 against 9.4-9.8,
   log_softmax_backward (2000, 4096) 6.8-7.4 against 8.7.  Smaller tiles
   (C = 100, 256) and float64 ((1000, 4096): 4.8-4.9 against 3.9-4.5) lost. */
#define CS_BWD_PF_BYTES ((cs_intp)512 << 10)
static inline int CS_FN(bwd_strips_ahead)(const cs_task *t)
{
    return sizeof(T) == 4 && CS_FN(cols_stream)(t) && t->C * t->W * (cs_intp)sizeof(T) > CS_BWD_PF_BYTES;
}

/* Units: tiles, as for softmax_cols (x, g and y share the tiling; no scratch). */
static void CS_FN(softmax_backward_cols)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    const int pf = CS_FN(bwd_strips_ahead)(t);
    for (cs_intp k = lo; k < hi; k++) {
        cs_intp o, j0, w = CS_FN(tile_at)(t, k, &o, &j0);
        if (pf)
            CS_FN(softmax_backward_tile)(CS_X(t) + o * t->xs0 + j0, t->xs1, CS_G(t) + o * t->gs0 + j0, t->gs1,
                                         CS_Y(t) + o * t->ys0 + j0, t->ys1, t->C, w, 1);
        else
            CS_FN(softmax_backward_tile)(CS_X(t) + o * t->xs0 + j0, t->xs1, CS_G(t) + o * t->gs0 + j0, t->gs1,
                                         CS_Y(t) + o * t->ys0 + j0, t->ys1, t->C, w, 0);
    }
}

static void CS_FN(log_softmax_backward_cols)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    const int pf = CS_FN(bwd_strips_ahead)(t);
    for (cs_intp k = lo; k < hi; k++) {
        cs_intp o, j0, w = CS_FN(tile_at)(t, k, &o, &j0);
        if (pf)
            CS_FN(log_softmax_backward_tile)(CS_X(t) + o * t->xs0 + j0, t->xs1, CS_G(t) + o * t->gs0 + j0,
                                             t->gs1, CS_Y(t) + o * t->ys0 + j0, t->ys1, t->C, w, 1);
        else
            CS_FN(log_softmax_backward_tile)(CS_X(t) + o * t->xs0 + j0, t->xs1, CS_G(t) + o * t->gs0 + j0,
                                             t->gs1, CS_Y(t) + o * t->ys0 + j0, t->ys1, t->C, w, 0);
    }
}

/* Units: rows of x; y holds a contiguous C x C block per row. */
static void CS_FN(jacobian_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    CS_FN(jacobian_block)(CS_X(t) + lo * t->xs0, t->xs0, CS_Y(t) + lo * t->C * t->C, hi - lo, t->C);
}

/* Units: rows of logits x against labels (class indices) or targets g
   (probabilities); loss[i] per row, the gradient into y unless y is NULL. */
/* A row labelled `ignore` adds nothing and gets a zero gradient. */
static inline void CS_FN(ce_ignored_row)(const cs_task *t, cs_intp i)
{
    t->loss[i] = 0.0;
    if (t->y != NULL) {
        T *g = CS_Y(t) + i * t->ys0;
        for (cs_intp j = 0; j < t->C; j++)
            g[j] = 0;
    }
}

/* The labels' check, before the cross-entropy kernel writes anything: for
   each unit of CS_SCAN labels, the index of the first outside [0, C) other
   than `ignore` (or -1), and how many are `ignore`.  The pass is one vector
   loop (the unsigned compare takes both ends of the range); only a unit with
   a bad label is read again, for its index.  The same for either dtype. */
static void CS_FN(label_scan)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    const cs_intp *label = t->label, ignore = t->ignore;
    const size_t C = (size_t)t->C;
    for (cs_intp u = lo; u < hi; u++) {
        cs_intp i0 = u * CS_SCAN, i1 = t->nlabel - i0 > CS_SCAN ? i0 + CS_SCAN : t->nlabel;
        cs_intp bad = 0, k = 0;
#pragma omp simd reduction(| : bad) reduction(+ : k)
        for (cs_intp i = i0; i < i1; i++) {
            cs_intp ig = label[i] == ignore;
            bad |= ((size_t)label[i] >= C) & !ig;
            k += ig;
        }
        cs_intp first = -1;
        for (cs_intp i = i0; bad && i < i1; i++)
            if ((size_t)label[i] >= C && label[i] != ignore) {
                first = i;
                break;
            }
        t->scan[2 * u] = first;
        t->scan[2 * u + 1] = k;
    }
}

static void CS_FN(ce_index_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    /* wide rows go one at a time anyway: the runs between ignored rows are
       computed, the ignored ones only zeroed; narrow blocks are computed
       whole and their ignored rows zeroed after */
    const int wide = t->C > CS_NARROW;
    for (cs_intp i = lo; i < hi;) {
        cs_intp j = i, next = hi;
        while (j < hi && (!wide || t->label[j] != t->ignore))
            j++;
        for (cs_intp a = j + 1; a < hi && next == hi; a++)   /* the next run's first row */
            if (t->label[a] != t->ignore)
                next = a;
        if (j > i)
            CS_FN(ce_index_block)(CS_X(t) + i * t->xs0, t->xs0, t->label + i,
                                  t->y != NULL ? CS_Y(t) + i * t->ys0 : NULL, t->ys0,
                                  t->rscale != NULL ? t->rscale + i : NULL, t->gscale, t->loss + i, j - i, t->C,
                                  t->cweight, (const T *)t->cweight_t, t->cwsum, t->smooth, CS_FN(big_call)(t),
                                  next < hi ? CS_X(t) + next * t->xs0 : NULL);
        if (j < hi)
            CS_FN(ce_ignored_row)(t, j++);
        i = j;
    }
    if (!wide)
        for (cs_intp i = lo; i < hi; i++)
            if (t->label[i] == t->ignore)
                CS_FN(ce_ignored_row)(t, i);
}

static void CS_FN(ce_prob_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    CS_FN(ce_prob_block)(CS_X(t) + lo * t->xs0, t->xs0, CS_G(t) + lo * t->gs0, t->gs0,
                         t->y != NULL ? CS_Y(t) + lo * t->ys0 : NULL, t->ys0,
                         t->rscale != NULL ? t->rscale + lo : NULL, t->gscale, t->loss + lo, hi - lo, t->C,
                         t->cweight, t->smooth, CS_FN(big_call)(t));
}


/* ---- logsumexp ---- */

/* The next row's max inside a plain row's sum loop (lse_row), as row_max
   takes it: over integer keys under clang, a compare-select under GCC. */
#ifndef CS_LSE_NEXT_MAX_BEGIN
#if defined(__clang__)
#define CS_LSE_NEXT_MAX_BEGIN                                                   \
    const TI *nu_ = (const TI *)(const void *)nx;                               \
    TI nk_ = CS_KEY_MIN;
#define CS_LSE_NEXT_MAX_RED reduction(max : nk_)
#define CS_LSE_NEXT_MAX_STEP                                                    \
    {                                                                           \
        TI v_ = CS_FN(key)(nu_[j]);                                             \
        nk_ = v_ > nk_ ? v_ : nk_;                                              \
    }
#define CS_LSE_NEXT_MAX_END *nmax = CS_FN(unkey)(nk_);
#else
#define CS_LSE_NEXT_MAX_BEGIN T nm_ = nx[0];
#define CS_LSE_NEXT_MAX_RED reduction(max : nm_)
#define CS_LSE_NEXT_MAX_STEP nm_ = nx[j] > nm_ ? nx[j] : nm_;
#define CS_LSE_NEXT_MAX_END *nmax = nm_;
#endif
#endif

/* One row of n entries x (weights b unless NULL; mask k unless NULL, an entry
   whose k is 0 takes no part; all stride 1): log |sum_j b_j exp(x_j)| and its
   sign, as scipy.special.logsumexp computes them.  Entries with b_j = 0 take
   no part either.  The max M is taken out exactly.  float64: with m the
   (weighted) count of entries equal to M and s the sum over the others of
   b_j exp(x_j - M), the result is M + log m + log1p(s / m), so that a sum
   dominated by its largest term keeps the others' part.  float32: the sum of
   all b_j exp(x_j - M), taken in double, holds that part already (29 more
   bits than float): M + log sum.  Where the result is not finite (an
   infinite entry, a nan, a sum that cancels), the plain log of the sum
   (lse_fallback).

   lse_max takes M (the entries that take part); lse_row the rest, given M.
   A plain row (b and k NULL) also takes, in its sum loop, the max of the
   next row nx of n entries into *nmax: the next row is read from memory
   while this one's exponentials run from L1, where a max pass of its own
   would leave the memory idle during the sums.  The same bits; AMD Zen 4,
   x86-64-v4, kernel-only, (8192, 1000) on two threads, ns an entry, min of
   interleaved rounds: float64 0.39-0.48 against 0.47-0.62, float32 0.17
   against 0.25; C = 100 float64 0.78 against 0.84-0.90; in cache (409600
   entries, one thread) float64 0.73 against 0.81.  nx may be the row itself
   (the last row of a range), so that every plain row runs the same loop. */
static inline T CS_FN(lse_max)(const T *x, const T *b, const unsigned char *k, cs_intp n)
{
    T M = -INFINITY;
    if (b == NULL && k == NULL) {
        M = CS_FN(row_max)(x, n);
#if defined(__clang__)
    } else {    /* integer keys, as row_max; an entry that takes no part is -inf */
        const TI *u = (const TI *)(const void *)x;
        TI none, kmax;
        memcpy(&none, &M, sizeof M);
        kmax = none = CS_FN(key)(none);
#pragma omp simd reduction(max : kmax)
        for (cs_intp j = 0; j < n; j++) {
            TI v = ((k == NULL || k[j]) && (b == NULL || b[j] != 0)) ? CS_FN(key)(u[j]) : none;
            kmax = v > kmax ? v : kmax;
        }
        M = CS_FN(unkey)(kmax);
    }
#else
    } else if (k == NULL) {
#pragma omp simd reduction(max : M)
        for (cs_intp j = 0; j < n; j++)
            M = (b[j] != 0 && x[j] > M) ? x[j] : M;
    } else if (b == NULL) {     /* a masked entry is read as -inf */
#pragma omp simd reduction(max : M)
        for (cs_intp j = 0; j < n; j++) {
            T v = k[j] ? x[j] : (T)-INFINITY;
            M = v > M ? v : M;
        }
    } else {
#pragma omp simd reduction(max : M)
        for (cs_intp j = 0; j < n; j++) {
            T v = (k[j] && b[j] != 0) ? x[j] : (T)-INFINITY;
            M = v > M ? v : M;
        }
    }
    CS_MAX_FIX(T, M, n, (b == NULL || b[j_] != 0) && (k == NULL || k[j_]), x[j_]);
#endif
    return M;
}

/* A row whose result is not finite (a max or an entry that is not finite, a
   sum that cancels to 0): M' + log |sum_j b_j exp(x_j - M')| over its n
   entries (xs apart; the weights b, xs apart too, and the mask k,
   contiguous, unless NULL), with M' the max M where it is finite and 0
   where not, and the sum's sign (nan for a nan).  The sum is the plain one,
   in double, its rounding errors kept: weights that cancel at the max leave
   a sum far below its terms, which a chain of n additions would bury under
   n roundings of the largest (a row of 16385 entries, 1 and -1 at the max
   and the rest 30 below it, was 1e-3 off).  With exp(x_j - M), terms at the
   max are the weights themselves, so weights that cancel there give 0
   (-inf), not their rounding errors' residue.  An entry of weight 0, or
   masked, takes no part even where x is infinite or nan (0 * inf would make
   the sum nan). */
static inline double CS_FN(lse_fallback)(const T *x, cs_intp xs, const T *b, const unsigned char *k, cs_intp n,
                                         T M, double *sign)
{
    const double sh = isfinite(M) ? (double)M : 0.0;
    double tot = 0.0, err = 0.0;
    for (cs_intp j = 0; j < n; j++)
        if ((k == NULL || k[j]) && (b == NULL || b[j * xs] != 0))
            cs_two_sum(&tot, &err, (b == NULL ? 1.0 : (double)b[j * xs]) * exp((double)x[j * xs] - sh));
    if (isfinite(err))
        tot += err;
    *sign = tot > 0 ? 1.0 : tot < 0 ? -1.0 : tot == 0 ? 0.0 : NAN;
    return log(fabs(tot)) + sh;
}

#if CS_TR && CS_VEC_BYTES >= 64
/* One step of lse_sums_d8: the 8 entries at x into sc (their exponentials
   less M, where not equal to M) and mc (a count of those equal to M), only
   the lanes set in keep; the next row's 8 at nx into nm's running max, as
   a compare-select (a nan is passed over, as lse_sums's loop does).  (M
   and keep through pointers, as expneg_tab_d8's vectors.) */
CS_INLINE void CS_FN(lse_step_d8)(const CS_FN(exp_tab) *tab, const double *x, const double *nx, const cs_d8 *M,
                                  const cs_l8 *keep, cs_d8 *sc, cs_d8 *mc, cs_d8 *nm)
{
    cs_d8 v, w, e;
    memcpy(&v, x, sizeof v);
    memcpy(&w, nx, sizeof w);
    const cs_d8 d = v - *M, one = {1, 1, 1, 1, 1, 1, 1, 1};
    CS_FN(expneg_tab_d8)(tab, &d, &e);
    const cs_l8 eq = v == *M, up = w > *nm;
    *sc += (cs_d8)((cs_l8)e & *keep & ~eq);
    *mc += (cs_d8)((cs_l8)one & *keep & eq);
    *nm = (cs_d8)(((cs_l8)w & up) | ((cs_l8)*nm & ~up));
}

/* lse_sums of a plain float64 row of n >= 8 entries, M finite (see there),
   8 lanes at a time through expneg_tab_d8: the chunks are lse_sums's, each
   one's sums added across its lanes at its end; the row's last n % 8
   entries are the high lanes of a step over its last 8, the others masked
   off.  The next row nx's max comes in the same loop.  Against lse_sums's
   own loop (cs_expneg_f64), Intel Xeon (family 6 model 207), the call
   with out=, medians of 9 interleaved bursts: (8192, 1000) two threads 0.88
   of the time, (409, 1000) one thread 0.82, (800, 512) 0.88, (40, 10000)
   0.91, (12, 32768) two threads 0.84. */
CS_INLINE void CS_FN(lse_sums_d8)(const double *x, cs_intp n, double M, const double *nx, double *nmax,
                                  double *m_out, double *s_out)
{
    CS_FN(exp_tab) tab;
    CS_FN(exp_tab_load)(&tab);
    const cs_d8 zero = {0}, Mv = zero + M;
    const cs_l8 lane = {0, 1, 2, 3, 4, 5, 6, 7}, all = lane >= 0;
    cs_d8 nm = zero + nx[0];
    double s = 0.0, m = 0.0, se = 0.0, me = 0.0;
    for (cs_intp j0 = 0; j0 < n; j0 += CS_ROW_CHUNK) {
        const cs_intp j1 = n - j0 > CS_ROW_CHUNK ? j0 + CS_ROW_CHUNK : n;
        cs_d8 sc = zero, mc = zero;
        cs_intp j = j0;
        for (; j + 8 <= j1; j += 8)
            CS_FN(lse_step_d8)(&tab, x + j, nx + j, &Mv, &all, &sc, &mc, &nm);
        if (j < j1) {
            const cs_l8 last = lane >= 8 - (j1 - j);
            CS_FN(lse_step_d8)(&tab, x + n - 8, nx + n - 8, &Mv, &last, &sc, &mc, &nm);
        }
        cs_two_sum(&s, &se, CS_FN(d8_sum)(&sc));
        cs_two_sum(&m, &me, CS_FN(d8_sum)(&mc));
    }
    double best = nm[0];
    for (int l = 1; l < 8; l++)
        best = nm[l] > best ? nm[l] : best;
    *nmax = best;
    *m_out = m + me;
    *s_out = s + se;
}
#endif

/* lse_row's sums, M finite: float32, *s = sum_j b_j exp(x_j - M) over all
   the entries and *m = 0; float64, *m = the weights of the entries equal to
   M and *s = the sum over the others. */
CS_INLINE void CS_FN(lse_sums)(const T *x, const T *b, const unsigned char *k, cs_intp n, T M,
                               const T *nx, T *nmax, double *m_out, double *s_out)
{
    double s = 0.0, m = 0.0;
    if (sizeof(T) == 4) {
        if (b == NULL && k == NULL) {
            CS_LSE_NEXT_MAX_BEGIN
#pragma omp simd reduction(+ : s) CS_LSE_NEXT_MAX_RED
CS_FLOAT_LANES
            for (cs_intp j = 0; j < n; j++) {
                s += EXPNEG(x[j] - M);
                CS_LSE_NEXT_MAX_STEP
            }
            CS_LSE_NEXT_MAX_END
        } else if (k == NULL) {
#pragma omp simd reduction(+ : s)
            for (cs_intp j = 0; j < n; j++)
                s += (double)b[j] * (b[j] != 0 ? EXPNEG(x[j] - M) : (T)0);
        } else if (b == NULL) {   /* exp(-inf) = 0 */
#pragma omp simd reduction(+ : s)
CS_FLOAT_LANES
            for (cs_intp j = 0; j < n; j++)
                s += EXPNEG((k[j] ? x[j] : (T)-INFINITY) - M);
        } else {
#pragma omp simd reduction(+ : s)
            for (cs_intp j = 0; j < n; j++) {
                T w = k[j] ? b[j] : (T)0;
                s += (double)w * (w != 0 ? EXPNEG(x[j] - M) : (T)0);
            }
        }
    } else {
        /* chunks of CS_ROW_CHUNK entries, their totals added with their
           rounding errors kept, as row_sumexp_at adds a row's: a long row's
           sum is not a chain of n / lanes terms (rows of 10^5 equal terms
           were 150 ulp off) */
#if CS_TR && CS_VEC_BYTES >= 64
        if (b == NULL && k == NULL && n >= 8) {
            double nm;
            CS_FN(lse_sums_d8)((const double *)(const void *)x, n, (double)M, (const double *)(const void *)nx,
                               &nm, m_out, s_out);
            *nmax = (T)nm;
            return;
        }
#endif
        double se = 0.0, me = 0.0;
        CS_LSE_NEXT_MAX_BEGIN
        for (cs_intp j0 = 0; j0 < n; j0 += CS_ROW_CHUNK) {
            const cs_intp j1 = n - j0 > CS_ROW_CHUNK ? j0 + CS_ROW_CHUNK : n;
            double sc = 0.0, mc = 0.0;
            if (b == NULL && k == NULL) {
#pragma omp simd reduction(+ : sc, mc) CS_LSE_NEXT_MAX_RED
                for (cs_intp j = j0; j < j1; j++) {
                    double e = EXPNEG(x[j] - M);
                    sc += x[j] != M ? e : 0.0;
                    mc += x[j] == M ? 1.0 : 0.0;
                    CS_LSE_NEXT_MAX_STEP
                }
            } else if (k == NULL) {
                /* the weights-and-mask loop below without k, which spilled
                   registers (float64 C = 1000, one thread: 1.25-1.39 against
                   4.04 ns an entry) */
#pragma omp simd reduction(+ : sc, mc)
                for (cs_intp j = j0; j < j1; j++) {
                    double w = (double)b[j];
                    double e = w != 0 ? w * EXPNEG(x[j] - M) : 0.0;
                    sc += x[j] != M ? e : 0.0;
                    mc += x[j] == M ? w : 0.0;
                }
            } else if (b == NULL) {
#pragma omp simd reduction(+ : sc, mc)
                for (cs_intp j = j0; j < j1; j++) {
                    T v = k[j] ? x[j] : (T)-INFINITY;
                    double e = EXPNEG(v - M);
                    sc += v != M ? e : 0.0;
                    mc += v == M ? 1.0 : 0.0;
                }
            } else {
#pragma omp simd reduction(+ : sc, mc)
                for (cs_intp j = j0; j < j1; j++) {
                    double w = k[j] ? (double)b[j] : 0.0;
                    double e = w != 0 ? w * EXPNEG(x[j] - M) : 0.0;
                    sc += x[j] != M ? e : 0.0;
                    mc += x[j] == M ? w : 0.0;
                }
            }
            cs_two_sum(&s, &se, sc);
            cs_two_sum(&m, &me, mc);
        }
        if (b == NULL && k == NULL) {
            CS_LSE_NEXT_MAX_END
        }
        s += se;
        m += me;
    }
    *m_out = m;
    *s_out = s;
}

static inline double CS_FN(lse_row)(const T *x, const T *b, const unsigned char *k, cs_intp n, T M,
                                    const T *nx, T *nmax, double *sign)
{
    if (b == NULL && k == NULL && !isfinite(M))
        *nmax = CS_FN(row_max)(nx, n);
    double s, m, out = NAN, sg = NAN;
    if (isfinite(M)) {
        CS_FN(lse_sums)(x, b, k, n, M, nx, nmax, &m, &s);
        out = cs_lse_from_sums(sizeof(T) == 8, (double)M, m, s, &sg);
    }
    if (!isfinite(out))
        out = CS_FN(lse_fallback)(x, 1, b, k, n, M, &sg);
    *sign = sg;
    return out;
}

/* Row i's result v and its sign sg into the task: sign[i] unless sign is
   NULL, else y[i] is nan where sg is negative. */
static inline void CS_FN(lse_put)(const cs_task *t, cs_intp i, double v, double sg)
{
    if (t->sign != NULL)
        ((T *)t->sign)[i * t->ys0] = (T)sg;
    else if (sg < 0)
        v = NAN;
    CS_Y(t)[i * t->ys0] = (T)v;
}

/* Row i of the task through lse_row (its own max): the weighted and masked
   rows. */
static inline void CS_FN(lse_one)(const cs_task *t, cs_intp i)
{
    const T *x = CS_X(t) + i * t->xs0;
    const T *b = t->g != NULL ? CS_G(t) + i * t->gs0 : NULL;
    const unsigned char *k = t->mask != NULL ? t->mask + i * t->ms0 : NULL;
    T nmax;
    double sg, v = CS_FN(lse_row)(x, b, k, t->C, CS_FN(lse_max)(x, b, k, t->C), x, &nmax, &sg);
    CS_FN(lse_put)(t, i, v, sg);
}

/* Narrow rows (C <= CS_LSE_NARROW) a block at a time, transposed as the
   forward's narrow rows are (narrow_load; with a mask, where_select first,
   its masked entries as -inf; with weights, weights_select and lse_lanes_w,
   its entries of weight 0 as -inf), so that the exponentials, the sums and
   the logarithms run down the block's rows in whole vectors, where a row at
   a time paid its loop set-up, its reductions and a libm logarithm
   for a few entries (float32 at C = 10: 3.4 ns an entry against PyTorch's
   1.8).  The same results as lse_row, by other roundings: float32 M + log S
   with S in double; float64 M + log(c + s) with c the count of entries equal
   to M and s the sum of the others' exponentials, c + s rounded and its
   rounding error e added back as e / (c + s), which keeps what log1p(s / c)
   keeps of a sum dominated by its largest terms.  A row whose result is not
   finite (a max or an entry that is not finite, weights that cancel) is done
   again by lse_fallback, as lse_row does such a row, which gives it its sign
   and SciPy's value.  Columns of a strided class axis go the same way
   (logsumexp_cols).
   Up to C = 64 (the block then still holds 16 rows), where a row at a time
   was slower at every level: kernel-only, one thread, 409600 entries, ns an
   entry, AMD Zen 4, x86-64-v4: float32 C = 10 0.62 against 6.0, C = 48 0.71
   against 1.55, float64 C = 10 1.12 against 6.0, C = 64 1.05 against 1.26;
   x86-64-v3 float32 C = 10 0.80 against 3.2, float64 C = 64 even; baseline
   float64 C = 64 4.1 against 5.2.  With a mask (where=), where a row at a time
   went through lse_row: the call on one thread, 409600 entries, float32
   C = 10 0.99 against 4.0-4.5 ns an entry, float64 1.73 against 5.0-5.4;
   with weights, C = 10 float32 1.63 against 9.3, float64 2.33 against 10-11. */
#define CS_LSE_NARROW 64

/* Whether any of the n results v is not finite (v - v is 0 only for a
   finite v): such a row must be done again (lse_fallback). */
static inline int CS_FN(lse_some_odd)(const double *v, cs_intp n)
{
    int some = 0;
#pragma omp simd reduction(| : some)
    for (cs_intp r = 0; r < n; r++)
        some |= !(v[r] - v[r] == 0);
    return some;
}

/* One entry x of a float64 row whose max is m into lse_lanes's sums: its
   exponential into *s, or where it is the max, a count of 1 into *c. */
CS_INLINE void CS_FN(lse_term)(T x, T m, double *s, double *c)
{
    double ex = EXPNEG(x - m);
    *s += x != m ? ex : 0.0;
    *c += x == m ? 1.0 : 0.0;
}

/* v[r] = log sum_j exp(t[j * nb + r]) for nb <= max(CS_TILE, CS_BLOCK) rows
   (or columns) laid out down t, m[r] their max; a v[r] that is not finite
   means the row must be done again (lse_fallback).  Returns whether any is
   so.  For each j it prefetches into L2 the pw entries at px + j * pxs
   unless px is NULL (logsumexp_cols: the next tile).  A call, not inlined
   into its two callers: one copy of its exponential loops per level and
   dtype keeps the wheel smaller, and a call a block costs nothing that
   shows. */
CS_NOINLINE int CS_FN(lse_lanes)(const T *tb, cs_intp nb, cs_intp C, const T *m, double *v,
                                   const T *px, cs_intp pxs, cs_intp pw)
{
    double s[CS_TILE > CS_BLOCK ? CS_TILE : CS_BLOCK], c[CS_TILE > CS_BLOCK ? CS_TILE : CS_BLOCK];
    if (sizeof(T) == 4) {
        CS_FN(narrow_sumexp_at)(tb, NULL, nb, C, m, s, px, pxs, pw);
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            v[r] = (double)m[r] + cs_log_sum(s[r]);
    } else {
        /* a column of more than CS_LSE_NARROW classes (logsumexp_cols) in
           chunks of that many: the first summed into s, each later one into
           p, then added into s with its rounding error kept in e, as lse_row
           does a long row's (a row of the block, C <= CS_LSE_NARROW, is one
           chunk and goes straight into s: through p and e too, C = 10 took
           3 % longer) */
        double p[CS_TILE > CS_BLOCK ? CS_TILE : CS_BLOCK], e[CS_TILE > CS_BLOCK ? CS_TILE : CS_BLOCK];
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            s[r] = c[r] = 0.0;
        if (C <= CS_LSE_NARROW && nb <= 16 && nb % CS_VL == 0) {
            /* A short block (16 rows: C = 33 to 64) a vector of rows at a
               time down all C classes, its sums in registers, where the loop
               across the block kept them in memory and ran two vectors a
               class: the same additions in the same order.  Intel Xeon
               (family 6 model 207), the call on one thread, 409600 entries,
               medians of 9 interleaved bursts, x86-64-v4 C = 33 0.93-0.94
               of the time, C = 48 0.84-0.89, C = 64 0.87-0.95; x86-64-v3
               C = 48 0.94, C = 64 0.96; baseline even.  Longer blocks keep
               the loop across them (C = 10, 96 rows: x86-64-v3 1.11 of the
               time this way). */
            for (cs_intp r0 = 0; r0 < nb; r0 += CS_VL) {
                double sa[CS_VL], ca[CS_VL];
                T mr[CS_VL];
#pragma omp simd
                for (int l = 0; l < CS_VL; l++) {
                    sa[l] = ca[l] = 0.0;
                    mr[l] = m[r0 + l];
                }
                for (cs_intp j = 0; j < C; j++) {
                    const T *tj = tb + j * nb + r0;
                    if (r0 == 0)
                        CS_FN(prefetch_class)(px, pxs, pw, j);
#pragma omp simd
                    for (int l = 0; l < CS_VL; l++)
                        CS_FN(lse_term)(tj[l], mr[l], &sa[l], &ca[l]);
                }
#pragma omp simd
                for (int l = 0; l < CS_VL; l++) {
                    s[r0 + l] = sa[l];
                    c[r0 + l] = ca[l];
                }
            }
        } else {
            for (cs_intp j0 = 0; j0 < C; j0 += CS_LSE_NARROW) {
                const cs_intp j1 = C - j0 > CS_LSE_NARROW ? j0 + CS_LSE_NARROW : C;
                double *acc = j0 == 0 ? s : p;
                const cs_intp later = j0 == 0 ? 0 : nb;    /* p's rows, none for the first chunk */
#pragma omp simd
                for (cs_intp r = 0; r < later; r++)
                    p[r] = 0.0;
                for (cs_intp j = j0; j < j1; j++) {
                    const T *tj = tb + j * nb;
                    CS_FN(prefetch_class)(px, pxs, pw, j);
#pragma omp simd
                    for (cs_intp r = 0; r < nb; r++)
                        CS_FN(lse_term)(tj[r], m[r], &acc[r], &c[r]);
                }
                if (j0 == CS_LSE_NARROW) {
#pragma omp simd
                    for (cs_intp r = 0; r < nb; r++)
                        e[r] = 0.0;
                }
#pragma omp simd
                for (cs_intp r = 0; r < later; r++)
                    cs_two_sum(&s[r], &e[r], p[r]);
            }
            if (C > CS_LSE_NARROW) {
#pragma omp simd
                for (cs_intp r = 0; r < nb; r++)
                    s[r] += e[r];
            }
        }
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++) {
            double tot = c[r], err = 0.0;
            cs_two_sum(&tot, &err, s[r]);
            v[r] = (double)m[r] + (cs_log_sum(tot) + err / tot);
        }
    }
    return CS_FN(lse_some_odd)(v, nb);
}

/* lse_lanes for weighted rows: v[r] = m[r] + log |sum_j w[j, r] exp(t[j, r] -
   m[r])|, sg[r] the sum's sign, for nb <= max(CS_TILE, CS_BLOCK) rows (or
   columns) laid out down tb and wb (an entry of weight 0 is -inf in tb),
   m[r] the max of the entries of nonzero weight.  float32: the sum in
   double, as lse_row's.  float64: c, the weights of the entries equal to
   m[r], and s, the others' terms, taken apart as in lse_lanes, c + s with
   its rounding error added back; a column of more than CS_LSE_NARROW
   classes (logsumexp_cols) sums both in chunks of that many, as lse_lanes
   does, the chunks added with their rounding errors kept.  The logarithm is
   libm's, a row at a time: a weighted sum need not be >= 1 (cs_log_sum's
   range), nor positive.  A v[r] that is not finite (a sum that cancels to 0
   among them) means the row must be done again, as there. */
CS_NOINLINE int CS_FN(lse_lanes_w)(const T *tb, const T *wb, cs_intp nb, cs_intp C, const T *m,
                                     double *v, double *sg)
{
    enum { NB = CS_TILE > CS_BLOCK ? CS_TILE : CS_BLOCK };
    double s[NB], c[NB];
#pragma omp simd
    for (cs_intp r = 0; r < nb; r++)
        s[r] = c[r] = 0.0;
    if (sizeof(T) == 4) {
        for (cs_intp j = 0; j < C; j++) {
            const T *tj = tb + j * nb, *wj = wb + j * nb;
#pragma omp simd
CS_FLOAT_LANES
            for (cs_intp r = 0; r < nb; r++)
                s[r] += (double)wj[r] * (double)EXPNEG(tj[r] - m[r]);
        }
    } else {
        /* the first chunk straight into s and c, each later one into p and
           q, then added into them with its rounding errors kept in se, ce */
        double p[NB], q[NB], se[NB], ce[NB];
        for (cs_intp j0 = 0; j0 < C; j0 += CS_LSE_NARROW) {
            const cs_intp j1 = C - j0 > CS_LSE_NARROW ? j0 + CS_LSE_NARROW : C;
            double *as = j0 == 0 ? s : p, *ac = j0 == 0 ? c : q;
            const cs_intp later = j0 == 0 ? 0 : nb;
#pragma omp simd
            for (cs_intp r = 0; r < later; r++)
                p[r] = q[r] = 0.0;
            for (cs_intp j = j0; j < j1; j++) {
                const T *tj = tb + j * nb, *wj = wb + j * nb;
#pragma omp simd
                for (cs_intp r = 0; r < nb; r++) {
                    double e = (double)wj[r] * EXPNEG(tj[r] - m[r]);
                    as[r] += tj[r] != m[r] ? e : 0.0;
                    ac[r] += tj[r] == m[r] ? (double)wj[r] : 0.0;
                }
            }
            if (j0 == CS_LSE_NARROW) {
#pragma omp simd
                for (cs_intp r = 0; r < nb; r++)
                    se[r] = ce[r] = 0.0;
            }
#pragma omp simd
            for (cs_intp r = 0; r < later; r++) {
                cs_two_sum(&s[r], &se[r], p[r]);
                cs_two_sum(&c[r], &ce[r], q[r]);
            }
        }
        if (C > CS_LSE_NARROW) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                s[r] += se[r], c[r] += ce[r];
        }
    }
    int some = 0;
    for (cs_intp r = 0; r < nb; r++) {
        double tot = c[r], err = 0.0;
        cs_two_sum(&tot, &err, s[r]);
        sg[r] = tot > 0 ? 1.0 : tot < 0 ? -1.0 : 0.0;
        v[r] = (double)m[r] + (log(fabs(tot)) + err / tot);
        some |= !(v[r] - v[r] == 0);
    }
    return some;
}

/* The results v of nb rows (or columns) into y, their signs (sg, or 1 if
   NULL; the fallback's where it is taken) into sign unless NULL, else a
   result of negative sign becomes nan as in lse_one; y and sign stride ys.
   Where v is not finite (some says whether any is), the fallback over the
   row's n entries, rows xs0 apart and entries xs1 apart within a row, with
   their weights b (rows bs apart, entries xs1 apart) and mask k (rows ks
   apart, entries contiguous) unless NULL, and their max m[r] (the
   fallback's shift where finite). */
static inline void CS_FN(lse_store)(const double *v, const double *sg, cs_intp nb, int some, T *y, T *sign,
                                    cs_intp ys, const T *x, cs_intp xs0, cs_intp xs1, cs_intp n, const T *b,
                                    cs_intp bs, const unsigned char *k, cs_intp ks, const T *m)
{
    for (cs_intp r = 0; r < nb; r++) {
        double g = sg != NULL ? sg[r] : 1.0;
        if (sign != NULL)
            sign[r * ys] = (T)g;
        y[r * ys] = sign == NULL && g < 0 ? (T)NAN : (T)v[r];
    }
    for (cs_intp r = 0; some && r < nb; r++) {
        if (v[r] - v[r] == 0)
            continue;
        const T *br = b != NULL ? b + r * bs : NULL;
        const unsigned char *kr = k != NULL ? k + r * ks : NULL;
        double g, w = CS_FN(lse_fallback)(x + r * xs0, xs1, br, kr, n, m[r], &g);
        if (sign != NULL)
            sign[r * ys] = (T)g;
        y[r * ys] = sign == NULL && g < 0 ? (T)NAN : (T)w;
    }
}

/* narrow_load for lse_block, a call: its rows, their selection or their
   weights go through one copy of the transposing loops (inlined at each of
   three places, they took the wheel 48 KB past its size guard).  m NULL:
   the transpose alone (the weights, whose max nothing uses). */
CS_NOINLINE void CS_FN(lse_load)(const T *x, cs_intp xs, cs_intp nb, cs_intp C, T *t, T *m)
{
    if (m != NULL)
        CS_FN(narrow_load)(x, xs, nb, C, t, m);
    else
        CS_FN(narrow_copy)(x, xs, nb, C, t);
}

static void CS_FN(lse_block)(const cs_task *t, cs_intp lo, cs_intp hi)
{
    /* sel: the selected rows (where_select, weights_select); sw, wb: the
       weights, in rows and transposed */
    T tb[CS_BLOCK + CS_NARROW], m[CS_BLOCK], sel[CS_BLOCK];
    T sw[CS_BLOCK], wb[CS_BLOCK + CS_NARROW];
    double v[CS_BLOCK], sg[CS_BLOCK];
    const cs_intp C = t->C, nbmax = CS_FN(block_rows_to)(C, CS_LSE_NARROW);
    for (cs_intp i0 = lo; i0 < hi; i0 += nbmax) {
        const cs_intp nb = hi - i0 < nbmax ? hi - i0 : nbmax;
        const T *x = CS_X(t) + i0 * t->xs0;
        const T *b = t->g != NULL ? CS_G(t) + i0 * t->gs0 : NULL;
        const unsigned char *k = t->mask != NULL ? t->mask + i0 * t->ms0 : NULL;
        int some;
        if (b != NULL)
            CS_FN(weights_select)(x, t->xs0, b, t->gs0, k, t->ms0, sel, sw, nb, C);
        else if (k != NULL)
            CS_FN(where_select)(x, t->xs0, k, t->ms0, sel, nb, C);
        if (b != NULL || k != NULL)
            CS_FN(lse_load)(sel, C, nb, C, tb, m);
        else
            CS_FN(lse_load)(x, t->xs0, nb, C, tb, m);
        if (b != NULL) {
            CS_FN(lse_load)(sw, C, nb, C, wb, NULL);
            some = CS_FN(lse_lanes_w)(tb, wb, nb, C, m, v, sg);
        } else {
            some = CS_FN(lse_lanes)(tb, nb, C, m, v, NULL, 0, 0);
        }
        CS_FN(lse_store)(v, b != NULL ? sg : NULL, nb, some, CS_Y(t) + i0 * t->ys0,
                         t->sign != NULL ? (T *)t->sign + i0 * t->ys0 : NULL, t->ys0, x, t->xs0, 1, C,
                         b, t->gs0, k, t->ms0, m);
    }
}

/* v[q] = log sum_j exp(x[q, j]) over four float64 rows of C entries (rows
   xs apart) whose max is m[q], by lse_row's arithmetic: the terms at the max
   counted (c) apart from the others' exponentials (s), both in chunks of
   CS_ROW_CHUNK entries into CS_ROW_LANES explicit lanes, the chunks' totals
   added with their rounding errors kept; then c + s rounded and its error
   added back, as lse_lanes does.  A term enters s as e - k, k = 1 at the
   max and 0 elsewhere: exact, exp(0) being 1, where gcc left the select
   x != M ? e : 0 unvectorised ("control flow in loop").  The last
   C % CS_ROW_LANES entries of each chunk go across the four rows as one
   vector.  A row's bits do not depend on the rows beside it.  A v[q] that
   is not finite means the row must be done again (lse_fallback). */
CS_INLINE void CS_FN(lse_rows4)(const T *x, cs_intp xs, cs_intp C, const T *m, double *v)
{
    const T *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;
    const T m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
    double s[CS_MID_ROWS] = {0, 0, 0, 0}, se[CS_MID_ROWS] = {0, 0, 0, 0}, c[CS_MID_ROWS] = {0, 0, 0, 0};
    for (cs_intp j0 = 0; j0 < C; j0 += CS_ROW_CHUNK) {
        const cs_intp j1 = C - j0 > CS_ROW_CHUNK ? j0 + CS_ROW_CHUNK : C;
        double a0[CS_ROW_LANES], a1[CS_ROW_LANES], a2[CS_ROW_LANES], a3[CS_ROW_LANES];
        double k0[CS_ROW_LANES], k1[CS_ROW_LANES], k2[CS_ROW_LANES], k3[CS_ROW_LANES];
        for (int l = 0; l < CS_ROW_LANES; l++)
            a0[l] = a1[l] = a2[l] = a3[l] = k0[l] = k1[l] = k2[l] = k3[l] = 0.0;
        cs_intp j = j0;
        for (; j + CS_ROW_LANES <= j1; j += CS_ROW_LANES) {
#pragma omp simd
CS_LANE_LOOP
            for (int l = 0; l < CS_ROW_LANES; l++) {
                const T u0 = x0[j + l], u1 = x1[j + l], u2 = x2[j + l], u3 = x3[j + l];
                const double e0 = EXPNEG(u0 - m0), e1 = EXPNEG(u1 - m1);
                const double e2 = EXPNEG(u2 - m2), e3 = EXPNEG(u3 - m3);
                const double c0 = u0 == m0 ? 1.0 : 0.0, c1 = u1 == m1 ? 1.0 : 0.0;
                const double c2 = u2 == m2 ? 1.0 : 0.0, c3 = u3 == m3 ? 1.0 : 0.0;
                a0[l] += e0 - c0, k0[l] += c0;
                a1[l] += e1 - c1, k1[l] += c1;
                a2[l] += e2 - c2, k2[l] += c2;
                a3[l] += e3 - c3, k3[l] += c3;
            }
        }
        double ta[CS_MID_ROWS] = {CS_FN(lanes8_sum)(a0), CS_FN(lanes8_sum)(a1),
                                  CS_FN(lanes8_sum)(a2), CS_FN(lanes8_sum)(a3)};
        double tk[CS_MID_ROWS] = {CS_FN(lanes8_sum)(k0), CS_FN(lanes8_sum)(k1),
                                  CS_FN(lanes8_sum)(k2), CS_FN(lanes8_sum)(k3)};
        for (; j < j1; j++) {
            const T u[CS_MID_ROWS] = {x0[j], x1[j], x2[j], x3[j]};
#pragma omp simd
            for (int q = 0; q < CS_MID_ROWS; q++) {
                const double e = EXPNEG(u[q] - m[q]), k = u[q] == m[q] ? 1.0 : 0.0;
                ta[q] += e - k, tk[q] += k;
            }
        }
        for (int q = 0; q < CS_MID_ROWS; q++) {
            cs_two_sum(&s[q], &se[q], ta[q]);
            c[q] += tk[q];                  /* a count: exact */
        }
    }
#pragma omp simd
    for (int q = 0; q < CS_MID_ROWS; q++) {
        double tot = c[q], err = 0.0;
        cs_two_sum(&tot, &err, s[q] + se[q]);
        v[q] = (double)m[q] + (cs_log_sum(tot) + err / tot);
    }
}

/* Rows without weights of more than CS_LSE_NARROW entries, up to
   CS_LSE_MID_BYTES, go four at a time, as the forward's mid-width rows: one
   loop takes four maxima, one four sums, and the logarithms run over a block
   of rows in whole vectors, where a row at a time (lse_row) paid a serial
   reduction of its lanes, a scalar tail and libm's logarithm for each row.
   float32 by mid_sums (M + log S, S in double, as lse_lanes); float64 by
   lse_rows4.  Rows left over from the fours go through a buffer (as
   mid_sums_at does), with the same bits.  A row whose result is not finite
   is done again by lse_fallback, as lse_row does such a row.  On an Intel
   Xeon (family 6 model 207), the call on one thread, 409600 entries in
   cache, medians of 4 interleaved rounds, ns an entry, against lse_row:
   x86-64-v4 float32 C = 65 0.68 against 1.30, C = 100 0.69 against 1.20,
   C = 256 0.49 against 0.63, C = 1000 0.31-0.34 against 0.37-0.38, float64
   C = 65 1.21 against 1.87, C = 100 1.19 against 1.60, C = 200 0.91 against
   0.95, C = 256 even, but C = 512 0.95 against 0.84 (hence 2 KiB for
   float64); two threads float32 C = 100 0.29 against 0.59, float64 0.67
   against 0.97, and out of cache (8.2M entries) float32 C = 100 0.31
   against 0.54; x86-64-v3 float32 C = 100 0.65 against 0.92, float64 C =
   128 1.41 against 1.64, C = 256 within 3 %; baseline float32 C = 100 1.31
   against 1.46, float64 even. */
#define CS_LSE_MID_BYTES (sizeof(T) == 8 ? 2048 : 4096)
#define CS_LSE_MID_BLOCK 16
static inline int CS_FN(lse_is_mid)(cs_intp C)
{
    return C > CS_LSE_NARROW && C * (cs_intp)sizeof(T) <= (cs_intp)CS_LSE_MID_BYTES;
}

CS_NOINLINE void CS_FN(lse_mid_block)(const T *x, cs_intp xs, cs_intp nb, cs_intp C, T *m, double *v)
{
    if (sizeof(T) == 4) {
#define CS_LSE_SUMS(W) CS_FN(mid_sums_w)(x, xs, NULL, 0, nb, W, m, v, NULL)
#define CS_LSE_SUMS_ANY(W) CS_FN(mid_sums)(x, xs, NULL, 0, nb, W, m, v, NULL)
        CS_MID_WIDTHS(CS_LSE_SUMS, CS_LSE_SUMS_ANY, C);
#undef CS_LSE_SUMS
#undef CS_LSE_SUMS_ANY
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            v[r] = (double)m[r] + cs_log_sum(v[r]);
        return;
    }
    cs_intp r = 0;
    for (; r + CS_MID_ROWS <= nb; r += CS_MID_ROWS) {
        CS_FN(rows4_max)(x + r * xs, xs, C, m + r);
        CS_FN(lse_rows4)(x + r * xs, xs, C, m + r, v + r);
    }
    if (r == nb)
        return;
    T buf[CS_MID_ROWS * (CS_LSE_MID_BYTES / sizeof(T))], mb[CS_MID_ROWS];
    double vb[CS_MID_ROWS];
    CS_FN(rows4_pad)(x + r * xs, xs, nb - r, C, buf);
    CS_FN(rows4_max)(buf, C, C, mb);
    CS_FN(lse_rows4)(buf, C, C, mb, vb);
    for (cs_intp q = 0; r + q < nb; q++)
        m[r + q] = mb[q], v[r + q] = vb[q];
}

/* With a mask (no weights), a block of CS_MID_ROWS rows is first selected
   into a buffer (where_select, masked entries as -inf), which is then summed
   as plain rows; the fallback reads the row and its mask.  Against a row at a
   time selected and summed by lse_row, on the Intel Xeon above, the call on
   one thread, 409600 entries in cache, 70 % of the mask set, medians of 4
   interleaved rounds, ns an entry: x86-64-v4 float32 C = 100 0.76 against
   1.36, C = 1000 0.47 against 0.61, float64 C = 100 2.09 against 4.02, C =
   256 0.97 against 1.25; two threads, 8.2M entries, float32 C = 1000 0.25
   against 0.29; x86-64-v3 float32 C = 1000 0.65 against 0.89; baseline
   float32 C = 1000 1.47 against 1.86, float64 C = 256 5.0 against 5.5. */
static void CS_FN(lse_mid)(const cs_task *t, cs_intp lo, cs_intp hi)
{
    T m[CS_LSE_MID_BLOCK], sel[CS_MID_ROWS * (CS_LSE_MID_BYTES / sizeof(T))];
    double v[CS_LSE_MID_BLOCK];
    const cs_intp C = t->C;
    const unsigned char *k = t->mask;
    const cs_intp rows = k != NULL ? CS_MID_ROWS : CS_LSE_MID_BLOCK;
    for (cs_intp i0 = lo; i0 < hi; i0 += rows) {
        const cs_intp nb = hi - i0 < rows ? hi - i0 : rows;
        const T *x = CS_X(t) + i0 * t->xs0;
        const unsigned char *kb = k != NULL ? k + i0 * t->ms0 : NULL;
        if (kb != NULL) {
            CS_FN(where_select)(x, t->xs0, kb, t->ms0, sel, nb, C);
            CS_FN(lse_mid_block)(sel, C, nb, C, m, v);
        } else {
            CS_FN(lse_mid_block)(x, t->xs0, nb, C, m, v);
        }
        CS_FN(lse_store)(v, NULL, nb, CS_FN(lse_some_odd)(v, nb), CS_Y(t) + i0 * t->ys0,
                         t->sign != NULL ? (T *)t->sign + i0 * t->ys0 : NULL, t->ys0, x, t->xs0, 1, C,
                         NULL, 0, kb, t->ms0, m);
    }
}

/* Units: rows of x (and of the weights g, the mask, unless NULL), rows
   contiguous; y[i] (stride ys0) receives log |sum|, sign[i] (same stride) its
   sign unless NULL, else y[i] is nan where the sum is negative.  Rows of
   more than CS_LSE_NARROW entries go four at a time up to CS_LSE_MID_BYTES
   (lse_mid) if they have no weights, else one at a time; with a mask (and no
   weights), up to CS_LSE_SELECT entries, each is first selected into a
   buffer and then summed as a plain row, where lse_row's masked loops took
   two passes over x and the mask: kernel-only, 8.2M entries, two threads,
   AMD Zen 4, x86-64-v4, ns an entry, float32 C = 100 0.54 against 1.97,
   C = 1000 0.25 against 0.47, C = 4096 0.26 against 0.31, float64 C = 100
   1.43 against 2.84, C = 1000 0.71 against 1.07; x86-64-v3, one thread, in
   cache, float32 C = 100 1.17 against 1.55, C = 1000 0.58 against 1.04
   (prefetching the next row meanwhile: no faster). */
#define CS_LSE_SELECT (16384 / (cs_intp)sizeof(T))
static void CS_FN(logsumexp_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    (void)scratch;
    if (lo >= hi)
        return;
    if (t->C <= CS_LSE_NARROW) {
        CS_FN(lse_block)(t, lo, hi);
        return;
    }
    if (t->g == NULL && CS_FN(lse_is_mid)(t->C)) {
        CS_FN(lse_mid)(t, lo, hi);
        return;
    }
    if (t->g == NULL && t->mask != NULL && t->C <= CS_LSE_SELECT) {
        /* masked rows: the row selected (where_select, masked entries as
           -inf), then the plain row's max and sum over the selection */
        T sel[CS_LSE_SELECT];
        for (cs_intp i = lo; i < hi; i++) {
            CS_FN(where_select)(CS_X(t) + i * t->xs0, t->C, t->mask + i * t->ms0, t->C, sel, 1, t->C);
            T nmax;
            double sg, v = CS_FN(lse_row)(sel, NULL, NULL, t->C, CS_FN(row_max)(sel, t->C), sel, &nmax, &sg);
            CS_FN(lse_put)(t, i, v, sg);
        }
        return;
    }
    if (t->g != NULL || t->mask != NULL) {
        for (cs_intp i = lo; i < hi; i++)
            CS_FN(lse_one)(t, i);
        return;
    }
    T M = CS_FN(row_max)(CS_X(t) + lo * t->xs0, t->C);
    for (cs_intp i = lo; i < hi; i++) {
        const T *x = CS_X(t) + i * t->xs0;
        double sg;
        T nmax = 0;
        double v = CS_FN(lse_row)(x, NULL, NULL, t->C, M, i + 1 < hi ? x + t->xs0 : x, &nmax, &sg);
        M = nmax;
        CS_FN(lse_put)(t, i, v, sg);
    }
}

/* Units: pieces of one long row x of C entries, `piece` entries each, with
   the weights t->g and the mask t->mask unless NULL (contiguous; a piece
   masked but not weighted is selected into scratch first, piece entries, as
   logsumexp_rows selects such rows).  pmax[p] = the piece's max m_p (over
   the entries that take part) and, where it is finite, psum[2 p],
   psum[2 p + 1] = its sums relative to it as lse_sums takes them (float32:
   0 and the whole sum; float64: the weights of the entries equal to m_p and
   the sum over the others).  cs_lse_pieces_combine then merges them as a
   row's sums.  A plain piece takes the next one's max in its sum loop, as
   logsumexp_rows's rows do.  Where the row kernel took such a row on one
   thread: Intel Xeon (family 6 model 207), x86-64-v4, 8.2M entries, two
   threads, ms, float32 1.8 against 4.0, with where= 3.0 against 5.7, with
   weights 3.3 against 6.4; float64 4.5 against 6.7, with weights 6.7
   against 19. */
static void CS_FN(logsumexp_pieces)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    T *sel = (T *)scratch, M = 0;
    int have = 0;   /* M is this piece's max, taken in the last one's sum loop */
    for (cs_intp p = lo; p < hi; p++) {
        cs_intp n;
        const cs_intp j0 = cs_piece_at(t, p, &n);
        const T *x = CS_X(t) + j0, *b = t->g != NULL ? CS_G(t) + j0 : NULL;
        const unsigned char *k = t->mask != NULL ? t->mask + j0 : NULL;
        if (k != NULL && b == NULL) {
            CS_FN(where_select)(x, n, k, n, sel, 1, n);
            x = sel;
            k = NULL;
        }
        if (!have)
            M = CS_FN(lse_max)(x, b, k, n);
        /* the next piece's max, where it is plain, in this unit and as long */
        have = t->g == NULL && t->mask == NULL && p + 1 < hi && t->C - (j0 + n) >= n;
        const T *nx = have ? x + n : x;
        T nmax = 0;
        double c = 0.0, s = 0.0;
        t->pmax[p] = (double)M;
        if (isfinite(M))
            CS_FN(lse_sums)(x, b, k, n, M, nx, &nmax, &c, &s);
        else if (have)
            nmax = CS_FN(row_max)(nx, n);
        t->psum[2 * p] = c;
        t->psum[2 * p + 1] = s;
        M = nmax;
    }
}

/* A tile of W columns of x (C classes xs apart) and of their weights b
   (classes bs apart) packed as weights_select selects rows: w[c * W + j] =
   b where the mask k (classes ks apart; NULL: none) is set, else 0, and
   sx[c * W + j] = x where that weight is not 0, else -inf; m[j] the max of
   sx's column j, in the same loop.  (weights_select a class at a time,
   then the max: logsumexp over axis 0 of (1000, 8192) float32 with
   weights, two threads, 7.0-7.9 against 5.2-5.5 ms.) */
static inline void CS_FN(cols_pack_weights)(const T *x, cs_intp xs, const T *b, cs_intp bs,
                                            const unsigned char *k, cs_intp ks, cs_intp C, cs_intp W,
                                            T *sx, T *w, T *m)
{
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        m[j] = (T)-INFINITY;
    for (cs_intp c = 0; c < C; c++) {
        const T *xc = x + c * xs, *bc = b + c * bs;
        T *sc = sx + c * W, *wc = w + c * W;
        if (k == NULL) {
#pragma omp simd
            for (cs_intp j = 0; j < W; j++) {
                T wj = bc[j], v = wj != 0 ? xc[j] : (T)-INFINITY;
                wc[j] = wj;
                sc[j] = v;
                m[j] = v > m[j] ? v : m[j];
            }
        } else {
            const unsigned char *kc = k + c * ks;
#pragma omp simd
            for (cs_intp j = 0; j < W; j++) {
                T wj = kc[j] ? bc[j] : (T)0, v = wj != 0 ? xc[j] : (T)-INFINITY;
                wc[j] = wj;
                sc[j] = v;
                m[j] = v > m[j] ? v : m[j];
            }
        }
    }
}

/* Units: tiles of W columns, as softmax_cols (classes xs1 apart, columns
   contiguous); y and sign (unless NULL) hold one entry per column, outer
   blocks ys0 apart, columns contiguous.  The tile is packed (cols_pack_max),
   then its columns go down the lanes as the short rows of lse_block do,
   while the next tile is prefetched (as softmax_cols does): over axis 0,
   two threads, AMD Zen 4, x86-64-v4, ns an entry, min / median of 9,
   float64 (1000, 8192) 0.70 / 0.72-0.73 against 0.77-0.79 / 0.80-0.85,
   float32 (100, 81920) 0.30-0.35 / 0.34-0.38 against 0.38-0.46 /
   0.41-0.52; in cache, float32 (1000, 409), 0.29 against 0.27.  Where a
   transposed copy went to the row kernel, float32 (100, 4096) took 3.3 ns an
   entry, 0.28 now.
   With a mask (t->mask unless NULL: outer blocks ms0 apart, classes ms1,
   columns contiguous) the masked entries are packed as -inf; with weights
   (t->g unless NULL: gs0, gs1, columns contiguous) the tile and its weights
   are packed as lse_block packs rows (cols_pack_weights) and summed by
   lse_lanes_w.  Where a column's result is not finite the fallback takes it
   from the packed tile (a masked entry or one of weight 0 is -inf there,
   of weight 0 beside it).  scratch: C * W entries, twice that with weights. */
static void CS_FN(logsumexp_cols)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    T m[CS_TILE];
    double v[CS_TILE], sg[CS_TILE];
    T *buf = (T *)scratch, *wb = buf + t->C * t->W;
    for (cs_intp k = lo; k < hi; k++) {
        cs_intp o, j0, w = CS_FN(tile_at)(t, k, &o, &j0);
        cs_intp no, nj0, nw = k + 1 < hi ? CS_FN(tile_at)(t, k + 1, &no, &nj0) : 0;
        const T *x = CS_X(t) + o * t->xs0 + j0;
        const unsigned char *mk = CS_FN(tile_mask)(t, o, j0);
        int some;
        if (t->g != NULL) {
            CS_FN(cols_pack_weights)(x, t->xs1, CS_G(t) + o * t->gs0 + j0, t->gs1, mk, t->ms1, t->C, w, buf, wb, m);
            some = CS_FN(lse_lanes_w)(buf, wb, w, t->C, m, v, sg);
        } else {
            CS_FN(cols_pack_max)(x, t->xs1, mk, t->ms1, t->C, w, buf, m, CS_FN(strips_ahead)(t));
            some = CS_FN(lse_lanes)(buf, w, t->C, m, v, nw ? CS_X(t) + no * t->xs0 + nj0 : NULL, t->xs1, nw);
        }
        CS_FN(lse_store)(v, t->g != NULL ? sg : NULL, w, some, CS_Y(t) + o * t->ys0 + j0,
                         t->sign != NULL ? (T *)t->sign + o * t->ys0 + j0 : NULL, 1, buf, 1, w, t->C,
                         t->g != NULL ? wb : NULL, 1, NULL, 0, m);
    }
}

/* ---- softmax and log_softmax with where= ---- */

/* Rows with a mask go through the unmasked kernels: a block of rows is
   first copied into y with the masked entries read as -inf, then computed in
   place there, so that the masked softmax gets every path the plain one has
   (narrow, four rows at a time, wide).  exp(-inf - max) is 0, so a masked
   entry takes no part and gets 0 -- except in a row where no entry is set
   (the plain kernel sees a row of -inf and gives nan): it gets 0 throughout.
   log_softmax's masked entries are set to -inf after the row is computed,
   whatever the row held (a row with none set is then -inf throughout). */

/* Rows per block: the narrow kernel's block; CS_WHERE_BYTES of mid-width
   rows (up to mid bytes, a multiple of the four-row step); one wide row (the
   row kernel's loads then come right after the select's, from L1: measured
   1.2x the unmasked log_softmax at (8192, 1000) float32 against 1.4x with
   four rows a block). */
static inline cs_intp CS_FN(where_rows)(cs_intp C, cs_intp mid)
{
    if (C <= CS_NARROW)
        return CS_FN(block_rows)(C);
    if (C * (cs_intp)sizeof(T) > mid)
        return 1;
    cs_intp r = (cs_intp)(CS_WHERE_BYTES / sizeof(T)) / C;
    return r >= CS_MID_ROWS ? r & ~(cs_intp)(CS_MID_ROWS - 1) : 1;
}

/* The C bytes of a mask row into L1, a line at a time. */
static inline void CS_FN(prefetch_mask_row)(const unsigned char *k, cs_intp C)
{
    for (cs_intp j = 0; j < C; j += 64)
        CS_PREFETCH(k + j, 0, 3);
}

/* Units: rows of x, mask rows (stride ms0) and y, all contiguous.  scratch:
   max(CS_WHERE_BYTES, C * sizeof(T)) bytes, where the selected rows are made
   (in L1: y is written once, by the row kernel).  In a call that streams
   from memory, rows of CS_STREAM_WIDE_BYTES or more go one at a time, as the
   plain kernel takes them there (stream_one_row; the same bits):
   AMD Zen 4, kernel-only, 8.2M entries, one thread, ns an entry, x86-64-v4
   float32 C = 1000 0.62 against 0.80-0.88, C = 256 0.64-0.67 against
   0.99-1.04, float64 C = 256 1.17-1.21 against 1.68-1.79, C = 1000 even;
   x86-64-v3 float32 C = 1000 0.79 against 1.03.  There the next row's mask
   is prefetched before the select and its x during the exponentials
   (softmax_block's after): two threads, ns an entry, x86-64-v4 float32
   C = 128 0.46 against 0.54, C = 1000 0.33 against 0.37, C = 4096 0.33
   against 0.44, float64 C = 1000 0.69 against 0.79; x86-64-v3 float32
   C = 1000 0.39 against 0.43. */
static void CS_FN(softmax_where_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    const cs_intp C = t->C;
    const int one_row = CS_FN(stream_one_row)(C, CS_FN(big_call)(t));
    const cs_intp step = one_row ? 1 : CS_FN(where_rows)(C, CS_MID_BYTES);
    T *buf = (T *)scratch;
    for (cs_intp i0 = lo; i0 < hi; i0 += step) {
        cs_intp nb = hi - i0 < step ? hi - i0 : step;
        T *y = CS_Y(t) + i0 * t->ys0;
        const unsigned char *k = t->mask + i0 * t->ms0;
        if (one_row && i0 + 1 < hi)   /* the next row's mask, the next row in softmax_block */
            CS_FN(prefetch_mask_row)(k + t->ms0, C);
        CS_FN(where_select)(CS_X(t) + i0 * t->xs0, t->xs0, k, t->ms0, buf, nb, C);
        CS_FN(softmax_block)(buf, C, y, t->ys0, nb, C, one_row,
                             one_row && i0 + 1 < hi ? CS_X(t) + (i0 + 1) * t->xs0 : NULL);
        /* a row of -inf came out nan: 0 if it is so because no entry is set */
        for (cs_intp r = 0; r < nb; r++) {
            T *yr = y + r * t->ys0;
            if (!isnan(yr[0]))
                continue;
            const unsigned char *kr = k + r * t->ms0;
            cs_intp j = 0;
            while (j < C && !kr[j])
                j++;
            if (j == C)
                for (j = 0; j < C; j++)
                    yr[j] = 0;
        }
    }
}

/* As softmax_where_rows; wide rows, one at a time, in a call that streams
   from memory (pf) prefetch the next row's mask before the select and its x
   during the exponentials: two threads, 8.2M entries, ns an entry, x86-64-v4
   float32 C = 1000 0.37-0.46 against 0.43-0.62, C = 4096 0.39 against 0.44,
   float64 C = 1000 0.78 against 0.91; x86-64-v3 float32 C = 1000 even. */
static void CS_FN(log_softmax_where_rows)(const cs_task *t, cs_intp lo, cs_intp hi, void *scratch)
{
    const cs_intp C = t->C;
    const int pf = CS_FN(stream_one_row)(C, CS_FN(big_call)(t));
    const cs_intp step = pf ? 1 : CS_FN(where_rows)(C, CS_MID_LOG_BYTES);
    T *buf = (T *)scratch;
    for (cs_intp i0 = lo; i0 < hi; i0 += step) {
        cs_intp nb = hi - i0 < step ? hi - i0 : step;
        T *y = CS_Y(t) + i0 * t->ys0;
        const unsigned char *k = t->mask + i0 * t->ms0;
        if (pf && i0 + 1 < hi)   /* the next row's mask, its x in log_softmax_block */
            CS_FN(prefetch_mask_row)(k + t->ms0, C);
        CS_FN(where_select)(CS_X(t) + i0 * t->xs0, t->xs0, k, t->ms0, buf, nb, C);
        CS_FN(log_softmax_block)(buf, C, y, t->ys0, nb, C, pf,
                                 pf && i0 + 1 < hi ? CS_X(t) + (i0 + 1) * t->xs0 : NULL);
        /* A masked entry came out (-inf - m) - log s: -inf unless the row's m
           or s is nan (a nan set, no entry set, or all set ones -inf).  All
           masked entries of a row come out alike: the first one tells. */
        for (cs_intp r = 0; r < nb; r++) {
            T *yr = y + r * t->ys0;
            const unsigned char *kr = k + r * t->ms0;
            const unsigned char *z = memchr(kr, 0, (size_t)C);
            if (z == NULL || yr[z - kr] == (T)-INFINITY)
                continue;
            for (cs_intp j = 0; j < C; j++)
                yr[j] = kr[j] ? yr[j] : (T)-INFINITY;
        }
    }
}

#undef CS_X
#undef CS_G
#undef CS_Y
