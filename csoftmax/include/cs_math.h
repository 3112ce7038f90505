/*
 * cs_math.h -- exp and log written so that a loop calling them vectorises.
 *
 * glibc's exp/log are scalar calls; a loop over them never vectorises.  These
 * are branch-free: range reduction x = n*ln2 + r, a polynomial for exp(r) and
 * 2^n built from exponent bits, with the special cases (-inf -> 0, +inf, nan,
 * underflow to subnormals, overflow) selected by compares at the end.  Each is
 * within ~1 ulp; the tests measure them through the kernels that use them.
 *
 * The functions carry no target attribute: they are inlined into kernels that
 * are compiled once per instruction-set level (see cs_dispatch.h), so each copy
 * is vectorised for that level.  a*b + c is contracted to an FMA where the level
 * has one (GCC's default -ffp-contract=fast); the ln2 splits keep the reduction
 * exact without FMA too.
 */
#ifndef CS_MATH_H
#define CS_MATH_H

#include <stdint.h>
#include <string.h>
#include <float.h>
#include <math.h>

#if defined(__GNUC__)
#define CS_INLINE static inline __attribute__((always_inline))
#define CS_NOINLINE static __attribute__((noinline))
#elif defined(_MSC_VER)
#define CS_INLINE static inline
#define CS_NOINLINE static __declspec(noinline)
#else
#define CS_INLINE static inline
#define CS_NOINLINE static
#endif

