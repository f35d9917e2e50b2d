/* calib.c - see calib.h. */
#include "quant/calib.h"

#include <math.h>
#include <string.h>

void calib_init(CalibStats *s)
{
    memset(s, 0, sizeof *s);
}

void calib_observe_range(CalibStats *s, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            continue;
        if (!s->seen || v < s->lo)
            s->lo = v;
        if (!s->seen || v > s->hi)
            s->hi = v;
        s->seen = true;
    }
}

static float max_abs(const CalibStats *s) { return fmaxf(fabsf(s->lo), fabsf(s->hi)); }

void calib_observe_hist(CalibStats *s, const float *x, int64_t n)
{
    float m = max_abs(s);
    if (!(m > 0))
        return;
    float per_bin = (float)CALIB_BINS / m;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!isfinite(a))
            continue;
        int b = (int)(a * per_bin);
        s->hist[b < CALIB_BINS ? b : CALIB_BINS - 1]++;
    }
}

/* The threshold (in bins) below which `keep` percent of the counts lie. */
static int percentile_bin(const CalibStats *s, double keep)
{
    int64_t total = 0;
    for (int b = 0; b < CALIB_BINS; b++)
        total += s->hist[b];
    double want = (double)total * keep / 100.0, acc = 0;
    for (int b = 0; b < CALIB_BINS; b++) {
        acc += (double)s->hist[b];
        if (acc >= want)
            return b + 1;
    }
    return CALIB_BINS;
}

/* KL(P || Q) for a clipping threshold of t bins: P is the histogram up to t with the
 * counts beyond it added to its last bin (what clipping does to the data); Q is the
 * histogram up to t, without those counts, merged into `levels` equal groups, each spread
 * back evenly over the group's nonzero bins (what quantizing to that many levels keeps).
 * Both are normalised. Small t clips much; large t quantizes coarsely. */
static double kl_at(const CalibStats *s, int t, int levels)
{
    double p[CALIB_BINS], q[CALIB_BINS], p_total = 0, q_total = 0;
    for (int b = 0; b < t; b++)
        p[b] = (double)s->hist[b];
    for (int g = 0; g < levels; g++) {
        int b0 = (int)((int64_t)g * t / levels), b1 = (int)((int64_t)(g + 1) * t / levels);
        double sum = 0;
        int nonzero = 0;
        for (int b = b0; b < b1; b++) {
            sum += p[b];
            nonzero += p[b] > 0;
        }
        for (int b = b0; b < b1; b++)
            q[b] = p[b] > 0 ? sum / nonzero : 0;
    }
    for (int b = t; b < CALIB_BINS; b++)
        p[t - 1] += (double)s->hist[b];
    for (int b = 0; b < t; b++) {
        p_total += p[b];
        q_total += q[b];
    }
    if (p_total <= 0 || q_total <= 0)
        return INFINITY;
    double kl = 0;
    for (int b = 0; b < t; b++) {
        if (p[b] <= 0)
            continue;
        double pp = p[b] / p_total, qq = q[b] / q_total;
        kl += pp * log(pp / (qq > 0 ? qq : 1e-12));
    }
    return kl;
}

/* The threshold of least divergence; a one-sided (nonnegative) tensor gets all 256 uint8
 * levels on its side, a two-sided one half of them. */
static int entropy_bin(const CalibStats *s)
{
    int levels = s->lo >= 0 ? 256 : 128;
    int best = CALIB_BINS;
    double best_kl = INFINITY;
    for (int t = levels; t <= CALIB_BINS; t += 16) {
        double kl = kl_at(s, t, levels);
        if (kl < best_kl) {
            best_kl = kl;
            best = t;
        }
    }
    return best;
}

void calib_range(const CalibStats *s, CalibMethod m, double percentile, float *lo, float *hi)
{
    *lo = s->seen ? fminf(s->lo, 0.0f) : 0.0f;
    *hi = s->seen ? fmaxf(s->hi, 0.0f) : 0.0f;
    if (m == CALIB_MINMAX || !s->seen || !(max_abs(s) > 0))
        return;
    int bin = m == CALIB_PERCENTILE ? percentile_bin(s, percentile) : entropy_bin(s);
    float t = max_abs(s) * (float)bin / (float)CALIB_BINS;
    *lo = fmaxf(*lo, -t);
    *hi = fminf(*hi, t);
}
