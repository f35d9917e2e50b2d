/* activation.c - in-place activation epilogue for fused kernels. */
#include "ops/activation.h"

#include "platforms/act.h"

void act_apply_f32(const Activation *a, float *x, int64_t n)
{
    if (a->kind == ACT_NONE && !a->affine)
        return;
    ActVecFn vec = act_vec_best();
    if (vec) {
        vec(a, x, x, n);
        return;
    }
    switch (a->kind) {
    case ACT_NONE: return;
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            x[i] = act_relu(x[i]);
        return;
    case ACT_CLIP:
        for (int64_t i = 0; i < n; i++)
            x[i] = act_clip(x[i], a->alpha, a->beta);
        return;
    default:
        for (int64_t i = 0; i < n; i++)
            x[i] = act_apply1(a, x[i]);
        return;
    }
}

const char *act_name(ActKind k)
{
    static const char *const names[] = {"", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu",
                                        "Tanh", "SiLU", "Gelu", "Erf"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}