CS_INLINE uint64_t cs_bits_f64(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
CS_INLINE double cs_from_bits_f64(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
CS_INLINE uint32_t cs_bits_f32(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
CS_INLINE float cs_from_bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* exp(x) in double for every x (nan stays nan). */
CS_INLINE double cs_exp_f64(double x)
{
    const double shift = 0x1.8p52;            /* adding it rounds to an integer */
    const double log2e = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42fee00000p-1; /* n * ln2_hi is exact for |n| < 2^11 */
    const double ln2_lo = 0x1.a39ef35793c76p-33;
    double kd = (x * log2e + shift) - shift;   /* n = round(x / ln2) */
    double r = x - kd * ln2_hi;
    r = r - kd * ln2_lo;
    /* Taylor to degree 13: the remainder is < 2^-56 for |r| <= ln2/2.
       exp(r) = 1 + r (1 + r Q(r)), Q = 1/2! + r/3! + ... + r^11/13! split
       into even and odd coefficients, as in cs_expneg_core_f64 (a chain of
       nine operations where Horner's rule makes thirteen); Q's rounding
       reaches the result times r^2 < 0.121. */
    double r2 = r * r;
    double ev = 1.0 / 479001600.0 * r2 + 1.0 / 3628800.0;
    double od = 1.0 / 6227020800.0 * r2 + 1.0 / 39916800.0;
    ev = ev * r2 + 1.0 / 40320.0;
    od = od * r2 + 1.0 / 362880.0;
    ev = ev * r2 + 1.0 / 720.0;
    od = od * r2 + 1.0 / 5040.0;
    ev = ev * r2 + 1.0 / 24.0;
    od = od * r2 + 1.0 / 120.0;
    ev = ev * r2 + 0.5;
    od = od * r2 + 1.0 / 6.0;
    double q = od * r + ev;
    double p = (q * r + 1.0) * r + 1.0;
    /* 2^n as 2^n1 * 2^n2 so that results down to the smallest subnormal round
       once; inside the masks below n lies in [-1076, 1024], n1 and n2 in
       [-538, 513].  Both factors are built with unsigned adds and left shifts
       only: the integer ops every vector unit has.  The low bits of k + shift
       hold k in two's complement; the shift by 52 drops the rest. */
    double k1 = (kd * 0.5 + shift) - shift;
    double k2 = kd - k1;
    double s1 = cs_from_bits_f64((cs_bits_f64(k1 + shift) + 1023) << 52);
    double s2 = cs_from_bits_f64((cs_bits_f64(k2 + shift) + 1023) << 52);
    double y = p * s1 * s2;
    /* selects as bit masks: a ternary here stops the vectoriser before AVX */
    uint64_t under = -(uint64_t)(x < -745.2);  /* also -inf: 0 */
    uint64_t over = -(uint64_t)(x > 709.8);    /* also +inf: inf */
    uint64_t b = cs_bits_f64(y) & ~under;
    return cs_from_bits_f64((b & ~over) | (0x7ff0000000000000ULL & over));
}

/* exp(x) in float for every x (nan stays nan). */
CS_INLINE float cs_exp_f32(float x)
{
    const float shift = 0x1.8p23f;
    const float log2e = 0x1.715476p0f;
    const float ln2_hi = 0x1.62e4p-1f;         /* n * ln2_hi is exact for |n| < 2^8 */
    const float ln2_lo = 0x1.7f7d1cp-20f;
    float kd = (x * log2e + shift) - shift;
    float r = x - kd * ln2_hi;
    r = r - kd * ln2_lo;
    /* Taylor to degree 7: the remainder is < 2^-27 for |r| <= ln2/2. */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float k1 = (kd * 0.5f + shift) - shift;
    float k2 = kd - k1;
    float s1 = cs_from_bits_f32((cs_bits_f32(k1 + shift) + 127) << 23);
    float s2 = cs_from_bits_f32((cs_bits_f32(k2 + shift) + 127) << 23);
    float y = p * s1 * s2;
    uint32_t under = -(uint32_t)(x < -104.0f);
    uint32_t over = -(uint32_t)(x > 88.73f);
    uint32_t b = cs_bits_f32(y) & ~under;
    return cs_from_bits_f32((b & ~over) | (0x7f800000U & over));
}

/* exp(x) for x <= 0 or nan: the arguments x - max of softmax and its relatives.
   No overflow to handle, 2^n in one factor, the reduction in one step (its error,
   n·|ln2 - fl(ln2)|, is below the rounding error of x - max itself).  Results
   below exp(-708.5) (2^-1022, about DBL_MIN) are flushed to 0: an absolute error
   under DBL_MIN.  -inf gives 0, nan stays nan.
   cs_expneg_f64 leaves x - n fl(ln2) to the compiler, exact where it is one
   fused multiply-add (GCC contracts it where the level has FMA; without, it is
   off by up to half an ulp of x, the size of x - max's own rounding);
   cs_expneg_fma_f64 writes the fused multiply-adds out, exact for any x <= 0
   whatever the compiler does, for levels with FMA in hardware (elsewhere fma
   is a library call).  Both share the rest, cs_expneg_core_f64. */
#define CS_LN2_F64 0x1.62e42fefa39efp-1
#define CS_LN2_LO_F64 0x1.abc9e3b39803fp-56       /* ln2 - fl(ln2) */
#define CS_LN2_F32 0x1.62e430p-1f
#define CS_LN2_LO_F32 -0x1.05c610p-29f

/* exp(x) from the reduced r = x - n ln2 and z, whose low bits hold n */
CS_INLINE double cs_expneg_core_f64(double x, double z, double r)
{
    /* exp(r) = 1 + r q(r), q of degree 10 fitted on |r| <= ln2/2 (Chebyshev,
       |error| < 2e-17 relative), q = c0 + c1 r + ... + c10 r^10 taken as
       E(r^2) + r O(r^2), its even and odd coefficients by Horner's rule in
       r^2: two chains of five multiply-adds side by side, where Horner's
       rule in r (one chain of ten) held too few exponentials in flight on an
       AMD Zen 3 core (float64 softmax at x86-64-v3, kernel-only, ns an
       entry: C = 256 1.23 against 1.31, C = 64 1.40 against 1.49; baseline
       C = 1000 3.8 against 4.7).  Estrin's scheme (a chain of four) was no faster there on
       average and takes two more operations (llvm-mca puts it a fifth
       slower on an Intel Ice Lake core; the split, even with Horner's).  The
       result stays within about one ulp: at most 0.85 over 2e7 samples of
       [-708, 0] with FMA (Horner's: 0.63; 1.19 at x = -0x1.b82560f4f04adp+7,
       found by another draw of 2e7), 0.95 over [-0.7, 0] without
       (Horner's: 0.73; there the reduction adds its own error, above).  In
       float32 the chain is short (degree 5) and Estrin's scheme lost
       (C = 1000 0.58 against 0.55 ns an entry). */
    double r2 = r * r;
    double ev = 0x1.af4ddd84882fep-26 * r2 + 0x1.71de02375656cp-19;
    double od = 0x1.28a2c0a7209fbp-22 * r2 + 0x1.a019a66a75dd4p-16;
    ev = ev * r2 + 0x1.a01a01abe62ddp-13;
    od = od * r2 + 0x1.6c16c17f43a58p-10;
    ev = ev * r2 + 0x1.11111111100dfp-7;
    od = od * r2 + 0x1.55555555520afp-5;
    ev = ev * r2 + 0x1.5555555555557p-3;
    od = od * r2 + 0x1.0000000000005p-1;
    ev = ev * r2 + 1.0;
    double q = od * r + ev;
    /* 2^n for n in [-1022, 0]: n's low bits moved into the exponent field */
    double scale = cs_from_bits_f64((cs_bits_f64(z) << 52) + 0x3ff0000000000000ULL);
    double y = (q * r + 1.0) * scale;
    return x < -708.5 ? 0.0 : y;                  /* also -inf; nan stays */
}

CS_INLINE double cs_expneg_f64(double x)
{
    const double shift = 0x1.8p52;
    double z = x * 0x1.71547652b82fep0 + shift;   /* low bits: n = round(x/ln2) */
    double kd = z - shift;
    double r = x - kd * CS_LN2_F64;
    r = r - kd * CS_LN2_LO_F64;
    return cs_expneg_core_f64(x, z, r);
}

CS_INLINE double cs_expneg_fma_f64(double x)
{
    const double shift = 0x1.8p52;
    double z = fma(x, 0x1.71547652b82fep0, shift);
    double kd = z - shift;
    double r = fma(-kd, CS_LN2_F64, x);
    r = fma(-kd, CS_LN2_LO_F64, r);
    return cs_expneg_core_f64(x, z, r);
}

/* The table of a float64 exponential that reduces by steps of ln2 / 16
   (expneg_tab_d8 in cs_kernels_t.h): 2^(j/16) rounded to double for
   j = 0..15, then each one's rounding error relative to it,
   (2^(j/16) - fl(2^(j/16))) / fl(2^(j/16)), to be added back. */
static const double cs_exp2_16ths[32] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0,
    0.0, 0x1.79aa65d837b6dp-54, -0x1.01b15eaa59348p-55, 0x1.68efde3a8a894p-54,
    0x1.34d754db0abb6p-55, 0x1.59f48a72a4c6dp-55, 0x1.690cebb7aafb0p-56, 0x1.063e1e21c5409p-54,
    -0x1.3b3efbf5e2228p-54, -0x1.b32dcb94da51dp-56, 0x1.db72fc1f0eab4p-55, 0x1.1affc2b91ce27p-56,
    0x1.c1a7792cb3387p-55, 0x1.36eae30af0cb3p-56, 0x1.4a385a63d07a7p-56, -0x1.ff7128fd391f0p-55,
};

/* exp(r) = 1 + r q(r) on the reduced argument r, q of degree 5 (|error| <
   1.2e-8 relative): q by Horner's rule, for a float or a vector of floats
   (the kernels' vector exponentials take the same steps). */
#define CS_EXPNEG_Q_F32(r)                                                                          \
    (((((0x1.6d431504c53d3p-10f * (r) + 0x1.123d818823e7fp-7f) * (r) + 0x1.5554e9114ecf9p-5f) * (r) + \
       0x1.55547cb290b03p-3f) * (r) + 0x1.0000000b8f62bp-1f) * (r) + 0x1.0000002e43777p+0f)

/* exp(x) for x <= 0 or nan in float, as cs_expneg_f64: flushed to 0 below
   exp(-87.5) (about FLT_MIN). */
CS_INLINE float cs_expneg_core_f32(float x, float z, float r)
{
    float q = CS_EXPNEG_Q_F32(r);
    float scale = cs_from_bits_f32((cs_bits_f32(z) << 23) + 0x3f800000U);
    float y = (q * r + 1.0f) * scale;
    /* a bit mask here, a ternary in the float64 version: each is the form
       that vectorises best for its type */
    uint32_t under = -(uint32_t)(x < -87.5f);
    return cs_from_bits_f32(cs_bits_f32(y) & ~under);
}

CS_INLINE float cs_expneg_f32(float x)
{
    const float shift = 0x1.8p23f;
    float z = x * 0x1.715476p0f + shift;
    float kd = z - shift;
    float r = x - kd * CS_LN2_F32;
    r = r - kd * CS_LN2_LO_F32;
    return cs_expneg_core_f32(x, z, r);
}

CS_INLINE float cs_expneg_fma_f32(float x)
{
    const float shift = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p0f, shift);
    float kd = z - shift;
    float r = fmaf(-kd, CS_LN2_F32, x);
    r = fmaf(-kd, CS_LN2_LO_F32, r);
    return cs_expneg_core_f32(x, z, r);
}

/* *s + v, with the rounding error of the add accumulated in *err (Knuth's
   TwoSum: exact for any order of magnitudes, no branch). */
CS_INLINE void cs_two_sum(double *s, double *err, double v)
{
    double t = *s + v;
    double vp = t - *s;
    *err += (*s - (t - vp)) + (v - vp);
    *s = t;
}

/* log(s) in double for finite s >= 1 (a sum of exponentials whose largest term
   is 1); nan stays nan.  Other inputs take the scalar libm path in the caller. */
CS_INLINE double cs_log_sum(double s)
{
    const double ln2_hi = 0x1.62e42fee00000p-1;
    const double ln2_lo = 0x1.a39ef35793c76p-33;
    /* s = 2^k * f with f in [sqrt(1/2), sqrt(2)). */
    uint64_t u = cs_bits_f64(s) - 0x3fe6a09e667f3bcdULL;   /* > 0 for s >= 1 */
    /* k = u >> 52 as a double without an int64 conversion (none before AVX-512) */
    double kd = cs_from_bits_f64(0x4330000000000000ULL | (u >> 52)) - 0x1p52;
    double f = cs_from_bits_f64((u & 0x000fffffffffffffULL) + 0x3fe6a09e667f3bcdULL);
    /* log f = 2 atanh(t), t = (f-1)/(f+1), |t| < 0.172: odd series to t^23. */
    double t = (f - 1.0) / (f + 1.0);
    double t2 = t * t;
    /* q = sum_k 2/(2k+3) t2^k, k = 0..10, by Estrin's scheme: a chain of four
       multiply-adds instead of ten (it is on each row's critical path) */
    double t4 = t2 * t2, t8 = t4 * t4;
    double a0 = 2.0 / 3.0 + 2.0 / 5.0 * t2, a1 = 2.0 / 7.0 + 2.0 / 9.0 * t2;
    double a2 = 2.0 / 11.0 + 2.0 / 13.0 * t2, a3 = 2.0 / 15.0 + 2.0 / 17.0 * t2;
    double a4 = 2.0 / 19.0 + 2.0 / 21.0 * t2;
    double b0 = a0 + a1 * t4, b1 = a2 + a3 * t4, b2 = a4 + 2.0 / 23.0 * t4;
    double q = (b0 + b1 * t8) + b2 * (t8 * t8);
    /* 2t + t^3 q, with the leading 2t kept apart from the small tail */
    double y = kd * ln2_hi + (2.0 * t + (t * t2 * q + kd * ln2_lo));
    uint64_t keep = -(uint64_t)(s < (double)INFINITY);   /* not for nan, +inf */
    return cs_from_bits_f64((cs_bits_f64(y) & keep) | (cs_bits_f64(s) & ~keep));
}

/* logsumexp's result from a row's sums taken with its max M out (a row's, or
   a long row's pieces merged): float64 (f64), m the weights of the entries
   equal to M and s the sum over the others, M + log |m| + log1p(s / m), so
   that a sum dominated by its largest terms keeps the others' part (s / m
   below -1: log |1 + s / m| through log1p as well); float32, s the whole sum
   in double (m unused), M + log |s|.  *sg the sum's sign.  Not finite where
   the sum cancels (m = 0, or a sum of 0). */
CS_INLINE double cs_lse_from_sums(int f64, double M, double m, double s, double *sg)
{
    if (!f64) {
        *sg = s > 0 ? 1.0 : s < 0 ? -1.0 : 0.0;
        return log(fabs(s)) + M;
    }
    if (s != 0.0)
        s /= m;
    *sg = (s + 1.0 > 0 ? 1.0 : s + 1.0 < 0 ? -1.0 : 0.0) * (m > 0 ? 1.0 : m < 0 ? -1.0 : 0.0);
    if (s < -1.0)
        s = -s - 2.0;
    return log1p(s) + log(fabs(m)) + M;
}

#endif /* CS_MATH_H */
