/*
 * cs_reduce.h -- the arithmetic between kernel runs: the total of per-row
 * losses, the merge of a long row's pieces (softmax's and logsumexp's), the
 * scan of class labels.
 * Compiled once (no vector level matters here).
 */
#ifndef CS_REDUCE_H
#define CS_REDUCE_H

#include <math.h>
#include "cs_kernels.h"
#include "cs_math.h"

/* sum_i w_i v_i (w NULL: all 1) of n per-row values: blocks of 256 summed in
   8 interleaved lanes (independent chains: no add waits for the one before),
   the block totals added with their rounding errors kept (cs_two_sum).  An inf
   or nan term makes the kept error nan: the plain sum is the answer then. */
static double cs_sum(const double *v, const double *w, cs_intp n)
{
    double s = 0.0, err = 0.0;
    for (cs_intp i0 = 0; i0 < n; i0 += 256) {
        cs_intp i1 = n - i0 > 256 ? i0 + 256 : n, i = i0;
        double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (; i + 8 <= i1; i += 8)
            for (int k = 0; k < 8; k++)
                lane[k] += w != NULL ? w[i + k] * v[i + k] : v[i + k];
        double b = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        for (; i < i1; i++)
            b += w != NULL ? w[i] * v[i] : v[i];
        cs_two_sum(&s, &err, b);
    }
    return isfinite(err) ? s + err : s;
}

/* What a weighted "mean" divides by: sum_i sw_i cw[label_i] over the rows
   not labelled ignore (cw or sw NULL: all 1; label NULL: probability targets,
   every row counts with its sw_i alone).  Without either weight it is a count
   of rows, which the caller has from the labels' scan. */
static double cs_mean_weight(const cs_intp *label, cs_intp n, const double *cw, const double *sw, cs_intp ignore)
{
    double s = 0.0, err = 0.0;
    for (cs_intp i = 0; i < n; i++) {
        if (label != NULL && label[i] == ignore)
            continue;
        double v = (sw != NULL ? sw[i] : 1.0) * (label != NULL && cw != NULL ? cw[label[i]] : 1.0);
        cs_two_sum(&s, &err, v);
    }
    return s + err;
}

/* Merge the npc pieces of one long row after piece_sumexp: the row's max
   M = max_p m_p and S = sum_p s_p exp(m_p - M), into t->M and t->S.  A piece
   that is all -inf (m_p = -inf, s_p = 0) adds nothing.  Returns 0 when the
   pieces cannot be merged this way -- a nan or +inf, every piece -inf, S not
   finite -- and the row kernel must take the row (its rules cover those). */
static int cs_pieces_combine(cs_task *t, cs_intp npc)
{
    double M = -INFINITY, S = 0.0;
    int live = 0;
    for (cs_intp p = 0; p < npc; p++) {
        double m = t->pmax[p];
        if (m == -INFINITY) {
            if (t->psum[p] != 0.0)
                return 0;
            continue;
        }
        if (!isfinite(m))
            return 0;
        live = 1;
        M = m > M ? m : M;
    }
    if (!live)
        return 0;
    for (cs_intp p = 0; p < npc; p++)
        if (t->psum[p] != 0.0)
            S += t->psum[p] * exp(t->pmax[p] - M);
    if (!isfinite(S))
        return 0;
    t->M = M;
    t->S = S;
    return 1;
}

/* logsumexp of one long row from its npc pieces after logsumexp_pieces, as
   lse_row takes a row's sums (cs_lse_from_sums): M = max_p m_p, and each
   piece's sums relative to m_p scaled by exp(m_p - M); float64 (f64) keeps
   the weights at M (m) apart from the rest s, a piece below M adding all of
   its sum to s.  The additions keep their rounding errors.  A piece with no
   entry taking part (m_p = -inf) adds nothing.  *v and its sign *sg.
   Returns 0 when the pieces cannot be merged this way --
   a piece holding +inf or nan, every piece -inf, a result that is not finite
   (weights that cancel) -- and the row kernel must take the row (its rules
   cover those). */
static int cs_lse_pieces_combine(const cs_task *t, cs_intp npc, int f64, double *v, double *sg)
{
    double M = -INFINITY;
    for (cs_intp p = 0; p < npc; p++) {
        double m = t->pmax[p];
        if (isnan(m) || m == INFINITY)
            return 0;
        M = m > M ? m : M;
    }
    if (M == -INFINITY)
        return 0;
    double m = 0.0, me = 0.0, s = 0.0, se = 0.0;
    for (cs_intp p = 0; p < npc; p++) {
        const double mp = t->pmax[p], c = t->psum[2 * p], r = t->psum[2 * p + 1];
        if (mp == M) {
            cs_two_sum(&m, &me, c);
            cs_two_sum(&s, &se, r);
        } else if (mp != -INFINITY) {
            const double e = exp(mp - M);
            cs_two_sum(&s, &se, c * e);
            cs_two_sum(&s, &se, r * e);
        }
    }
    *v = cs_lse_from_sums(f64, M, m + me, s + se, sg);
    return isfinite(*v);   /* (a nan the pieces' max passed over gives nan here) */
}

#endif /* CS_REDUCE_H */
