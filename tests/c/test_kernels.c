/*
 * test_kernels.c -- every kernel of CS_KERNELS at every instruction-set level
 * this CPU runs (and this build has), through a cs_task as the Cython layer
 * fills it, against a plain C reference in long double.  No Python needed:
 * this is the test that runs on a cross-compiled aarch64 build under qemu.
 *
 *   cc -O3 -fno-math-errno -fno-trapping-math -fopenmp-simd \
 *      -Icsoftmax/include tests/c/test_kernels.c -lm -o test_kernels
 *   ./test_kernels            (exit status 0: every kernel within tolerance)
 *
 * With -DCS_V4_ON_V3=1 an x86-64-v3 CPU also runs the x86-64-v4 kernels,
 * compiled for AVX2 (see cs_dispatch.h).
 *
 * Tolerances: |got - ref| <= tol * (|ref| + 1), tol 1e-13 (float64) and
 * 2e-6 (float32); inputs are O(1), so the "+ 1" only covers results near 0
 * that come out of a cancellation (gradients, log-softmax near 0).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_dispatch.h"
#include "cs_reduce.h"

typedef long double ld;

static int failures, checks, tested[CS_NKERNELS];
static const char *level_name;

/* ---- data ---- */

static unsigned long long rng_state = 88172645463325252ULL;
static double uniform(void) /* [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* buffers hold float or double by dtype; indices in elements */
static void *alloc(int dt, cs_intp n)
{
    void *p = calloc((size_t)(n > 0 ? n : 1), dt == CS_F32 ? 4 : 8);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}
static ld get(const void *b, int dt, cs_intp i)
{
    return dt == CS_F32 ? (ld)((const float *)b)[i] : (ld)((const double *)b)[i];
}
static void set(void *b, int dt, cs_intp i, ld v)
{
    if (dt == CS_F32)
        ((float *)b)[i] = (float)v;
    else
        ((double *)b)[i] = (double)v;
}
static void *randn(int dt, cs_intp n, double scale)
{
    void *b = alloc(dt, n);
    for (cs_intp i = 0; i < n; i++)
        set(b, dt, i, scale * (2.0 * uniform() - 1.0));
    return b;
}

/* ---- checking ---- */

/* one check: got within bound of ref, or a failure (the first 20 reported) */
static void check_within(const char *kernel, int dt, const char *what, cs_intp i, ld got, ld ref, ld bound)
{
    checks++;
    if (fabsl(got - ref) <= bound)
        return;
    if (failures++ < 20)
        fprintf(stderr, "MISMATCH %s %s %s %s [%ld]: got %.17Lg, reference %.17Lg\n", level_name, kernel,
                dt == CS_F32 ? "float32" : "float64", what, (long)i, got, ref);
}

static void check(const char *kernel, int dt, const char *what, cs_intp i, ld got, ld ref)
{
    ld tol = dt == CS_F32 ? 2e-6L : 1e-13L;
    check_within(kernel, dt, what, i, got, ref, tol * (fabsl(ref) + 1.0L));
}

/* the kernel `id` over units [0, n) in two calls (as two threads would) */
static void run(const cs_ops *ops, int id, int dt, const cs_task *t, cs_intp n, void *scratch)
{
    cs_kernel k = cs_pick(ops, id, dt);
    cs_intp h = n / 2;
    k(t, 0, h, scratch);
    k(t, h, n, scratch);
    tested[id] = 1;
}

/* reference: softmax of a row x[0], x[st], ... into s (long double), returns lse */
static ld ref_row(const void *x, int dt, cs_intp off, cs_intp st, cs_intp C, ld *s)
{
    ld m = -INFINITY, sum = 0;
    for (cs_intp j = 0; j < C; j++)
        m = fmaxl(m, get(x, dt, off + j * st));
    for (cs_intp j = 0; j < C; j++)
        sum += s[j] = expl(get(x, dt, off + j * st) - m);
    for (cs_intp j = 0; j < C; j++)
        s[j] /= sum;
    return m + logl(sum);
}

/* ---- row kernels: softmax, log-softmax, backward, jacobian, losses ---- */

