/* quant.h - the 8-bit affine quantization arithmetic: real = scale * (q - zero_point).
 *
 * One definition used by the quantization ops (QuantizeLinear, QLinearConv...), the
 * post-training quantizer and the trainer's fake quantization, so a value quantized in
 * training is bit for bit the value the runtime computes. Rounding is to nearest, ties to
 * even (ONNX's rule), saturating to the target type's range. */
#ifndef CRUN_QUANT_QUANT_H
#define CRUN_QUANT_QUANT_H

#include <math.h>
#include <stdint.h>

/* The integer range of a quantized type. */
typedef struct QuantRange {
    int32_t lo, hi;
} QuantRange;

static const QuantRange QUANT_U8 = {0, 255};
static const QuantRange QUANT_I8 = {-128, 127};

/* rint for |v| <= 2^22 in the default rounding mode (ties to even): adding and
 * subtracting 1.5 * 2^23 leaves no fraction bits. rintf itself is a library call where
 * the baseline ISA has no rounding instruction (x86-64 before SSE4.1). */
static inline float quant_rint_small(float v)
{
    const float magic = 12582912.0f;
    return (v + magic) - magic;
}

/* round-half-even(v) + zp, saturated to r; NaN gives zp clamped into r. Float arithmetic
 * throughout (as ONNX specifies). The clamp comes first, to integer bounds, which gives
 * the same result as rounding first and keeps the rounding in quant_rint_small's range. */
static inline int32_t quant_round_sat(float v, int32_t zp, QuantRange r)
{
    /* (written without branches, so loops over it vectorize) */
    float lo = (float)(r.lo - zp), hi = (float)(r.hi - zp);
    v = v == v ? v : 0.0f;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    int32_t q = (int32_t)quant_rint_small(v) + zp;
    q = q < r.lo ? r.lo : q; /* (only when zp itself lies outside r) */
    return q > r.hi ? r.hi : q;
}

/* QuantizeLinear: saturate(round(x / scale) + zp). A zero scale maps every x to zp. */
static inline int32_t quant_quantize(float x, float scale, int32_t zp, QuantRange r)
{
    return quant_round_sat(scale != 0.0f ? x / scale : 0.0f, zp, r);
}

/* DequantizeLinear: (q - zp) * scale. */
static inline float quant_dequantize(int32_t q, float scale, int32_t zp) { return (float)(q - zp) * scale; }

/* Requantization of an int32 accumulator (QLinearConv, QLinearMatMul): the accumulator is
 * sum (a - za)(b - zb) [+ bias], multiplier = scale_a * scale_b / scale_y. */
static inline int32_t quant_requantize(int32_t acc, float multiplier, int32_t zp, QuantRange r)
{
    return quant_round_sat((float)acc * multiplier, zp, r);
}

/* The requantization multiplier scale_a * scale_b / scale_y, in that order, as every int8
 * kernel computes it; 0 when that is not a finite number (a zero output scale), so the
 * output is the zero point. */
static inline float quant_multiplier(float scale_a, float scale_b, float scale_y)
{
    float m = scale_a * scale_b / scale_y;
    return isfinite(m) ? m : 0.0f;
}

/* Scale and zero point that map [min(lo, 0), max(hi, 0)] onto r (DynamicQuantizeLinear and
 * calibration): the range always holds 0 so zero is exact. An all-zero range gives scale 0
 * and zero point 0 (clamped into r). */
void quant_params_from_range(float lo, float hi, QuantRange r, float *scale, int32_t *zp);

/* r narrowed to the quantized ends of a clamp [lo, hi] (-inf/inf: open) that follows the
 * op (a fused Relu or Clip): Q is monotone, so Q(clamp(y)) = clamp(Q(y)). */
static inline QuantRange quant_clamp_range(QuantRange r, float lo, float hi, float scale, int32_t zp)
{
    if (lo > -INFINITY) {
        int32_t q = quant_quantize(lo, scale, zp, r);
        r.lo = q > r.lo ? q : r.lo;
    }
    if (hi < INFINITY) {
        int32_t q = quant_quantize(hi, scale, zp, r);
        r.hi = q < r.hi ? q : r.hi;
    }
    if (r.hi < r.lo)
        r.hi = r.lo;
    return r;
}

/* The parameters of a quantized activation (uint8, asymmetric) observed over [lo, hi], as
 * the QDQ writer stores them and the trainer's fake quantization uses them: those of
 * quant_params_from_range, with scale 1 for a tensor that was always 0 (any scale is exact
 * there, and a zero scale would not be a valid QuantizeLinear). */
void quant_act_params(float lo, float hi, float *scale, int32_t *zp);

/* Weights are int8, symmetric, in [-127, 127] (so -w is representable too). */
static const QuantRange QUANT_I8_SYM = {-127, 127};

/* The weight scale of a channel (or tensor) whose largest magnitude is max_abs; 1 for an
 * all-zero one. */
static inline float quant_weight_scale(float max_abs) { return max_abs > 0.0f ? max_abs / 127.0f : 1.0f; }

/* Weight-only block quantization (MatMulNBits): n <= block values as codes of `bits` bits
 * (0 .. 2^bits - 1), asymmetric over the block's range (0 included, so an all-positive or
 * constant block stays exact at its ends), with the scale stored as float16 (rounded up,
 * so the range still fits): codes and zero point are computed with the stored scale,
 * which is what dequantization uses, so |w - (code - zp) * scale| <= scale / 2. */
void quant_block_nbits(const float *w, int n, int bits, uint16_t *scale_f16, uint8_t *zp, uint8_t *codes);

/* A bias as int32 at scale s = x_scale * w_scale (the product in float, as stored beside
 * it): round(b / s) in double, saturated to +-INT32_MAX; 0 for a zero scale. */
int32_t quant_bias_int32(float b, float s);

#endif
