/*
 * cs_kernels_t.h -- the kernels for one dtype at one instruction-set level.
 *
 * A template: cs_dispatch.h includes it once per (level, dtype) with
 *   T      float or double       (storage and exp precision)
 *   CS_FN  name -> name_<dtype>_<level>
 *   EXP    cs_exp_f32 or cs_exp_f64
 * Sums, dot products and logarithms are accumulated in double for both dtypes.
 *
 * Rows narrower than CS_NARROW are taken CS_BLOCK entries at a time: x - max is
 * written for the whole block and exp runs over it as one flat vector loop, since
 * a per-row loop of ten entries never fills a vector.  Wider rows are taken one
 * at a time and stay in L1 between their passes.
 *
 * Every loop that must vectorise carries `omp simd`; the output may be the input
 * itself (same pointer, same strides), never a partial overlap.
 */

#define CS_NARROW 32
#define CS_BLOCK 1024

static inline cs_intp CS_FN(block_rows)(cs_intp C)
{
    return C <= CS_NARROW ? CS_BLOCK / C : 1;
}

static inline T CS_FN(row_max)(const T *x, cs_intp C)
{
    T m = x[0];
#pragma omp simd reduction(max : m)
    for (cs_intp j = 1; j < C; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* For nb rows: m[r] = max of the row (nan may be skipped: it reaches s),
   s[r] = sum of exp(x - m[r]); e receives exp(x - m[r]) unless NULL.  The narrow
   path needs e, contiguous (es == C). */
static inline void CS_FN(sumexp_block)(const T *x, cs_intp xs, T *e, cs_intp es,
                                       cs_intp nb, cs_intp C, T *m, double *s)
{
    if (e != NULL && C <= CS_NARROW && es == C && nb > 1) {
        /* Loops run down the block (over rows) for each column j, so the
           reductions are independent lanes rather than one chain per row. */
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            m[r] = x[r * xs];
        for (cs_intp j = 1; j < C; j++) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++) {
                T v = x[r * xs + j];
                m[r] = v > m[r] ? v : m[r];
            }
        }
        for (cs_intp j = 0; j < C; j++) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                e[r * C + j] = x[r * xs + j] - m[r];
        }
        cs_intp n = nb * C;
#pragma omp simd
        for (cs_intp k = 0; k < n; k++)
            e[k] = EXP(e[k]);
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            s[r] = 0.0;
        for (cs_intp j = 0; j < C; j++) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                s[r] += e[r * C + j];
        }
        return;
    }
    for (cs_intp r = 0; r < nb; r++) {
        const T *xr = x + r * xs;
        T mr = CS_FN(row_max)(xr, C);
        double sr = 0.0;
        if (e != NULL) {
            T *er = e + r * es;
#pragma omp simd reduction(+ : sr)
            for (cs_intp j = 0; j < C; j++) {
                T v = EXP(xr[j] - mr);
                er[j] = v;
                sr += v;
            }
        } else {
#pragma omp simd reduction(+ : sr)
            for (cs_intp j = 0; j < C; j++)
                sr += EXP(xr[j] - mr);
        }
        m[r] = mr;
        s[r] = sr;
    }
}

/* y[r, :] *= k[r] for nb rows (down the block for narrow rows, as above). */
static inline void CS_FN(scale_rows)(T *y, cs_intp ys, cs_intp nb, cs_intp C, const double *k)
{
    if (C <= CS_NARROW && nb > 1) {
        for (cs_intp j = 0; j < C; j++) {
#pragma omp simd
            for (cs_intp r = 0; r < nb; r++)
                y[r * ys + j] = (T)(y[r * ys + j] * k[r]);
        }
        return;
    }
    for (cs_intp r = 0; r < nb; r++) {
        T *yr = y + r * ys;
        T kr = (T)k[r];
#pragma omp simd
        for (cs_intp j = 0; j < C; j++)
            yr[j] *= kr;
    }
}

/* ls[r] = log(s[r]).  Where the max is not finite, SciPy's log_softmax shifts by
   0 instead; m[r] and ls[r] are redone that way (rare: scalar libm). */