static void test_rows(const cs_ops *ops, int dt, cs_intp N, cs_intp C, int pad)
{
    /* padded rows (strides matter), or contiguous ones (the narrow kernels'
       last pass then runs over the block in row order) */
    cs_intp xs = C + 3 * pad, ys = C + pad;
    void *x = randn(dt, N * xs, 4.0), *g = randn(dt, N * xs, 1.0), *y = alloc(dt, N * ys);
    ld *s = malloc(sizeof(ld) * C), *ref = malloc(sizeof(ld) * (size_t)(N * ys + 1));
    cs_task t = {0};
    t.x = x; t.xs0 = xs; t.xs1 = 1; t.y = y; t.ys0 = ys; t.ys1 = 1; t.C = C;
    /* padded rows as if the call were large: the forward kernels prefetch */
    t.N = pad ? (cs_intp)1 << 40 : N;

    /* logsumexp_rows: one value per row and its sign */
    {
        void *l = alloc(dt, N), *sg = alloc(dt, N);
        cs_task u = {0};
        u.x = x; u.xs0 = xs; u.xs1 = 1; u.C = C; u.y = l; u.ys0 = 1; u.sign = sg;
        run(ops, CS_K_logsumexp_rows, dt, &u, N, NULL);
        for (cs_intp i = 0; i < N; i++) {
            check("logsumexp_rows", dt, "lse", i, get(l, dt, i), ref_row(x, dt, i * xs, 1, C, s));
            check("logsumexp_rows", dt, "sign", i, get(sg, dt, i), 1.0L);
        }
        /* with weights wb (positive, every seventh 0: out) and a mask (every
           third entry out), each and both */
        unsigned char *mk = malloc((size_t)(N * xs));
        void *wb = alloc(dt, N * xs);
        for (cs_intp k = 0; k < N * xs; k++) {
            mk[k] = k % 3 != 1;
            set(wb, dt, k, k % 7 == 3 ? 0.0L : 0.25L + fabsl(get(g, dt, k)));
        }
        u.gs0 = xs;
        for (int v = 1; v < 4; v++) {
            u.g = v & 1 ? wb : NULL;
            u.mask = v & 2 ? mk : NULL;
            u.ms0 = xs;
            run(ops, CS_K_logsumexp_rows, dt, &u, N, NULL);
            for (cs_intp i = 0; i < N; i++) {
                ld sum = 0;
                for (cs_intp j = 0; j < C; j++)
                    if (!(v & 2) || mk[i * xs + j])
                        sum += (v & 1 ? get(wb, dt, i * xs + j) : 1.0L) * expl(get(x, dt, i * xs + j));
                if (sum == 0)   /* nothing takes part: -inf, sign 0 */
                    check("logsumexp_rows", dt, "lse of nothing", i, get(l, dt, i) == -INFINITY, 1);
                if (sum == 0)
                    continue;
                check("logsumexp_rows", dt, v == 1 ? "lse b" : v == 2 ? "lse where" : "lse b where", i,
                      get(l, dt, i), logl(fabsl(sum)));
                check("logsumexp_rows", dt, "sign", i, get(sg, dt, i), sum > 0 ? 1.0L : sum < 0 ? -1.0L : 0.0L);
            }
        }
        free(mk);
        free(wb);
        free(l);
        free(sg);
    }

    /* softmax_where_rows, log_softmax_where_rows: every third entry
       excluded, and every entry of row 1 (none set: 0, log -inf) */
    {
        unsigned char *mk = malloc((size_t)(N * xs));
        size_t nscratch = (size_t)C * 8 > CS_WHERE_BYTES ? (size_t)C * 8 : CS_WHERE_BYTES;
        void *scratch = malloc(nscratch);
        for (cs_intp k = 0; k < N * xs; k++)
            mk[k] = k % 3 != 1 && (N < 2 || k / xs != 1);
        t.mask = mk;
        t.ms0 = xs;
        for (int lg = 0; lg < 2; lg++) {
            const char *name = lg ? "log_softmax_where_rows" : "softmax_where_rows";
            run(ops, lg ? CS_K_log_softmax_where_rows : CS_K_softmax_where_rows, dt, &t, N, scratch);
            for (cs_intp i = 0; i < N; i++) {
                ld m = -INFINITY, sum = 0;
                for (cs_intp j = 0; j < C; j++)
                    if (mk[i * xs + j])
                        m = fmaxl(m, get(x, dt, i * xs + j));
                for (cs_intp j = 0; j < C; j++)
                    if (mk[i * xs + j])
                        sum += expl(get(x, dt, i * xs + j) - m);
                for (cs_intp j = 0; j < C; j++) {
                    ld got = get(y, dt, i * ys + j), xj = get(x, dt, i * xs + j);
                    if (!mk[i * xs + j])   /* excluded: exactly 0, or -inf */
                        check(name, dt, "excluded", i * C + j, lg ? (got == -INFINITY) : got, lg ? 1 : 0);
                    else
                        check(name, dt, "y", i * C + j, got, lg ? (xj - m) - logl(sum) : expl(xj - m) / sum);
                }
            }
        }
        t.mask = NULL;
        free(mk);
        free(scratch);
    }

    /* softmax_rows, log_softmax_rows (then their backward from these outputs) */
    for (int lg = 0; lg < 2; lg++) {
        run(ops, lg ? CS_K_log_softmax_rows : CS_K_softmax_rows, dt, &t, N, NULL);
        for (cs_intp i = 0; i < N; i++) {
            ld lse = ref_row(x, dt, i * xs, 1, C, s);
            for (cs_intp j = 0; j < C; j++)
                check(lg ? "log_softmax_rows" : "softmax_rows", dt, "y", i * C + j, get(y, dt, i * ys + j),
                      lg ? get(x, dt, i * xs + j) - lse : s[j]);
        }
        /* backward: x = the forward output (y), g = grad_output; log_softmax's
           again with an entry above 0 in every third row (its exponential
           then takes the other path) */
        void *out = alloc(dt, N * xs), *out2 = alloc(dt, N * xs);
        const size_t esize = dt == CS_F32 ? 4 : 8;
        cs_task b = {0};
        b.x = y; b.xs0 = ys; b.xs1 = 1; b.g = g; b.gs0 = xs; b.gs1 = 1;
        b.y = out; b.ys0 = xs; b.ys1 = 1; b.C = C;
        for (int bump = 0; bump < 1 + lg; bump++) {
        if (bump)
            for (cs_intp i = 1; i < N; i += 3)
                set(y, dt, i * ys + i % C, 0.75L);
        run(ops, lg ? CS_K_log_softmax_backward_rows : CS_K_softmax_backward_rows, dt, &b, N, NULL);
        for (cs_intp i = 0; i < N; i++) {
            ld acc = 0;
            for (cs_intp j = 0; j < C; j++)
                acc += lg ? get(g, dt, i * xs + j) : get(g, dt, i * xs + j) * get(y, dt, i * ys + j);
            for (cs_intp j = 0; j < C; j++) {
                ld yj = get(y, dt, i * ys + j), gj = get(g, dt, i * xs + j);
                ld r = lg ? gj - expl(yj) * acc : yj * (gj - acc);
                check(lg ? "log_softmax_backward_rows" : "softmax_backward_rows", dt, "dx", i * C + j,
                      get(out, dt, i * xs + j), r);
            }
        }
        /* as if the call were large (mid-width rows one at a time, not four):
           the same bits */
        b.y = out2;
        b.N = (cs_intp)1 << 40;
        run(ops, lg ? CS_K_log_softmax_backward_rows : CS_K_softmax_backward_rows, dt, &b, N, NULL);
        for (cs_intp i = 0; i < N; i++)
            for (cs_intp j = 0; j < C; j++)
                check(lg ? "log_softmax_backward_rows" : "softmax_backward_rows", dt, "dx of a large call",
                      i * C + j, memcmp((char *)out2 + (i * xs + j) * esize, (char *)out + (i * xs + j) * esize,
                                        esize) == 0, 1);
        b.y = out;
        b.N = 0;
        }
        free(out);
        free(out2);
    }

    /* jacobian_rows: C x C per row, contiguous */
    if (C <= 64) {
        void *J = alloc(dt, N * C * C);
        cs_task j = t;
        j.y = J;
        run(ops, CS_K_jacobian_rows, dt, &j, N, NULL);
        for (cs_intp i = 0; i < N; i++) {
            ref_row(x, dt, i * xs, 1, C, s);
            for (cs_intp r = 0; r < C; r++)
                for (cs_intp c = 0; c < C; c++)
                    check("jacobian_rows", dt, "J", (i * C + r) * C + c, get(J, dt, (i * C + r) * C + c),
                          (r == c ? s[r] : 0) - s[r] * s[c]);
        }
        free(J);
    }

    /* ce_index_rows, ce_prob_rows: with and without a gradient, with a
       per-row scale and with the global one */
    cs_intp *label = malloc(sizeof(cs_intp) * N);
    double *loss = malloc(sizeof(double) * N), *rscale = malloc(sizeof(double) * N);
    double *loss0 = malloc(sizeof(double) * N);   /* variant 0's: the loss alone */
    void *p = alloc(dt, N * xs);
    for (cs_intp i = 0; i < N; i++) {
        label[i] = (cs_intp)(uniform() * C);
        rscale[i] = 0.25 + uniform();
        ld tot = 0;
        for (cs_intp c = 0; c < C; c++) {
            ld v = uniform() < 0.3 ? 0 : uniform();
            set(p, dt, i * xs + c, v);
            tot += get(p, dt, i * xs + c);
        }
        (void)tot;
    }
    /* class weights for the option variants: 3 weights, 4 smoothing, 5 both */
    double *cw = malloc(sizeof(double) * (C + 1)), cwsum = 0;
    void *cwt = alloc(dt, C + 1);
    for (cs_intp j = 0; j < C; j++) {
        cwsum += cw[j] = j % 5 == 2 ? 0.0 : (double)(float)(0.5 + uniform());   /* exact in float */
        set(cwt, dt, j, cw[j]);
    }
    for (int prob = 0; prob < 2; prob++)
        for (int variant = 0; variant < 6; variant++) {
            const char *name = prob ? "ce_prob_rows" : "ce_index_rows";
            int weighted = variant == 3 || variant == 5;
            double eps = variant >= 4 ? 0.2 : 0.0;
            cs_task c = {0};
            c.x = x; c.xs0 = xs; c.xs1 = 1; c.C = C;
            c.label = prob ? NULL : label;
            c.g = prob ? p : NULL; c.gs0 = xs; c.gs1 = 1;
            c.y = variant == 0 ? NULL : y; c.ys0 = ys; c.ys1 = 1;
            c.rscale = variant >= 2 ? rscale : NULL;
            c.gscale = 0.5;
            c.ignore = -1;   /* no label is ignored */
            c.loss = loss;
            c.cweight = weighted ? cw : NULL;
            c.cweight_t = weighted ? cwt : NULL;
            c.cwsum = weighted ? cwsum : (double)C;
            c.smooth = eps;
            run(ops, prob ? CS_K_ce_prob_rows : CS_K_ce_index_rows, dt, &c, N, NULL);
            for (cs_intp i = 0; i < N; i++) {
                ld lse = ref_row(x, dt, i * xs, 1, C, s), l = 0, sa = 0;
                ld k = variant >= 2 ? rscale[i] * 0.5 : 0.5;   /* rscale[i] times gscale */
                for (cs_intp j = 0; j < C; j++) {
                    ld yj = prob ? get(p, dt, i * xs + j) : (ld)(j == label[i]);
                    ld aj = (weighted ? cw[j] : 1.0L) * ((1 - eps) * yj + eps / C);
                    if (aj != 0)
                        l += aj * (lse - get(x, dt, i * xs + j));
                    sa += aj;
                }
                check(name, dt, "loss", i, loss[i], l);
                if (variant == 0) {
                    loss0[i] = loss[i];
                    continue;
                }
                /* the loss with the gradient: the same bits as alone */
                if (variant <= 2)
                    check_within(name, dt, "loss with the gradient", i, loss[i], loss0[i], 0);
                for (cs_intp j = 0; j < C; j++) {
                    ld yj = prob ? get(p, dt, i * xs + j) : (ld)(j == label[i]);
                    ld aj = (weighted ? cw[j] : 1.0L) * ((1 - eps) * yj + eps / C);
                    check(name, dt, "grad", i * C + j, get(y, dt, i * ys + j), k * (s[j] * sa - aj));
                }
            }
        }
    free(cw);
    free(cwt);
    free(label); free(loss); free(loss0); free(rscale); free(p);
    free(x); free(g); free(y); free(s); free(ref);
}

