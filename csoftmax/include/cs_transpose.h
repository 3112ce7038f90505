/*
 * cs_transpose.h -- the narrow rows' transposed copies, in and out, by
 * whole vectors.  cs_level.h includes it once per level (CS_LEVEL,
 * CS_VEC_BYTES set), before the kernels.
 *
 * A block of narrow rows is worked on transposed, t[j * nb + r] = x[r, j]
 * (see narrow_copy in cs_kernels_t.h).  Copied an entry at a time, each
 * entry in or out is a scalar load or store with a lane insert or extract;
 * at ten classes that was about two fifths of the float32 cross-entropy's
 * time.  Here the copies go by small transposes inside each 16-byte lane
 * of a vector: four rows by four float32 classes, or two rows by two
 * float64 classes, per lane, so that a level of V-byte vectors moves V / 4
 * float32 rows (V / 8 float64 rows, from 32-byte vectors) a column at a
 * time in a few shuffles, and every row's piece in or out is one 16-byte
 * load or store.  A row whose width is not a multiple of the piece takes
 * its last piece ending at its last entry, overlapping the one before:
 * those entries are copied twice, with the same values.  Rows past the last
 * whole vector, and rows narrower than a piece, go an entry at a time.  The
 * values are copied or scaled exactly as the entry-at-a-time loops do, so
 * no bit changes.
 *
 * Vector extensions (__builtin_shufflevector: clang, GCC 12 and later), so
 * the same code serves every level and NEON; with another compiler the
 * entry-at-a-time loops alone.
 */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define CS_TR 1
#define CS_SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)

