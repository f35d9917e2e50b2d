/* gemm.h - the packed single-precision GEMM every dense op is built on (Gemm, MatMul,
 * Conv through implicit im2col).
 *
 *   C[M x N] = epilogue(alpha * A[M x K] . B[K x N])
 *   epilogue: + beta * bias (scalar, per row, per column or a full matrix), then an
 *   activation.
 *
 * Operands are packed into panels: A into strips of MR rows, B into strips of NR columns,
 * each laid out k-major so the microkernel streams them. Constant operands (weights) are
 * packed once at plan time; others are packed per cache block into per-thread scratch.
 * Each C element sums over k in the same order whatever the thread count, so results
 * never depend on it. */
#ifndef CRUN_OPS_GEMM_H
#define CRUN_OPS_GEMM_H

#include "ops/registry.h"

struct ThreadPool;

/* Block sizes (in elements) shared by packers and driver. */
#define GEMM_KC 192
#define GEMM_NC 256
#define GEMM_NC_PACKED 512

/* The epilogue a microkernel applies to its tile on the last k block: + a bias per row
 * and/or per column (pointers at the tile's first row / column, NULL for none), then a
 * clamp to [lo, hi] (Relu, Relu6, Clip; -inf..inf for none), then act unless NULL (the
 * other activations, computed as the activation kernels of the same ISA do). */
typedef struct GemmEpi {
    const float *row_bias, *col_bias;
    float lo, hi;
    const Activation *act;
} GemmEpi;

/* A microkernel computes an mr x nr tile from kc packed steps and stores m x n of it
 * (m <= mr, n <= nr) into c with row stride ldc, adding to c when accumulate is set, then
 * applying e when it is not NULL. Every kernel computes ((acc + c) + row) + col in that
 * order, so the ISAs differ only in how each k sum is rounded. */
typedef void (*GemmUkernelFn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                              bool accumulate, const GemmEpi *e);

/* Stores the m x n corner of a tile held in acc (row stride acc_ld) as a microkernel does;
 * the portable path for partial tiles. */
void gemm_store_tile(const float *acc, int acc_ld, float *c, int64_t ldc, int m, int n, bool accumulate,
                     const GemmEpi *e);

/* Converts n floats to IEEE halves (round to nearest even) at dst. */
typedef void (*GemmNarrowFn)(const float *src, void *dst, size_t n);

/* A microkernel. Float32 ones (narrow NULL) read packed float32; half-precision ones read
 * packs of float16 (a and b point at halves, though typed float), which the packers make
 * by packing float32 as usual and converting with narrow, and multiply-add in float16
 * over each k block of at most GEMM_KC steps, adding the blocks into C in float32. */
typedef struct GemmUkernel {
    const char *name;
    Isa isa;
    int mr, nr;
    GemmUkernelFn fn;
    GemmNarrowFn narrow;
} GemmUkernel;

/* Bytes of one packed element: 4 (float32) or 2 (float16). */
static inline size_t gemm_elem_bytes(const GemmUkernel *uk) { return uk->narrow ? 2 : 4; }

/* Best float32 microkernel allowed on this CPU. */
const GemmUkernel *gemm_ukernel_best(void);
/* The microkernel of the best ISA that wastes least on an M-row product (a strip height
 * dividing M beats a taller one padded). Depends on M and the CPU only, so a packer and
 * a kernel that both ask get the same one. */
const GemmUkernel *gemm_ukernel_for(int64_t M);
/* The half-precision counterparts, for float16-weight models (NULL when the CPU has no
 * half-precision arithmetic or the ISA limit excludes it). */
const GemmUkernel *gemm_ukernel_f16_for(int64_t M);
/* The portable one (the oracle for the others). */
const GemmUkernel *gemm_ukernel_ref(void);
/* Every microkernel built in, float16 ones included (some may not run on this CPU: check
 * isa_allowed). */
int gemm_ukernel_count(void);
const GemmUkernel *gemm_ukernel_at(int i);