/* ---- column kernels: (outer, C, inner), tiles of W columns, the first of
   each outer block W - shift wide: the same bits as with no shift ---- */

static void test_cols(const cs_ops *ops, int dt, cs_intp outer, cs_intp C, cs_intp inner, cs_intp W, cs_intp shift)
{
    cs_intp n = outer * C * inner;
    void *x = randn(dt, n, 4.0), *g = randn(dt, n, 1.0), *y = alloc(dt, n), *out = alloc(dt, n);
    void *y0 = alloc(dt, n);
    void *scratch = alloc(dt, C * W);
    ld *s = malloc(sizeof(ld) * C);
    cs_intp units = outer * ((inner + shift + W - 1) / W), units0 = outer * ((inner + W - 1) / W);
    size_t bytes = (size_t)n * (dt == CS_F32 ? 4 : 8);
    /* logsumexp_cols: one value per column and its sign; a column of -inf,
       one holding +inf and one holding a nan in the second outer block */
    {
        void *l = alloc(dt, outer * inner), *sg = alloc(dt, outer * inner);
        void *xs = alloc(dt, n);
        memcpy(xs, x, (size_t)n * (dt == CS_F32 ? 4 : 8));
        int special = outer > 1 && inner > 3;
        if (special)
            for (cs_intp j = 0; j < C; j++) {
                set(xs, dt, C * inner + j * inner + 0, -INFINITY);
                if (j == C / 2) {
                    set(xs, dt, C * inner + j * inner + 1, INFINITY);
                    set(xs, dt, C * inner + j * inner + 2, NAN);
                }
            }
        cs_task u = {0};
        u.x = xs; u.xs0 = C * inner; u.xs1 = inner;
        u.y = l; u.ys0 = inner; u.sign = sg;
        u.C = C; u.inner = inner; u.W = W; u.shift = shift;
        run(ops, CS_K_logsumexp_cols, dt, &u, units, scratch);
        for (cs_intp o = 0; o < outer; o++)
            for (cs_intp c = 0; c < inner; c++) {
                cs_intp i = o * inner + c;
                if (special && o == 1 && c < 3) {
                    ld got = get(l, dt, i), gs = get(sg, dt, i);
                    int ok = c == 0 ? got == -INFINITY && gs == 0 : c == 1 ? got == INFINITY && gs == 1
                                                                    : isnan(got) && isnan(gs);
                    check_within("logsumexp_cols", dt, "special column", i, ok, 1, 0);
                    continue;
                }
                check("logsumexp_cols", dt, "lse", i, get(l, dt, i), ref_row(xs, dt, o * C * inner + c, inner, C, s));
                check("logsumexp_cols", dt, "sign", i, get(sg, dt, i), 1.0L);
            }
        free(l); free(sg); free(xs);
    }
    for (int lg = 0; lg < 2; lg++) {
        cs_task t = {0};
        t.x = x; t.xs0 = C * inner; t.xs1 = inner;
        t.y = y; t.ys0 = C * inner; t.ys1 = inner;
        t.C = C; t.inner = inner; t.W = W;
        if (shift) {
            cs_task t0 = t;
            t0.y = y0;
            run(ops, lg ? CS_K_log_softmax_cols : CS_K_softmax_cols, dt, &t0, units0, scratch);
        }
        t.shift = shift;
        run(ops, lg ? CS_K_log_softmax_cols : CS_K_softmax_cols, dt, &t, units, scratch);
        if (shift)
            check_within(lg ? "log_softmax_cols" : "softmax_cols", dt, "shifted tiles, bits", 0,
                         memcmp(y, y0, bytes) == 0, 1, 0);
        {   /* streaming stores (x86-64: the strips that lie on lines): the same bits */
            void *yn = aligned_alloc(64, (bytes + 63) / 64 * 64);
            cs_task tn = t;
            tn.y = yn;
            tn.nt = 1;
            run(ops, lg ? CS_K_log_softmax_cols : CS_K_softmax_cols, dt, &tn, units, scratch);
            check_within(lg ? "log_softmax_cols" : "softmax_cols", dt, "streamed tiles, bits", 0,
                         memcmp(y, yn, bytes) == 0, 1, 0);
            free(yn);
        }
        for (cs_intp o = 0; o < outer; o++)
            for (cs_intp c = 0; c < inner; c++) {
                cs_intp base = o * C * inner + c;
                ld lse = ref_row(x, dt, base, inner, C, s);
                for (cs_intp j = 0; j < C; j++)
                    check(lg ? "log_softmax_cols" : "softmax_cols", dt, "y", base + j * inner,
                          get(y, dt, base + j * inner), lg ? get(x, dt, base + j * inner) - lse : s[j]);
            }
        cs_task b = t;
        b.x = y; b.g = g; b.gs0 = C * inner; b.gs1 = inner; b.y = out;
        for (int bump = 0; bump < 1 + lg; bump++) {
        if (bump)   /* an entry above 0 in every third column */
            for (cs_intp o = 0; o < outer; o++)
                for (cs_intp c = 1; c < inner; c += 3)
                    set(y, dt, o * C * inner + c + (c % C) * inner, 0.75L);
        run(ops, lg ? CS_K_log_softmax_backward_cols : CS_K_softmax_backward_cols, dt, &b, units, NULL);
        for (cs_intp o = 0; o < outer; o++)
            for (cs_intp c = 0; c < inner; c++) {
                cs_intp base = o * C * inner + c;
                ld acc = 0;
                for (cs_intp j = 0; j < C; j++) {
                    ld gj = get(g, dt, base + j * inner), yj = get(y, dt, base + j * inner);
                    acc += lg ? gj : gj * yj;
                }
                for (cs_intp j = 0; j < C; j++) {
                    ld gj = get(g, dt, base + j * inner), yj = get(y, dt, base + j * inner);
                    check(lg ? "log_softmax_backward_cols" : "softmax_backward_cols", dt, "dx", base + j * inner,
                          get(out, dt, base + j * inner), lg ? gj - expl(yj) * acc : yj * (gj - acc));
                }
            }
        }
    }
    free(x); free(g); free(y); free(out); free(y0); free(scratch); free(s);
}

