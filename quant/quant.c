/* quant.c - quantization parameters from a value range (see quant.h). */
#include "quant/quant.h"

#include <stdint.h>

#include "quant/fp16.h"

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

void quant_block_nbits(const float *w, int n, int bits, uint16_t *scale_f16, uint8_t *zp, uint8_t *codes)
{
    QuantRange r = {0, (1 << bits) - 1};
    float lo = 0.0f, hi = 0.0f, s;
    int32_t z;
    for (int i = 0; i < n; i++) {
        lo = w[i] < lo ? w[i] : lo; /* (NaN never wins a comparison) */
        hi = w[i] > hi ? w[i] : hi;
    }
    quant_params_from_range(lo, hi, r, &s, &z);
    /* float16 tops out at 65504: saturate there rather than store inf */
    uint16_t h = f32_to_fp16(s > 65504.0f ? 65504.0f : s);
    if (fp16_to_f32(h) < s && h < 0x7bff)
        h++; /* round up (the next half), so the block's range still fits the codes */
    float s16 = fp16_to_f32(h);
    if (s16 > 0.0f)
        z = quant_round_sat((float)r.lo - lo / s16, 0, r); /* the zero point for the stored scale */
    *scale_f16 = h;
    *zp = (uint8_t)z;
    for (int i = 0; i < n; i++)
        codes[i] = (uint8_t)(s16 > 0.0f ? quant_quantize(w[i], s16, z, r) : z);
}