static inline void CS_FN(log_sums)(const T *x, cs_intp xs, cs_intp nb, cs_intp C,
                                   T *m, const double *s, double *ls)
{
#pragma omp simd
    for (cs_intp r = 0; r < nb; r++)
        ls[r] = cs_log_sum(s[r]);
    for (cs_intp r = 0; r < nb; r++) {
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

static void CS_FN(softmax_rows)(const T *x, cs_intp xs, T *y, cs_intp ys,
                                cs_intp nrows, cs_intp C)
{
    T m[CS_BLOCK];
    double s[CS_BLOCK];
    cs_intp nbmax = CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        CS_FN(sumexp_block)(x + i0 * xs, xs, y + i0 * ys, ys, nb, C, m, s);
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            s[r] = 1.0 / s[r];
        CS_FN(scale_rows)(y + i0 * ys, ys, nb, C, s);
    }
}

static void CS_FN(log_softmax_rows)(const T *x, cs_intp xs, T *y, cs_intp ys,
                                    cs_intp nrows, cs_intp C)
{
    T m[CS_BLOCK], buf[CS_BLOCK];
    double s[CS_BLOCK], ls[CS_BLOCK];
    cs_intp nbmax = CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *xb = x + i0 * xs;
        CS_FN(sumexp_block)(xb, xs, nb > 1 ? buf : NULL, C, nb, C, m, s);
        CS_FN(log_sums)(xb, xs, nb, C, m, s, ls);
        T *yb = y + i0 * ys;
        if (C <= CS_NARROW && nb > 1) {
            for (cs_intp j = 0; j < C; j++) {
#pragma omp simd
                for (cs_intp r = 0; r < nb; r++)
                    yb[r * ys + j] = (T)(((double)xb[r * xs + j] - (double)m[r]) - ls[r]);
            }
            continue;
        }
        for (cs_intp r = 0; r < nb; r++) {
            const T *xr = xb + r * xs;
            T *yr = yb + r * ys;
            double mr = m[r], lr = ls[r];
#pragma omp simd
            for (cs_intp j = 0; j < C; j++)
                yr[j] = (T)(((double)xr[j] - mr) - lr);
        }
    }
}

static void CS_FN(softmax_cols)(const T *x, cs_intp xs, T *y, cs_intp ys,
                                cs_intp C, cs_intp W)
{
    T m[CS_TILE];
    double s[CS_TILE];
    for (cs_intp j = 0; j < W; j++) {
        m[j] = x[j];
        s[j] = 0.0;
    }
    for (cs_intp c = 1; c < C; c++) {
        const T *xc = x + c * xs;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            m[j] = xc[j] > m[j] ? xc[j] : m[j];
    }
    for (cs_intp c = 0; c < C; c++) {
        const T *xc = x + c * xs;
        T *yc = y + c * ys;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++) {
            T v = EXP(xc[j] - m[j]);
            yc[j] = v;
            s[j] += v;
        }
    }
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        m[j] = (T)(1.0 / s[j]);
    for (cs_intp c = 0; c < C; c++) {
        T *yc = y + c * ys;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            yc[j] *= m[j];
    }
}

static void CS_FN(log_softmax_cols)(const T *x, cs_intp xs, T *y, cs_intp ys,
                                    cs_intp C, cs_intp W)
{
    T m[CS_TILE];
    double s[CS_TILE], ls[CS_TILE];
    for (cs_intp j = 0; j < W; j++) {
        m[j] = x[j];
        s[j] = 0.0;
    }
    for (cs_intp c = 1; c < C; c++) {
        const T *xc = x + c * xs;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            m[j] = xc[j] > m[j] ? xc[j] : m[j];
    }
    for (cs_intp c = 0; c < C; c++) {
        const T *xc = x + c * xs;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            s[j] += EXP(xc[j] - m[j]);
    }
#pragma omp simd
    for (cs_intp j = 0; j < W; j++)
        ls[j] = cs_log_sum(s[j]);
    for (cs_intp j = 0; j < W; j++) {
        if (isfinite(m[j]))
            continue;
        double sj = 0.0;
        for (cs_intp c = 0; c < C; c++)
            sj += exp((double)x[c * xs + j]);
        m[j] = 0;
        ls[j] = log(sj);
    }
    for (cs_intp c = 0; c < C; c++) {
        const T *xc = x + c * xs;
        T *yc = y + c * ys;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            yc[j] = (T)(((double)xc[j] - (double)m[j]) - ls[j]);
    }
}