/* ---- log_softmax_backward's exponential, down to the smallest normal ---- */

/* Log-probabilities spread over [-L, 0] (L = 80 float32, 700 float64: their
   exponentials stay normal) and g = 1 on the entry at 0, else 0, so that
   dx = -exp(log s) wherever g = 0: the exponential alone, checked relative
   to its value (within 4 units of eps/2: 2^-24 float32, 2^-53 float64), by
   rows (C wide) and by columns (C deep, N side by side).  An exponential
   whose range reduction x - n ln2 is not exact (a multiply and a subtract,
   each rounded, where the compiler does not contract them) is off by up to
   |x| eps/2 relative: measured, 65 units at -80 in float32, 512 at -700 in
   float64. */
static void check_rel(const char *kernel, int dt, cs_intp i, ld got, ld ref)
{
    ld half_eps = dt == CS_F32 ? 0x1p-24L : 0x1p-53L;
    check_within(kernel, dt, "dx, relative", i, got, ref, 4 * half_eps * fabsl(ref));
}

static void test_log_backward_range(const cs_ops *ops, int dt, cs_intp N, cs_intp C)
{
    ld L = dt == CS_F32 ? 80 : 700;
    void *ls = alloc(dt, N * C), *g = alloc(dt, N * C), *out = alloc(dt, N * C);
    for (int by_cols = 0; by_cols < 2; by_cols++) {
        /* rows: entry (i, j) at i * C + j; columns: at j * N + i (N side by side) */
        cs_intp rs = by_cols ? 1 : C, cs = by_cols ? N : 1;
        for (cs_intp i = 0; i < N; i++)
            for (cs_intp j = 0; j < C; j++) {
                set(ls, dt, i * rs + j * cs, j == i % C ? 0.0L : -L * uniform());
                set(g, dt, i * rs + j * cs, j == i % C ? 1.0L : 0.0L);
            }
        cs_task b = {0};
        b.x = ls; b.g = g; b.y = out; b.C = C;
        const char *name = by_cols ? "log_softmax_backward_cols" : "log_softmax_backward_rows";
        if (by_cols) {
            b.xs0 = b.gs0 = b.ys0 = C * N; b.xs1 = b.gs1 = b.ys1 = N;
            b.inner = N; b.W = N;
            run(ops, CS_K_log_softmax_backward_cols, dt, &b, 1, NULL);
        } else {
            b.xs0 = b.gs0 = b.ys0 = C; b.xs1 = b.gs1 = b.ys1 = 1;
            run(ops, CS_K_log_softmax_backward_rows, dt, &b, N, NULL);
        }
        for (cs_intp i = 0; i < N; i++)
            for (cs_intp j = 0; j < C; j++)
                if (j != i % C)
                    check_rel(name, dt, i * rs + j * cs, get(out, dt, i * rs + j * cs),
                              -expl(get(ls, dt, i * rs + j * cs)));
    }
    free(ls); free(g); free(out);
}

