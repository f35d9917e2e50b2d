/* qgemm.h - the packed 8-bit integer GEMM under QLinearConv, QLinearMatMul, ConvInteger,
 * MatMulInteger (and the fused QDQ patterns that become them).
 *
 *   acc[m][p] = sum_k (w[m][k] - zw[m]) * (x[k][p] - zx)        (int32, wrapping)
 *   y[m][p]   = requantize(acc + bias[m], mult[m], zy, [lo, hi]) or acc as int32
 *
 * A is the weights side (s8, one output channel per row, broadcast by the microkernel),
 * B the activations side (one column per output position or token). Both are packed in
 * quads of 4 consecutive k, the unit of the dot-product instructions (VNNI's VPDPBUSD,
 * ARM's SDOT): A strips [K/4][MR][4], B strips [K/4][NR][4]. Operands are brought to one
 * signedness by flipping the top bit (v ^ 0x80 = v -/+ 128) and moving the zero point by
 * the same 128, which leaves every (v - z) and so every result unchanged: weights always
 * s8, activations u8 (x86) or s8 (NEON dot). Integer sums are exact, so every ISA and
 * thread count gives the same bits as the reference kernels in qlinear.c. */
#ifndef CRUN_OPS_QGEMM_H
#define CRUN_OPS_QGEMM_H

#include "ops/registry.h"

struct ThreadPool;

/* Most columns in one packed block (packers that build rows on the stack rely on it). */
#define QGEMM_NC_MAX 1024

typedef enum QOutKind { QOUT_I32, QOUT_U8, QOUT_S8 } QOutKind;

/* How a microkernel finishes its tile. Row arrays point at the tile's first row, col_sum
 * at its first column. acc += row_add[i] (the bias and the zero-point terms that depend
 * on the row only), acc -= row_zw[i] * col_sum[j] (only when the weights have nonzero
 * zero points; NULL otherwise); then QOUT_I32 stores acc, the others store
 * clamp(round_half_even((float)acc * mult[i]), lo - zy, hi - zy) + zy as 8 bits. */
typedef struct QGemmEpi {
    const int32_t *row_add, *row_zw, *col_sum;
    const float *mult;
    int32_t zy, lo, hi;
    QOutKind out;
} QGemmEpi;

/* Computes an mr x nr tile from kq quads of packed A and B and stores its m x n corner
 * at c: element (i, j) at c + (i * rs + j * cs) elements of the output type. */
typedef void (*QGemmUkernelFn)(int64_t kq, const int8_t *a, const uint8_t *b, const QGemmEpi *e, void *c,
                               int64_t rs, int64_t cs, int m, int n);

typedef struct QGemmUkernel {
    const char *name;
    Isa isa;
    int mr, nr;
    bool b_signed; /* B holds s8 (SDOT) rather than u8 (VPDPBUSD and the rest) */
    QGemmUkernelFn fn;
} QGemmUkernel;

/* Best microkernel allowed on this CPU; the portable one; every one built in. */
const QGemmUkernel *qgemm_ukernel_best(void);
const QGemmUkernel *qgemm_ukernel_ref(void);
/* The microkernel of exactly this ISA, or NULL when none is built in. */
const QGemmUkernel *qgemm_ukernel_for_isa(Isa isa);
int qgemm_ukernel_count(void);
const QGemmUkernel *qgemm_ukernel_at(int i);

/* The portable tile store: finishes acc (mr x nr, row stride nr) as a microkernel does. */
void qgemm_store_tile(const int32_t *acc, int nr, const QGemmEpi *e, void *c, int64_t rs, int64_t cs, int m, int n);

static inline int64_t qgemm_quads(int64_t K) { return (K + 3) / 4; }

/* Packed A: M x K weights of type w_signed ? s8 : u8, element (m, k) at w[m * sm + k * sk],
 * as s8 strips for uk, zero past M and K. wsum[m] gets sum_k of row m's packed values. */
size_t qgemm_packed_a_bytes(const QGemmUkernel *uk, int64_t M, int64_t K);
void qgemm_pack_a(const QGemmUkernel *uk, const void *w, bool w_signed, int64_t M, int64_t K, int64_t sm, int64_t sk,
                  int8_t *dst, int32_t *wsum);

/* Packs columns [n0, n0 + nc) of B into uk's strips (zero past nc and K), xor-ing every
 * byte with flip; col_sum (NULL: not wanted; else zeroed by the caller) gets each column's
 * sum of the packed values, read as uk->b_signed says. */
typedef void (*QGemmPackBFn)(const void *src, int64_t K, int64_t n0, int64_t nc, const QGemmUkernel *uk,
                             uint8_t flip, uint8_t *dst, int32_t *col_sum);

/* A source of B: a K x N matrix (rows: k) or an N x K one (rows: columns of B, as the left
 * operand of a MatMul is), row stride ld bytes. */
typedef struct QGemmMatrix {
    const uint8_t *data;
    int64_t ld;
} QGemmMatrix;
void qgemm_pack_b_kn(const void *src, int64_t K, int64_t n0, int64_t nc, const QGemmUkernel *uk, uint8_t flip,
                     uint8_t *dst, int32_t *col_sum);
void qgemm_pack_b_nk(const void *src, int64_t K, int64_t n0, int64_t nc, const QGemmUkernel *uk, uint8_t flip,
                     uint8_t *dst, int32_t *col_sum);
/* Writes quad q (k rows 4q..4q+3 as r[0..3], NULL past K) of columns [0, nc) into the
 * strips at dst (kq quads per strip), adding the packed values to col_sum if not NULL;
 * for packers that make their rows on the fly (im2col). Lanes past nc: qgemm_pack_tail. */
void qgemm_pack_quad(const uint8_t *const r[4], int64_t nc, const QGemmUkernel *uk, int64_t kq, int64_t q,
                     uint8_t flip, uint8_t *dst, int32_t *col_sum);
void qgemm_pack_tail(int64_t nc, int nr, int64_t kq, uint8_t *dst);
/* Adds each of the nc packed columns' sum of values (read as uk->b_signed says) to col_sum;
 * for packers that copy whole quads. */
void qgemm_col_sums(const uint8_t *packed, int64_t nc, const QGemmUkernel *uk, int64_t kq, int32_t *col_sum);

/* One product. The epilogue's per-row arrays cover all M rows; the driver offsets them. */
typedef struct QGemmArgs {
    int64_t M, N, K;
    const QGemmUkernel *uk;
    const int8_t *a_packed;
    QGemmPackBFn pack_b;
    const void *b_src;
    uint8_t b_flip;
    QGemmEpi epi;     /* col_sum is filled by the driver when row_zw is set */
    void *c;          /* element (m, p) at c + m * rs + p * cs */
    int64_t rs, cs;
} QGemmArgs;

size_t qgemm_ws_bytes(const QGemmArgs *g, int n_threads);
void qgemm_run(const QGemmArgs *g, void *ws, struct ThreadPool *pool);

#endif