/* out = s * (g - <g, s>) */
static void CS_FN(softmax_backward_rows)(const T *s, cs_intp ss, const T *g, cs_intp gs,
                                         T *out, cs_intp os, cs_intp nrows, cs_intp C)
{
    for (cs_intp i = 0; i < nrows; i++) {
        const T *sr = s + i * ss, *gr = g + i * gs;
        T *o = out + i * os;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (cs_intp j = 0; j < C; j++)
            dot += (double)gr[j] * (double)sr[j];
#pragma omp simd
        for (cs_intp j = 0; j < C; j++)
            o[j] = (T)((double)sr[j] * ((double)gr[j] - dot));
    }
}

/* out = g - exp(log_s) * sum(g) */
static void CS_FN(log_softmax_backward_rows)(const T *ls, cs_intp ss, const T *g, cs_intp gs,
                                             T *out, cs_intp os, cs_intp nrows, cs_intp C)
{
    for (cs_intp i = 0; i < nrows; i++) {
        const T *lr = ls + i * ss, *gr = g + i * gs;
        T *o = out + i * os;
        double sg = 0.0;
#pragma omp simd reduction(+ : sg)
        for (cs_intp j = 0; j < C; j++)
            sg += gr[j];
#pragma omp simd
        for (cs_intp j = 0; j < C; j++)
            o[j] = (T)((double)gr[j] - (double)EXP(lr[j]) * sg);
    }
}

static void CS_FN(softmax_backward_cols)(const T *s, cs_intp ss, const T *g, cs_intp gs,
                                         T *out, cs_intp os, cs_intp C, cs_intp W)
{
    double dot[CS_TILE];
    for (cs_intp j = 0; j < W; j++)
        dot[j] = 0.0;
    for (cs_intp c = 0; c < C; c++) {
        const T *sc = s + c * ss, *gc = g + c * gs;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            dot[j] += (double)gc[j] * (double)sc[j];
    }
    for (cs_intp c = 0; c < C; c++) {
        const T *sc = s + c * ss, *gc = g + c * gs;
        T *o = out + c * os;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            o[j] = (T)((double)sc[j] * ((double)gc[j] - dot[j]));
    }
}

static void CS_FN(log_softmax_backward_cols)(const T *ls, cs_intp ss, const T *g, cs_intp gs,
                                             T *out, cs_intp os, cs_intp C, cs_intp W)
{
    double sg[CS_TILE];
    for (cs_intp j = 0; j < W; j++)
        sg[j] = 0.0;
    for (cs_intp c = 0; c < C; c++) {
        const T *gc = g + c * gs;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            sg[j] += gc[j];
    }
    for (cs_intp c = 0; c < C; c++) {
        const T *lc = ls + c * ss, *gc = g + c * gs;
        T *o = out + c * os;
#pragma omp simd
        for (cs_intp j = 0; j < W; j++)
            o[j] = (T)((double)gc[j] - (double)EXP(lc[j]) * sg[j]);
    }
}

/* J[i] = diag(s) - s s^T.  s goes into J[i]'s first row, which is overwritten
   last; the diagonal is s (1 - s), not s - s*s, which cancels near s = 1. */