/* ---- softmax_backward over rows past 8 KiB an array ---- */

/* Their output pass goes backwards by blocks, the first of them partial: the
   result against the reference, and in place (out = g, then out = s) the
   same bits. */
static void test_backward_wide(const cs_ops *ops, int dt, cs_intp N, cs_intp C)
{
    const size_t esize = dt == CS_F32 ? 4 : 8;
    void *x = randn(dt, N * C, 4.0), *g = randn(dt, N * C, 1.0), *s = alloc(dt, N * C);
    void *out = alloc(dt, N * C), *g2 = alloc(dt, N * C), *s2 = alloc(dt, N * C);
    ld *r = malloc(sizeof(ld) * C);
    for (cs_intp i = 0; i < N; i++) {
        ref_row(x, dt, i * C, 1, C, r);
        for (cs_intp j = 0; j < C; j++)
            set(s, dt, i * C + j, r[j]);
    }
    cs_task b = {0};
    b.x = s; b.xs0 = C; b.xs1 = 1; b.g = g; b.gs0 = C; b.gs1 = 1;
    b.y = out; b.ys0 = C; b.ys1 = 1; b.C = C;
    run(ops, CS_K_softmax_backward_rows, dt, &b, N, NULL);
    for (cs_intp i = 0; i < N; i++) {
        ld acc = 0;
        for (cs_intp j = 0; j < C; j++)
            acc += get(g, dt, i * C + j) * get(s, dt, i * C + j);
        for (cs_intp j = 0; j < C; j++)
            check("softmax_backward_rows", dt, "dx of a wide row", i * C + j, get(out, dt, i * C + j),
                  get(s, dt, i * C + j) * (get(g, dt, i * C + j) - acc));
    }
    for (int onto_s = 0; onto_s < 2; onto_s++) {
        memcpy(g2, g, N * C * esize);
        memcpy(s2, s, N * C * esize);
        b.x = s2; b.g = g2; b.y = onto_s ? s2 : g2;
        run(ops, CS_K_softmax_backward_rows, dt, &b, N, NULL);
        for (cs_intp i = 0; i < N * C; i++)
            check("softmax_backward_rows", dt, onto_s ? "dx onto s" : "dx onto g", i,
                  memcmp((char *)b.y + i * esize, (char *)out + i * esize, esize) == 0, 1);
    }
    free(x); free(g); free(s); free(out); free(g2); free(s2); free(r);
}

