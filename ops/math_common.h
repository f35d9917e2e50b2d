/* math_common.h - what the elementwise math files (arith.c, compare.c, math_variadic.c)
 * share: the limited broadcasting of binary ops before opset 7, and the typed-loop
 * helpers around ops/broadcast.h. */
#ifndef CRUN_OPS_MATH_COMMON_H
#define CRUN_OPS_MATH_COMMON_H

#include "ops/broadcast.h"

/* Binary ops of opsets 1-6 (Add, Sub, Mul, Div, Pow, Equal, Less, Greater, And, Or, Xor)
 * broadcast only B onto A, and only with the attribute broadcast=1: B's shape matches A's
 * dims from `axis` on (default: aligned to A's end); a B of one element is a scalar.
 * Without broadcast=1 the shapes must be equal. Exporters also rely on a dim of 1 in B
 * stretching over A's dim there (onnx's Add-6 doc says "1-dim expansion doesn't work
 * yet"; PyTorch emits it), so that is accepted too. The output always has A's shape. */
typedef struct LegacyBcast {
    bool on;        /* the node's opset is below 7 */
    bool broadcast; /* attribute broadcast=1 */
    bool has_axis;
    int64_t axis;
} LegacyBcast;

/* Reads broadcast/axis when n->opset < 7 (lb->on), else leaves lb zeroed. */
crun_status legacy_bcast_parse(Node *n, Diag *d, LegacyBcast *lb);

/* Output dims of `in[0] op in[1]`: numpy rules, or lb's legacy rules when lb && lb->on.
 * Fails naming both shapes. */
crun_status math_binary_shape(InferCtx *c, const LegacyBcast *lb, int64_t *dims, int *rank);

/* For bcast_plan: *b2 is b itself, or (legacy broadcast) b's data seen with a's rank so
 * numpy rules give the legacy result. Trusts math_binary_shape's checks. */
void math_binary_inputs(const LegacyBcast *lb, const Tensor *a, const Tensor *b, Tensor *b2);

/* applies(): kdata is a BcastLoop table indexed by dtype; accepts input 0's type if set. */
bool math_loops_have_dtype(const PrepCtx *c, const void *kdata);

/* flops: one per output element. */
int64_t math_elementwise_flops(const Node *n, const Tensor *const *in, const Tensor *const *out);

/* The body of a two-input BcastLoop (see broadcast.h): o[i] = ST(expr) where expr reads
 * x and y, the loaded operands of compute type C, for each case of the strides s[] (0 or
 * 1) so the common ones vectorize. The enclosing function names T (input storage type)
 * and C, and has the BcastLoop parameters out, in, s, n. OT is the output type. */
#define MATH_BIN_LOOP(OT, LD, ST, ...) \
    do { \
        const T *a_ = in[0], *b_ = in[1]; \
        OT *o_ = out; \
        if (s[0] && s[1]) { \
            for (int64_t i = 0; i < n; i++) { \
                C x = LD(a_[i]), y = LD(b_[i]); \
                o_[i] = ST(__VA_ARGS__); \
            } \
        } else if (s[0]) { \
            C y = LD(b_[0]); \
            for (int64_t i = 0; i < n; i++) { \
                C x = LD(a_[i]); \
                o_[i] = ST(__VA_ARGS__); \
            } \
        } else if (s[1]) { \
            C x = LD(a_[0]); \
            for (int64_t i = 0; i < n; i++) { \
                C y = LD(b_[i]); \
                o_[i] = ST(__VA_ARGS__); \
            } \
        } else { \
            C x = LD(a_[0]), y = LD(b_[0]); \
            OT r_ = ST(__VA_ARGS__); \
            for (int64_t i = 0; i < n; i++) \
                o_[i] = r_; \
        } \
    } while (0)

/* Float -> unsigned integer without undefined behaviour: NaN and negatives give 0, values
 * past UINT64_MAX saturate (the signed twin is double_to_i64_sat in runtime/core.h). */
static inline uint64_t double_to_u64_sat(double v)
{
    if (!(v > 0))
        return 0;
    if (v >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)v;
}

#endif