#ifndef CS_TR_TYPES
#define CS_TR_TYPES
typedef float cs_f4 __attribute__((vector_size(16)));
typedef float cs_f8 __attribute__((vector_size(32)));
typedef float cs_f16 __attribute__((vector_size(64)));
typedef double cs_d2 __attribute__((vector_size(16)));
typedef double cs_d4 __attribute__((vector_size(32)));
typedef double cs_d8 __attribute__((vector_size(64)));
typedef int cs_i16 __attribute__((vector_size(64)));
typedef unsigned int cs_u16 __attribute__((vector_size(64)));
typedef long long cs_l8 __attribute__((vector_size(64)));
typedef unsigned long long cs_ul8 __attribute__((vector_size(64)));
static inline cs_f4 cs_tr_get_f4(const float *p)
{
    cs_f4 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline cs_d2 cs_tr_get_d2(const double *p)
{
    cs_d2 v;
    memcpy(&v, p, sizeof v);
    return v;
}
#define CS_TR_PUT(p, v) memcpy(p, &(v), 16)
#endif

/* Per level: VF / VD, a vector of float / double; the in-lane shuffles
   (float: interleave the low or high pairs of a and b, take the low or high
   halves of a then b; double: interleave the low or high entries); a
   vector whose lane l holds the 16 bytes at p + l * st (CS_TR_GETF /
   CS_TR_GETD), and each lane l of v stored at p + l * st (CS_TR_PUTL, by
   CS_TR_PUTF / CS_TR_PUTD).  Named vectors and constant lanes, not arrays
   of vectors: GCC kept those on the stack at x86-64-v3 (float32 at C = 10
   twice as slow as the entry-at-a-time copies). */
#define CS_LANE_F(v, l) CS_SHUF(v, v, 4 * (l), 4 * (l) + 1, 4 * (l) + 2, 4 * (l) + 3)
#define CS_LANE_D(v, l) CS_SHUF(v, v, 2 * (l), 2 * (l) + 1)
#if CS_VEC_BYTES == 64
#define VF cs_f16
#define VD cs_d8
#define CS_UNLO_F(a, b) CS_SHUF(a, b, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29)
#define CS_UNHI_F(a, b) CS_SHUF(a, b, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31)
#define CS_LO2_F(a, b) CS_SHUF(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
#define CS_HI2_F(a, b) CS_SHUF(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31)
#define CS_UNLO_D(a, b) CS_SHUF(a, b, 0, 8, 2, 10, 4, 12, 6, 14)
#define CS_UNHI_D(a, b) CS_SHUF(a, b, 1, 9, 3, 11, 5, 13, 7, 15)
#define CS_TR_GETF(p, st)                                                                      \
    CS_SHUF(CS_SHUF(cs_tr_get_f4(p), cs_tr_get_f4((p) + (st)), 0, 1, 2, 3, 4, 5, 6, 7),           \
            CS_SHUF(cs_tr_get_f4((p) + 2 * (st)), cs_tr_get_f4((p) + 3 * (st)), 0, 1, 2, 3, 4, 5, 6, 7), \
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#define CS_TR_GETD(p, st)                                                                      \
    CS_SHUF(CS_SHUF(cs_tr_get_d2(p), cs_tr_get_d2((p) + (st)), 0, 1, 2, 3),                       \
            CS_SHUF(cs_tr_get_d2((p) + 2 * (st)), cs_tr_get_d2((p) + 3 * (st)), 0, 1, 2, 3),      \
            0, 1, 2, 3, 4, 5, 6, 7)
#define CS_TR_PUTL(p, st, v, LANE, V2)                                                         \
    do {                                                                                       \
        V2 l0_ = LANE(v, 0), l1_ = LANE(v, 1), l2_ = LANE(v, 2), l3_ = LANE(v, 3);             \
        CS_TR_PUT(p, l0_), CS_TR_PUT((p) + (st), l1_);                                         \
        CS_TR_PUT((p) + 2 * (st), l2_), CS_TR_PUT((p) + 3 * (st), l3_);                        \
    } while (0)
#elif CS_VEC_BYTES == 32
#define VF cs_f8
#define VD cs_d4
#define CS_UNLO_F(a, b) CS_SHUF(a, b, 0, 8, 1, 9, 4, 12, 5, 13)
#define CS_UNHI_F(a, b) CS_SHUF(a, b, 2, 10, 3, 11, 6, 14, 7, 15)
#define CS_LO2_F(a, b) CS_SHUF(a, b, 0, 1, 8, 9, 4, 5, 12, 13)
#define CS_HI2_F(a, b) CS_SHUF(a, b, 2, 3, 10, 11, 6, 7, 14, 15)
#define CS_UNLO_D(a, b) CS_SHUF(a, b, 0, 4, 2, 6)
#define CS_UNHI_D(a, b) CS_SHUF(a, b, 1, 5, 3, 7)
#define CS_TR_GETF(p, st) CS_SHUF(cs_tr_get_f4(p), cs_tr_get_f4((p) + (st)), 0, 1, 2, 3, 4, 5, 6, 7)
#define CS_TR_GETD(p, st) CS_SHUF(cs_tr_get_d2(p), cs_tr_get_d2((p) + (st)), 0, 1, 2, 3)
#define CS_TR_PUTL(p, st, v, LANE, V2)                                                         \
    do {                                                                                       \
        V2 l0_ = LANE(v, 0), l1_ = LANE(v, 1);                                                 \
        CS_TR_PUT(p, l0_), CS_TR_PUT((p) + (st), l1_);                                         \
    } while (0)
#else
#define VF cs_f4
#define VD cs_d2
#define CS_UNLO_F(a, b) CS_SHUF(a, b, 0, 4, 1, 5)
#define CS_UNHI_F(a, b) CS_SHUF(a, b, 2, 6, 3, 7)
#define CS_LO2_F(a, b) CS_SHUF(a, b, 0, 1, 4, 5)
#define CS_HI2_F(a, b) CS_SHUF(a, b, 2, 3, 6, 7)
#define CS_UNLO_D(a, b) CS_SHUF(a, b, 0, 2)
#define CS_UNHI_D(a, b) CS_SHUF(a, b, 1, 3)
#define CS_TR_GETF(p, st) cs_tr_get_f4(p)
#define CS_TR_GETD(p, st) cs_tr_get_d2(p)
#define CS_TR_PUTL(p, st, v, LANE, V2) CS_TR_PUT(p, v)
#endif
#define CS_TR_PUTF(p, st, v) CS_TR_PUTL(p, st, v, CS_LANE_F, cs_f4)
#define CS_TR_PUTD(p, st, v) CS_TR_PUTL(p, st, v, CS_LANE_D, cs_d2)

/* v (a named vector) from the entries at p; a macro, for a function
   returning a 64-byte vector draws a warning in a build of these kernels
   for x86-64-v3 (CS_V4_ON_V3) */
#define CS_TR_LOADV(v, p) memcpy(&(v), p, sizeof(v))

/* y[r, j] = t[j * nb + r] * k[r] (k NULL: t[j * nb + r]) for the rows
   r < nb, rows of C >= 4 entries ys apart, a vector of rows at a time;
   returns how many rows (whole vectors) it took. */
static inline cs_intp CS_CAT2(cs_tr_store_f32, CS_LEVEL)(const float *t, cs_intp nb, cs_intp C, const float *k,
                                                         float *y, cs_intp ys)
{
    const cs_intp n = CS_VEC_BYTES / 4;
    cs_intp r0 = 0;
    for (; C >= 4 && r0 + n <= nb; r0 += n) {
        VF kv = {0}, c0, c1, c2, c3;
        if (k != NULL)
            CS_TR_LOADV(kv, k + r0);
        for (cs_intp j = 0; j < C; j += 4) {
            const cs_intp jj = j + 4 <= C ? j : C - 4;
            const float *tj = t + jj * nb + r0;
            CS_TR_LOADV(c0, tj), CS_TR_LOADV(c1, tj + nb), CS_TR_LOADV(c2, tj + 2 * nb), CS_TR_LOADV(c3, tj + 3 * nb);
            if (k != NULL)
                c0 *= kv, c1 *= kv, c2 *= kv, c3 *= kv;
            const VF a = CS_UNLO_F(c0, c1), b = CS_UNHI_F(c0, c1), d = CS_UNLO_F(c2, c3), e = CS_UNHI_F(c2, c3);
            const VF o0 = CS_LO2_F(a, d), o1 = CS_HI2_F(a, d), o2 = CS_LO2_F(b, e), o3 = CS_HI2_F(b, e);
            float *yr = y + r0 * ys + jj;
            CS_TR_PUTF(yr, 4 * ys, o0);
            CS_TR_PUTF(yr + ys, 4 * ys, o1);
            CS_TR_PUTF(yr + 2 * ys, 4 * ys, o2);
            CS_TR_PUTF(yr + 3 * ys, 4 * ys, o3);
        }
    }
    return r0;
}

/* t[j * nb + r] = x[r, j] for the rows r < nb, rows of C >= 4 entries xs
   apart, a vector of rows at a time; returns how many rows it took. */
static inline cs_intp CS_CAT2(cs_tr_load_f32, CS_LEVEL)(const float *x, cs_intp xs, cs_intp nb, cs_intp C,
                                                        float *t)
{
    const cs_intp n = CS_VEC_BYTES / 4;
    cs_intp r0 = 0;
    for (; C >= 4 && r0 + n <= nb; r0 += n) {
        for (cs_intp j = 0; j < C; j += 4) {
            const cs_intp jj = j + 4 <= C ? j : C - 4;
            const float *xr = x + r0 * xs + jj;
            const VF c0 = CS_TR_GETF(xr, 4 * xs), c1 = CS_TR_GETF(xr + xs, 4 * xs);
            const VF c2 = CS_TR_GETF(xr + 2 * xs, 4 * xs), c3 = CS_TR_GETF(xr + 3 * xs, 4 * xs);
            const VF a = CS_UNLO_F(c0, c1), b = CS_UNHI_F(c0, c1), d = CS_UNLO_F(c2, c3), e = CS_UNHI_F(c2, c3);
            const VF o0 = CS_LO2_F(a, d), o1 = CS_HI2_F(a, d), o2 = CS_LO2_F(b, e), o3 = CS_HI2_F(b, e);
            float *tj = t + jj * nb + r0;
            memcpy(tj, &o0, sizeof o0);
            memcpy(tj + nb, &o1, sizeof o1);
            memcpy(tj + 2 * nb, &o2, sizeof o2);
            memcpy(tj + 3 * nb, &o3, sizeof o3);
        }
    }
    return r0;
}

/* The same for float64, two rows by two classes a lane, rows of C >= 2;
   with vectors of one lane (16 bytes) not at all: there the pieces save
   nothing (baseline x86-64, softmax C = 10, 1-3 % slower). */
#define CS_TR_F64 (CS_VEC_BYTES > 16)
static inline cs_intp CS_CAT2(cs_tr_store_f64, CS_LEVEL)(const double *t, cs_intp nb, cs_intp C, const double *k,
                                                         double *y, cs_intp ys)
{
    const cs_intp n = CS_VEC_BYTES / 8;
    cs_intp r0 = 0;
    for (; CS_TR_F64 && C >= 2 && r0 + n <= nb; r0 += n) {
        VD kv = {0}, c0, c1;
        if (k != NULL)
            CS_TR_LOADV(kv, k + r0);
        for (cs_intp j = 0; j < C; j += 2) {
            const cs_intp jj = j + 2 <= C ? j : C - 2;
            const double *tj = t + jj * nb + r0;
            CS_TR_LOADV(c0, tj), CS_TR_LOADV(c1, tj + nb);
            if (k != NULL)
                c0 *= kv, c1 *= kv;
            const VD o0 = CS_UNLO_D(c0, c1), o1 = CS_UNHI_D(c0, c1);
            double *yr = y + r0 * ys + jj;
            CS_TR_PUTD(yr, 2 * ys, o0);
            CS_TR_PUTD(yr + ys, 2 * ys, o1);
        }
    }
    return r0;
}

static inline cs_intp CS_CAT2(cs_tr_load_f64, CS_LEVEL)(const double *x, cs_intp xs, cs_intp nb, cs_intp C,
                                                        double *t)
{
    const cs_intp n = CS_VEC_BYTES / 8;
    cs_intp r0 = 0;
    for (; CS_TR_F64 && C >= 2 && r0 + n <= nb; r0 += n) {
        for (cs_intp j = 0; j < C; j += 2) {
            const cs_intp jj = j + 2 <= C ? j : C - 2;
            const double *xr = x + r0 * xs + jj;
            const VD c0 = CS_TR_GETD(xr, 2 * xs), c1 = CS_TR_GETD(xr + xs, 2 * xs);
            const VD o0 = CS_UNLO_D(c0, c1), o1 = CS_UNHI_D(c0, c1);
            double *tj = t + jj * nb + r0;
            memcpy(tj, &o0, sizeof o0);
            memcpy(tj + nb, &o1, sizeof o1);
        }
    }
    return r0;
}

#undef VF
#undef VD
#undef CS_UNLO_F
#undef CS_UNHI_F
#undef CS_LO2_F
#undef CS_HI2_F
#undef CS_UNLO_D
#undef CS_UNHI_D
#undef CS_LANE_F
#undef CS_LANE_D
#undef CS_TR_GETF
#undef CS_TR_GETD
#undef CS_TR_PUTF
#undef CS_TR_PUTD
#undef CS_TR_PUTL
#undef CS_TR_F64
#undef CS_TR_LOADV
#else
#define CS_TR 0
#endif