/* ---- one long row in pieces ---- */

static void test_pieces(const cs_ops *ops, int dt, cs_intp C, cs_intp piece)
{
    void *x = randn(dt, C, 4.0), *y = alloc(dt, C), *xm = alloc(dt, C), *sel = alloc(dt, piece);
    ld *s = malloc(sizeof(ld) * C);
    unsigned char *k = malloc((size_t)C);
    cs_intp npc = (C + piece - 1) / piece;
    double *pmax = malloc(sizeof(double) * npc), *psum = malloc(sizeof(double) * 2 * npc);
    /* with a mask (every third entry out), each piece is selected into
       scratch: the row's entries as -inf there (xm) for the reference */
    for (int masked = 0; masked < 2; masked++) {
        for (cs_intp j = 0; j < C; j++) {
            k[j] = !masked || j % 3 != 0;
            set(xm, dt, j, k[j] ? get(x, dt, j) : -INFINITY);
        }
        ld lse = ref_row(xm, dt, 0, 1, C, s);
        for (int keep = 0; keep < 2; keep++)
            for (int lg = 0; lg < 2; lg++) {
                cs_task t = {0};
                t.x = x; t.xs0 = C; t.xs1 = 1; t.y = y; t.ys0 = C; t.ys1 = 1; t.C = C;
                t.piece = piece; t.pmax = pmax; t.psum = psum; t.keep = keep && !lg;
                t.mask = masked ? k : NULL;
                memset(y, 0, (size_t)C * (dt == CS_F32 ? 4 : 8));
                run(ops, CS_K_piece_sumexp, dt, &t, npc, sel);
                if (!cs_pieces_combine(&t, npc)) {
                    fprintf(stderr, "MISMATCH %s piece_sumexp: pieces not combined\n", level_name);
                    failures++;
                    continue;
                }
                check("piece_sumexp", dt, masked ? "M+log S where" : "M+log S", 0, (ld)t.M + logl((ld)t.S), lse);
                run(ops, lg ? CS_K_log_softmax_piece_finish : CS_K_softmax_piece_finish, dt, &t, npc, NULL);
                for (cs_intp j = 0; j < C; j++) {
                    const char *kn = lg ? "log_softmax_piece_finish" : "softmax_piece_finish";
                    if (lg && !k[j])
                        check(kn, dt, "masked y", j, get(y, dt, j) == -INFINITY, 1);
                    else
                        check(kn, dt, masked ? "y where" : "y", j, get(y, dt, j), lg ? get(x, dt, j) - lse : s[j]);
                }
            }
        /* logsumexp_pieces: each piece's max and sums, merged as a row's sums */
        cs_task t = {0};
        t.x = x; t.xs0 = C; t.xs1 = 1; t.C = C;
        t.piece = piece; t.pmax = pmax; t.psum = psum; t.mask = masked ? k : NULL;
        run(ops, CS_K_logsumexp_pieces, dt, &t, npc, sel);
        double v = NAN, sg = NAN;
        if (!cs_lse_pieces_combine(&t, npc, dt == CS_F64, &v, &sg) || sg != 1.0) {
            fprintf(stderr, "MISMATCH %s logsumexp_pieces: pieces not combined\n", level_name);
            failures++;
            continue;
        }
        check("logsumexp_pieces", dt, masked ? "lse where" : "lse", 0, v, lse);
    }
    /* logsumexp_pieces with weights (and the mask): the pieces' weighted sums */
    void *w = alloc(dt, C);
    ld m = -INFINITY, sum = 0;
    for (cs_intp j = 0; j < C; j++) {
        set(w, dt, j, 0.5 + uniform());
        if (k[j])
            m = fmaxl(m, get(x, dt, j));
    }
    for (cs_intp j = 0; j < C; j++)
        sum += k[j] ? get(w, dt, j) * expl(get(x, dt, j) - m) : 0;
    cs_task t = {0};
    t.x = x; t.xs0 = C; t.xs1 = 1; t.g = w; t.gs0 = C; t.gs1 = 1; t.C = C;
    t.piece = piece; t.pmax = pmax; t.psum = psum; t.mask = k;
    run(ops, CS_K_logsumexp_pieces, dt, &t, npc, NULL);
    double v = NAN, sg = NAN;
    if (!cs_lse_pieces_combine(&t, npc, dt == CS_F64, &v, &sg) || sg != 1.0) {
        fprintf(stderr, "MISMATCH %s logsumexp_pieces: weighted pieces not combined\n", level_name);
        failures++;
    } else {
        check("logsumexp_pieces", dt, "lse b where", 0, v, m + logl(sum));
    }
    free(x); free(y); free(xm); free(sel); free(s); free(k); free(pmax); free(psum); free(w);
}

