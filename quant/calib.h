/* calib.h - calibration observers: the range of values a tensor takes over a calibration
 * set, by min/max, by a percentile of |x|, or by the entropy (KL divergence) criterion,
 * the three methods of `crun quantize --method`. */
#ifndef CRUN_QUANT_CALIB_H
#define CRUN_QUANT_CALIB_H

#include <stdbool.h>
#include <stdint.h>

typedef enum CalibMethod { CALIB_MINMAX, CALIB_PERCENTILE, CALIB_ENTROPY } CalibMethod;

#define CALIB_BINS 2048

/* The histogram methods look at the data twice: first for min/max (which fixes the
 * histogram's range, [0, max |x|]), then to count |x| into bins. */
typedef struct CalibStats {
    float lo, hi;         /* over everything observed (NaN and infinities skipped) */
    bool seen;
    int64_t hist[CALIB_BINS];
} CalibStats;

void calib_init(CalibStats *s);
void calib_observe_range(CalibStats *s, const float *x, int64_t n);
void calib_observe_hist(CalibStats *s, const float *x, int64_t n);
/* The range to quantize to; always holds 0. percentile is the share of |x| kept (e.g.
 * 99.99) for CALIB_PERCENTILE. */
void calib_range(const CalibStats *s, CalibMethod m, double percentile, float *lo, float *hi);

#endif
