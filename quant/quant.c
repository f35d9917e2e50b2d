/* quant.c - quantization parameters from a value range (see quant.h). */
#include "quant/quant.h"

#include <stdint.h>

void quant_params_from_range(float lo, float hi, QuantRange r, float *scale, int32_t *zp)
{
    /* NaN ends of the range count as 0 (the comparisons below are false for NaN). */
    float mn = lo < 0.0f ? lo : 0.0f, mx = hi > 0.0f ? hi : 0.0f;
    *scale = (mx - mn) / (float)(r.hi - r.lo);
    if (!(*scale > 0.0f) || !isfinite(*scale)) {
        *scale = isfinite(*scale) ? 0.0f : *scale;
        *zp = quant_round_sat(0.0f, 0, r);
        return;
    }
    *zp = quant_round_sat((float)r.lo - mn / *scale, 0, r);
}

void quant_act_params(float lo, float hi, float *scale, int32_t *zp)
{
    quant_params_from_range(lo, hi, QUANT_U8, scale, zp);
    if (!(*scale > 0.0f))
        *scale = 1.0f;
}

int32_t quant_bias_int32(float b, float s)
{
    double v = s > 0.0f ? nearbyint((double)b / s) : 0.0;
    return v > INT32_MAX ? INT32_MAX : v < -INT32_MAX ? -INT32_MAX : (int32_t)v;
}