/* the backward passes over one long row in pieces: each piece's sum, the
   sums added (cs_sum), then each piece's output; a log-softmax entry above 0
   in one piece (the general exponential there) */
static void test_backward_pieces(const cs_ops *ops, int dt, cs_intp C, cs_intp piece)
{
    void *x = randn(dt, C, 4.0), *g = randn(dt, C, 1.0), *s = alloc(dt, C), *y = alloc(dt, C);
    ld *r = malloc(sizeof(ld) * C);
    cs_intp npc = (C + piece - 1) / piece;
    double *pmax = malloc(sizeof(double) * npc), *psum = malloc(sizeof(double) * npc);
    ld lse = ref_row(x, dt, 0, 1, C, r);
    for (int lg = 0; lg < 2; lg++) {
        for (cs_intp j = 0; j < C; j++)
            set(s, dt, j, lg ? get(x, dt, j) - lse : r[j]);
        if (lg)
            set(s, dt, C / 2, 0.25);
        ld sum = 0;
        for (cs_intp j = 0; j < C; j++)
            sum += get(g, dt, j) * (lg ? 1.0L : get(s, dt, j));
        cs_task t = {0};
        t.x = s; t.xs0 = C; t.xs1 = 1; t.g = g; t.gs0 = C; t.gs1 = 1; t.y = y; t.ys0 = C; t.ys1 = 1; t.C = C;
        t.piece = piece; t.pmax = pmax; t.psum = psum;
        run(ops, lg ? CS_K_log_softmax_backward_pieces : CS_K_softmax_backward_pieces, dt, &t, npc, NULL);
        t.S = cs_sum(psum, NULL, npc);
        run(ops, lg ? CS_K_log_softmax_backward_piece_finish : CS_K_softmax_backward_piece_finish, dt, &t, npc,
            NULL);
        for (cs_intp j = 0; j < C; j++) {
            ld sj = get(s, dt, j), gj = get(g, dt, j);
            check(lg ? "log_softmax_backward_pieces" : "softmax_backward_pieces", dt, "dx", j, get(y, dt, j),
                  lg ? gj - expl(sj) * sum : sj * (gj - sum));
        }
    }
    free(x); free(g); free(s); free(y); free(r); free(pmax); free(psum);
}