/* Source of the B operand for a block: writes rows [k0, k0+kc) x cols [n0, n0+nc) as NR-wide
 * strips (k-major, zero padded past nc) into dst. */
typedef void (*GemmPackBFn)(const void *src, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst);

typedef enum GemmBias { GEMM_BIAS_NONE, GEMM_BIAS_SCALAR, GEMM_BIAS_ROW, GEMM_BIAS_COL, GEMM_BIAS_FULL } GemmBias;

/* A plain row-major matrix as a pack source; trans means the stored matrix is op^T. */
typedef struct GemmMatrix {
    const float *data;
    int64_t ld;
    bool trans;
} GemmMatrix;

typedef struct GemmArgs {
    int64_t M, N, K;
    const GemmUkernel *uk;
    /* A: packed (from gemm_pack_a with uk) or a matrix packed per block. */
    const float *a_packed;
    GemmMatrix a;
    /* B: packed (gemm_pack_b_full) or a source packed per block by pack_b. */
    const float *b_packed;
    GemmPackBFn pack_b;
    const void *b_src;
    float *c;
    int64_t ldc;
    float alpha, beta;
    GemmBias bias_kind;
    const float *bias;
    int64_t bias_ld; /* for GEMM_BIAS_FULL */
    Activation act;
    bool accumulate; /* C += the product (bias and activation still apply to the sum) */
} GemmArgs;

/* Scratch the driver needs per call for n_threads threads. */
size_t gemm_ws_bytes(const GemmArgs *g, int n_threads);
/* Scratch enough for any call on one thread (for callers that size it once). */
size_t gemm_ws_bytes_max(void);
/* Runs the GEMM; ws holds gemm_ws_bytes. */
void gemm_run(const GemmArgs *g, void *ws, struct ThreadPool *pool);

/* Packed sizes (bytes) and packers for constant operands (float16 for a half-precision
 * microkernel). */
size_t gemm_packed_a_bytes(const GemmUkernel *uk, int64_t M, int64_t K);
/* Where element (i, k) of an M x K matrix sits in its packed-A layout (strips of mr rows,
 * k-major within a strip), for producers that write packed data directly. */
static inline size_t gemm_packed_a_index(const GemmUkernel *uk, int64_t K, int64_t i, int64_t k)
{
    return (size_t)((i / uk->mr) * K * uk->mr + k * uk->mr + i % uk->mr);
}
void gemm_pack_a(const GemmUkernel *uk, const GemmMatrix *a, int64_t M, int64_t K, float *dst);
size_t gemm_packed_b_bytes(const GemmUkernel *uk, int64_t K, int64_t N);
void gemm_pack_b_full(const GemmUkernel *uk, GemmPackBFn pack, const void *src, int64_t K, int64_t N, float *dst);

/* pack_b for a GemmMatrix source. */
void gemm_pack_b_matrix(const void *src, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst);

/* Naive triple loop, the oracle the tests hold the packed GEMM to. */
void gemm_naive(int64_t M, int64_t N, int64_t K, const GemmMatrix *a, const GemmMatrix *b, float *c, int64_t ldc);

/* ---- MatMul's numpy shape rules (shared with MatMulInteger and QLinearMatMul) ---- */

typedef struct MatMulShape {
    int64_t M, N, K;
    int batch_rank;
    int64_t batch[CRUN_MAX_RANK]; /* broadcast batch dims */
    int64_t a_bs[CRUN_MAX_RANK];  /* A's stride per batch dim in elements (0: broadcast) */
    int64_t b_bs[CRUN_MAX_RANK];
    int64_t n_batch;
} MatMulShape;

/* Fills s and the output dims of a . b (1-D operands promoted and dropped as numpy does);
 * false when the shapes do not multiply. out_dims needs room for 2 * CRUN_MAX_RANK. */
bool matmul_shape(const Tensor *a, const Tensor *b, MatMulShape *s, int64_t *out_dims, int *out_rank);
/* Element offsets of batch t's A and B matrices (batch dims broadcast). */
void matmul_batch_offsets(const MatMulShape *s, int64_t t, int64_t *ao, int64_t *bo);

#endif
