/* activation.h - scalar activation functions, shared by the elementwise ops and by the
 * fused epilogues of Conv/Gemm/MatMul so both give the same bits. */
#ifndef CRUN_OPS_ACTIVATION_H
#define CRUN_OPS_ACTIVATION_H

#include <math.h>

#include "runtime/graph.h"

static inline float act_relu(float x) { return x > 0.0f ? x : 0.0f; }
static inline float act_sigmoid(float x)
{
    /* Split by sign so exp never overflows. */
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}
static inline float act_hardsigmoid(float x, float alpha, float beta)
{
    float v = alpha * x + beta;
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}
static inline float act_hardswish(float x) { return x * act_hardsigmoid(x, 1.0f / 6.0f, 0.5f); }
static inline float act_leakyrelu(float x, float alpha) { return x >= 0.0f ? x : alpha * x; }
/* Clip per ONNX: min(max(x, lo), hi); NaN stays NaN. */
static inline float act_clip(float x, float lo, float hi)
{
    if (x < lo)
        x = lo;
    if (x > hi)
        x = hi;
    return x;
}

static inline float act_kind1(const Activation *a, float x)
{
    switch (a->kind) {
    case ACT_NONE: return x;
    case ACT_RELU: return act_relu(x);
    case ACT_CLIP: return act_clip(x, a->alpha, a->beta);
    case ACT_SIGMOID: return act_sigmoid(x);
    case ACT_HARDSIGMOID: return act_hardsigmoid(x, a->alpha, a->beta);
    case ACT_HARDSWISH: return act_hardswish(x);
    case ACT_LEAKYRELU: return act_leakyrelu(x, a->alpha);
    case ACT_TANH: return tanhf(x);
    case ACT_SILU: return x * act_sigmoid(x);
    case ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case ACT_ERF: return erff(x);
    }
    return x;
}

/* The whole activation: its kind, then the fused scale and shift (rounded as a Mul then
 * an Add would round them). */
static inline float act_apply1(const Activation *a, float x)
{
    float y = act_kind1(a, x);
    return a->affine ? y * a->mul + a->add : y;
}

/* Whether a is a plain clamp to [lo, hi] (none, Relu, Clip: kernels apply it in
 * registers); for any other activation lo, hi = -inf, inf and the caller applies a. */
static inline bool act_as_clamp(const Activation *a, float *lo, float *hi)
{
    bool clamp = !a->affine && (a->kind == ACT_NONE || a->kind == ACT_RELU || a->kind == ACT_CLIP);
    *lo = clamp && a->kind == ACT_RELU ? 0.0f : clamp && a->kind == ACT_CLIP ? a->alpha : -INFINITY;
    *hi = clamp && a->kind == ACT_CLIP ? a->beta : INFINITY;
    return clamp;
}

/* Applies a to x[0..n) in place. */
void act_apply_f32(const Activation *a, float *x, int64_t n);
const char *act_name(ActKind k);

#endif