/* label_scan: per unit of CS_SCAN labels, the first bad one and the ignored
   count, against a plain loop; bad labels at the ends of the range (-1, C, a
   very negative one) and at units' edges, none in some units */
static void test_label_scan(const cs_ops *ops, int dt)
{
    const cs_intp n = 3 * CS_SCAN + 5, C = 7, ignore = -100, units = (n + CS_SCAN - 1) / CS_SCAN;
    const cs_intp bad_at[] = {CS_SCAN - 1, CS_SCAN + 3, 2 * CS_SCAN + 100, 3 * CS_SCAN + 4}, bad_val[] = {C, -1, -((cs_intp)1 << 62), C + 5};
    cs_intp *label = malloc(sizeof(cs_intp) * n), *scan = malloc(sizeof(cs_intp) * 2 * units);
    for (int trial = 0; trial < 3; trial++) {
        for (cs_intp i = 0; i < n; i++)
            label[i] = uniform() < 0.1 ? ignore : (cs_intp)(uniform() * C);
        for (int b = 0; b < 4; b++)   /* trial 0: no bad label; 1: two; 2: four */
            if (trial == 2 || (trial == 1 && b % 2 == 0))
                label[bad_at[b]] = bad_val[b];
        cs_task t;
        memset(&t, 0, sizeof t);
        t.label = label, t.C = C, t.ignore = ignore, t.nlabel = n, t.scan = scan;
        run(ops, CS_K_label_scan, dt, &t, units, NULL);
        for (cs_intp u = 0; u < units; u++) {
            cs_intp first = -1, k = 0;
            for (cs_intp i = u * CS_SCAN; i < n && i < (u + 1) * CS_SCAN; i++) {
                if (label[i] == ignore)
                    k++;
                else if ((label[i] < 0 || label[i] >= C) && first < 0)
                    first = i;
            }
            checks += 2;   /* exact */
            if (scan[2 * u] != first || scan[2 * u + 1] != k) {
                failures++;
                fprintf(stderr, "MISMATCH %s label_scan unit %ld: first %ld ignored %ld, reference %ld %ld\n",
                        level_name, (long)u, (long)scan[2 * u], (long)scan[2 * u + 1], (long)first, (long)k);
            }
        }
    }
    free(label); free(scan);
}

int main(void)
{
    static const cs_intp Ns[] = {1, 7, 50}, Cs[] = {1, 3, 4, 8, 10, 16, 20, 24, 32, 33, 48, 64, 96, 100, 128, 300};
    int top = cs_cpu_level(), levels[] = {0, 3, 4};
    for (int li = 0; li < 3; li++) {
        if (levels[li] > top)
            break;
        const cs_ops *ops = cs_ops_for(levels[li]);
        if (li > 0 && ops == cs_ops_for(levels[li - 1]))
            break;                                   /* a build with fewer levels */
        level_name = ops->name;
        int f0 = failures, c0 = checks;
        for (int dt = 0; dt < 2; dt++) {
            for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
                for (size_t b = 0; b < sizeof Cs / sizeof *Cs; b++)
                    for (int pad = 0; pad < 2; pad++)
                        test_rows(ops, dt, Ns[a], Cs[b], pad);
            test_backward_wide(ops, dt, 3, 2100);
            test_cols(ops, dt, 2, 1, 5, 16, 0);
            test_cols(ops, dt, 2, 3, 40, 16, 0);
            test_cols(ops, dt, 3, 17, 33, 32, 0);
            test_cols(ops, dt, 1, 100, 20, 16, 0);
            test_cols(ops, dt, 3, 17, 70, 32, 5);
            test_cols(ops, dt, 2, 3, 40, 16, 15);
            test_cols(ops, dt, 2, 17, 64, 16, 0);
            test_cols(ops, dt, 3, 9, 128, 32, 0);
            test_pieces(ops, dt, 37, 16);
            test_pieces(ops, dt, 1000, 128);
            test_backward_pieces(ops, dt, 37, 16);
            test_backward_pieces(ops, dt, 1000, 128);
            test_label_scan(ops, dt);
            test_log_backward_range(ops, dt, 16, 64);
            test_log_backward_range(ops, dt, 16, 1000);
        }
        printf("%-10s %7d checks, %d mismatches\n", level_name, checks - c0, failures - f0);
    }
    for (int k = 0; k < CS_NKERNELS; k++)
        if (!tested[k]) {
            fprintf(stderr, "NO TEST for kernel %s (add one to tests/c/test_kernels.c)\n", cs_kernel_names[k]);
            failures++;
        }
    printf("%s: %d kernels, %d checks, %d failures\n", failures ? "FAIL" : "OK", CS_NKERNELS, checks, failures);
    return failures ? 1 : 0;
}
