/* qlinear.h - what the integer matrix ops (qlinear.c: the reference kernels) share with
 * their packed kernels (qlinear_packed.c, on the 8-bit GEMM of qgemm.h). */
#ifndef CRUN_OPS_QLINEAR_H
#define CRUN_OPS_QLINEAR_H

#include "ops/registry.h"
#include "quant/quant.h"

/* Input positions of A, B and their zero points/scales in each op; -1: not an input. */
typedef struct QMatMulIO {
    int a, b, za, zb, sa, sb, sy, zy, bias;
} QMatMulIO;

typedef struct QConvIO {
    int x, w, zx, zw, sx, sw, sy, zy, bias;
} QConvIO;

static inline bool is_8bit(crun_dtype t) { return t == CRUN_DTYPE_UINT8 || t == CRUN_DTYPE_INT8; }

/* A zero point or scale given once or once per row/column/channel: the value for index i
 * (a NULL zero point is 0). */
int32_t zp_at(const Tensor *z, int64_t i);
float scale_at(const Tensor *s, int64_t i);

/* The output range of a requantizing node: its type's, narrowed by a fused Relu or Clip
 * (node->act, set by the QDQ pass) quantized with (sy, zy). */
QuantRange qout_range(const Node *n, crun_dtype out, float sy, int32_t zy);

/* The packed kernels (constant weights, any 8-bit types and zero points), one variant
 * per ISA of the GEMM microkernels: kdata is a QPackedKernel. */
typedef struct QPackedKernel {
    const void *io; /* the op's QConvIO or QMatMulIO */
    Isa isa;
} QPackedKernel;
bool qconv_packed_applies(const PrepCtx *c, const void *kdata);
crun_status qconv_packed_prepare(PrepCtx *c);
crun_status qconv_packed_run(KernelCtx *k);
/* Depthwise convolutions (kdata a QPackedKernel of ISA_SCALAR). */
bool qconv_dw_applies(const PrepCtx *c, const void *kdata);
crun_status qconv_dw_prepare(PrepCtx *c);
crun_status qconv_dw_run(KernelCtx *k);
/* Depthwise QLinearConv on the float window kernels (kdata: their WindowQuadsUkernel). */
bool qconv_dw_simd_applies(const PrepCtx *c, const void *kdata);
crun_status qconv_dw_simd_prepare(PrepCtx *c);
crun_status qconv_dw_simd_run(KernelCtx *k);
bool qmatmul_packed_applies(const PrepCtx *c, const void *kdata);
crun_status qmatmul_packed_prepare(PrepCtx *c);
crun_status qmatmul_packed_run(KernelCtx *k);

#endif
