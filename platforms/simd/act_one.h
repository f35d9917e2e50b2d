/* act_one.h - one activation on one vector (vec.h), shared by the activation kernels
 * (act.inc) and the GEMM epilogue (gemm.inc) so both give the same bits. */
#ifndef CRUN_PLATFORMS_SIMD_ACT_ONE_H
#define CRUN_PLATFORMS_SIMD_ACT_ONE_H

#include "platforms/simd/vec.h"
#include "runtime/graph.h"

static inline __attribute__((always_inline)) vf act_kind_one(const Activation *a, vf x)
{
    switch (a->kind) {
    case ACT_RELU: return vf_max(vf_zero(), x);
    case ACT_CLIP: return vf_min(vf_set1(a->beta), vf_max(vf_set1(a->alpha), x));
    case ACT_SIGMOID: return vf_sigmoid(x);
    case ACT_SILU: return vf_mul(x, vf_sigmoid(x));
    case ACT_HARDSIGMOID:
        return vf_min(vf_set1(1.0f), vf_max(vf_zero(), vf_fma(x, vf_set1(a->alpha), vf_set1(a->beta))));
    case ACT_HARDSWISH:
        return vf_mul(x, vf_min(vf_set1(1.0f), vf_max(vf_zero(), vf_fma(x, vf_set1(1.0f / 6.0f), vf_set1(0.5f)))));
    case ACT_LEAKYRELU: return vf_select_nonneg(x, x, vf_mul(x, vf_set1(a->alpha)));
    case ACT_TANH: return vf_tanh(x);
    case ACT_GELU: {
        vf e = vf_erf(vf_mul(x, vf_set1(0.70710678118654752f)));
        return vf_mul(vf_mul(x, vf_set1(0.5f)), vf_add(vf_set1(1.0f), e));
    }
    case ACT_ERF: return vf_erf(x);
    case ACT_NONE: return x;
    }
    return x;
}

/* The whole activation: its kind, then the fused scale and shift (a multiply, then an
 * add, as the unfused Mul and Add would round them). */
static inline __attribute__((always_inline)) vf act_one(const Activation *a, vf x)
{
    vf y = act_kind_one(a, x);
    return a->affine ? vf_add(vf_mul(y, vf_set1(a->mul)), vf_set1(a->add)) : y;
}

#endif