static void CS_FN(jacobian_rows)(const T *x, cs_intp xs, T *J, cs_intp nrows, cs_intp C)
{
    for (cs_intp i = 0; i < nrows; i++) {
        T *Ji = J + i * C * C;
        const T *sv = Ji;
        CS_FN(softmax_rows)(x + i * xs, xs, Ji, C, 1, C);
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

/* Cross-entropy with class indices: loss = lse - z[c]; grad = k (s - onehot(c)).
   A label outside [0, C) (the caller has refused those) gives a nan loss and is
   never used as an index. */
static void CS_FN(ce_index_rows)(const T *z, cs_intp zs, const cs_intp *label, T *grad, cs_intp gs,
                                 const double *rscale, double gscale, double *loss,
                                 cs_intp nrows, cs_intp C)
{
    T m[CS_BLOCK], buf[CS_BLOCK], zc[CS_BLOCK];
    double s[CS_BLOCK], ls[CS_BLOCK];
    cs_intp nbmax = CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *zb = z + i0 * zs;
        T *e = grad != NULL ? grad + i0 * gs : (nb > 1 ? buf : NULL);
        cs_intp es = grad != NULL ? gs : C;
        /* the gradient may overwrite the logits in place: take z[c] first */
        for (cs_intp r = 0; r < nb; r++) {
            cs_intp c = label[i0 + r];
            zc[r] = (c >= 0 && c < C) ? zb[r * zs + c] : (T)NAN;
        }
        CS_FN(sumexp_block)(zb, zs, e, es, nb, C, m, s);
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            ls[r] = cs_log_sum(s[r]);
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            loss[i0 + r] = ((double)m[r] - (double)zc[r]) + ls[r];
        if (grad == NULL)
            continue;
        /* k (e - s onehot) / s: the label's entry is taken down before the
           scaling, so a certain prediction gives exactly 0 */
        for (cs_intp r = 0; r < nb; r++) {
            cs_intp c = label[i0 + r];
            if (c >= 0 && c < C) {
                T *gc = e + r * gs + c;
                *gc = (T)((double)*gc - s[r]);
            }
        }
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            s[r] = (rscale != NULL ? rscale[i0 + r] : gscale) / s[r];
        CS_FN(scale_rows)(e, gs, nb, C, s);
    }
}

/* Cross-entropy with probabilities y: loss = sum_k y_k (lse - z_k) over y_k != 0;
   grad = k (s sum(y) - y). */
static void CS_FN(ce_prob_rows)(const T *z, cs_intp zs, const T *target, cs_intp ts, T *grad, cs_intp gs,
                                const double *rscale, double gscale, double *loss,
                                cs_intp nrows, cs_intp C)
{
    T m[CS_BLOCK], buf[CS_BLOCK];
    double s[CS_BLOCK], ls[CS_BLOCK];
    cs_intp nbmax = CS_FN(block_rows)(C);
    for (cs_intp i0 = 0; i0 < nrows; i0 += nbmax) {
        cs_intp nb = nrows - i0 < nbmax ? nrows - i0 : nbmax;
        const T *zb = z + i0 * zs;
        T *e = grad != NULL ? grad + i0 * gs : (nb > 1 ? buf : NULL);
        cs_intp es = grad != NULL ? gs : C;
        CS_FN(sumexp_block)(zb, zs, e, es, nb, C, m, s);
#pragma omp simd
        for (cs_intp r = 0; r < nb; r++)
            ls[r] = cs_log_sum(s[r]);
        for (cs_intp r = 0; r < nb; r++) {
            cs_intp i = i0 + r;
            const T *zr = zb + r * zs, *yr = target + i * ts;
            double mr = m[r], lr = ls[r], l = 0.0, sy = 0.0;
#pragma omp simd reduction(+ : l, sy)
            for (cs_intp j = 0; j < C; j++) {
                double yj = yr[j];
                double t = yj * ((mr - (double)zr[j]) + lr);
                l += yj != 0.0 ? t : 0.0;
                sy += yj;
            }
            loss[i] = l;
            if (grad == NULL)
                continue;
            double k = rscale != NULL ? rscale[i] : gscale;
            double q = k * sy / s[r];
            T *gr = grad + i * gs;
#pragma omp simd
            for (cs_intp j = 0; j < C; j++)
                gr[j] = (T)((double)gr[j] * q - k * (double)yr[j]);
        }
    }
}
