/* qgemm.c - packing, blocking and threading of the 8-bit GEMM; the portable microkernel. */
#include <math.h>
#include <string.h>

#include "ops/qgemm.h"
#include "quant/quant.h"
#include "runtime/threadpool.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* ---- the tile store and the portable microkernel ---- */

void qgemm_store_tile(const int32_t *acc, int nr, const QGemmEpi *e, void *c, int64_t rs, int64_t cs, int m, int n)
{
    float lo = (float)(e->lo - e->zy), hi = (float)(e->hi - e->zy);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            /* Unsigned: the sums wrap as the vector kernels' do, without overflow. */
            uint32_t a = (uint32_t)acc[i * nr + j] + (uint32_t)e->row_add[i];
            if (e->row_zw)
                a -= (uint32_t)e->row_zw[i] * (uint32_t)e->col_sum[j];
            int64_t at = i * rs + j * cs;
            if (e->out == QOUT_I32) {
                ((int32_t *)c)[at] = (int32_t)a;
                continue;
            }
            float v = (float)(int32_t)a * e->mult[i];
            v = v < lo ? lo : v > hi ? hi : v;
            int32_t q = (int32_t)quant_rint_small(v) + e->zy;
            if (e->out == QOUT_U8)
                ((uint8_t *)c)[at] = (uint8_t)q;
            else
                ((int8_t *)c)[at] = (int8_t)q;
        }
}

#define REF_MR 4
#define REF_NR 8

static void qukernel_ref(int64_t kq, const int8_t *a, const uint8_t *b, const QGemmEpi *e, void *c, int64_t rs,
                         int64_t cs, int m, int n)
{
    int32_t acc[REF_MR * REF_NR] = {0};
    for (int64_t q = 0; q < kq; q++, a += REF_MR * 4, b += REF_NR * 4)
        for (int i = 0; i < REF_MR; i++)
            for (int j = 0; j < REF_NR; j++) {
                int32_t s = 0;
                for (int t = 0; t < 4; t++)
                    s += (int32_t)a[i * 4 + t] * (int32_t)b[j * 4 + t];
                acc[i * REF_NR + j] = (int32_t)((uint32_t)acc[i * REF_NR + j] + (uint32_t)s);
            }
    qgemm_store_tile(acc, REF_NR, e, c, rs, cs, m, n);
}

static const QGemmUkernel qukernel_ref_desc = {"qgemm_8x4_4x8_ref", ISA_SCALAR, REF_MR, REF_NR, false, qukernel_ref};

#ifdef CRUN_HAVE_AVX2
extern const QGemmUkernel qgemm_ukernel_avx2;
#endif
#ifdef CRUN_HAVE_AVX512
extern const QGemmUkernel qgemm_ukernel_avx512vnni;
#endif
#ifdef CRUN_HAVE_NEONDOT
extern const QGemmUkernel qgemm_ukernel_neondot;
#endif

/* Best first; the tests run each one the CPU has. */
static const QGemmUkernel *const qukernels[] = {
#ifdef CRUN_HAVE_AVX512
    &qgemm_ukernel_avx512vnni,
#endif
#ifdef CRUN_HAVE_AVX2
    &qgemm_ukernel_avx2,
#endif
#ifdef CRUN_HAVE_NEONDOT
    &qgemm_ukernel_neondot,
#endif
    &qukernel_ref_desc,
};

const QGemmUkernel *qgemm_ukernel_ref(void) { return &qukernel_ref_desc; }
int qgemm_ukernel_count(void) { return (int)(sizeof qukernels / sizeof qukernels[0]); }
const QGemmUkernel *qgemm_ukernel_at(int i) { return qukernels[i]; }

const QGemmUkernel *qgemm_ukernel_for_isa(Isa isa)
{
    for (int i = 0; i < qgemm_ukernel_count(); i++)
        if (qukernels[i]->isa == isa)
            return qukernels[i];
    return NULL;
}

const QGemmUkernel *qgemm_ukernel_best(void)
{
    for (int i = 0; i < qgemm_ukernel_count(); i++)
        if (isa_allowed(qukernels[i]->isa))
            return qukernels[i];
    return &qukernel_ref_desc;
}

/* ---- packing ---- */

size_t qgemm_packed_a_bytes(const QGemmUkernel *uk, int64_t M, int64_t K)
{
    int64_t strips = (M + uk->mr - 1) / uk->mr;
    return (size_t)(strips * qgemm_quads(K) * uk->mr * 4);
}

void qgemm_pack_a(const QGemmUkernel *uk, const void *w, bool w_signed, int64_t M, int64_t K, int64_t sm, int64_t sk,
                  int8_t *dst, int32_t *wsum)
{
    int64_t kq = qgemm_quads(K);
    uint8_t flip = w_signed ? 0 : 0x80;
    memset(dst, 0, qgemm_packed_a_bytes(uk, M, K));
    for (int64_t m = 0; m < M; m++) {
        const uint8_t *row = (const uint8_t *)w + m * sm;
        int8_t *strip = dst + (m / uk->mr) * kq * uk->mr * 4 + (m % uk->mr) * 4;
        int32_t sum = 0;
        for (int64_t k = 0; k < K; k++) {
            int8_t v = (int8_t)(row[k * sk] ^ flip);
            strip[(k / 4) * uk->mr * 4 + k % 4] = v;
            sum += v;
        }
        wsum[m] = sum;
    }
}

void qgemm_pack_quad(const uint8_t *const r[4], int64_t nc, const QGemmUkernel *uk, int64_t kq, int64_t q,
                      uint8_t flip, uint8_t *dst, int32_t *col_sum)
{
    int nr = uk->nr;
    bool sgn = uk->b_signed;
    int64_t strip_bytes = kq * nr * 4, j = 0;
#if defined(__SSE2__)
    /* 16 columns at a time: interleave the four rows' bytes into dwords (k0 k1 k2 k3). */
    static const uint8_t zeros[16] = {0};
    __m128i fl = _mm_set1_epi8((char)flip);
    for (; j + 16 <= nc && nr % 16 == 0; j += 16) {
        __m128i v[4];
        for (int t = 0; t < 4; t++)
            v[t] = r[t] ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r[t] + j)), fl)
                        : _mm_loadu_si128((const __m128i *)zeros);
        __m128i a = _mm_unpacklo_epi8(v[0], v[1]), b = _mm_unpackhi_epi8(v[0], v[1]);
        __m128i c = _mm_unpacklo_epi8(v[2], v[3]), d = _mm_unpackhi_epi8(v[2], v[3]);
        uint8_t *o = dst + (j / nr) * strip_bytes + q * nr * 4 + (j % nr) * 4;
        _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(a, c));
        _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(a, c));
        _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(b, d));
        _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(b, d));
    }
#elif defined(__ARM_NEON)
    /* 8 columns at a time: vst4 stores four registers interleaved byte by byte, the quads */
    static const uint8_t zeros[8] = {0};
    uint8x8_t fl = vdup_n_u8(flip);
    for (; j + 8 <= nc && nr % 8 == 0; j += 8) {
        uint8x8x4_t v;
        for (int t = 0; t < 4; t++)
            v.val[t] = r[t] ? veor_u8(vld1_u8(r[t] + j), fl) : vld1_u8(zeros);
        uint8_t *o = dst + (j / nr) * strip_bytes + q * nr * 4 + (j % nr) * 4;
        vst4_u8(o, v);
    }
#endif
    for (; j < nc; j++) {
        uint8_t *o = dst + (j / nr) * strip_bytes + q * nr * 4 + (j % nr) * 4;
        for (int t = 0; t < 4; t++)
            o[t] = r[t] ? (uint8_t)(r[t][j] ^ flip) : 0;
    }
    if (col_sum) /* the packed values as the microkernel reads them (rows past K hold 0) */
        for (j = 0; j < nc; j++) {
            const uint8_t *o = dst + (j / nr) * strip_bytes + q * nr * 4 + (j % nr) * 4;
            for (int t = 0; t < 4; t++)
                col_sum[j] += sgn ? (int8_t)o[t] : o[t];
        }
}

void qgemm_pack_tail(int64_t nc, int nr, int64_t kq, uint8_t *dst)
{
    int64_t tail = nc % nr;
    if (!tail)
        return;
    uint8_t *s = dst + (nc / nr) * kq * nr * 4;
    for (int64_t q = 0; q < kq; q++)
        memset(s + q * nr * 4 + tail * 4, 0, (size_t)(nr - tail) * 4);
}

void qgemm_col_sums(const uint8_t *packed, int64_t nc, const QGemmUkernel *uk, int64_t kq, int32_t *col_sum)
{
    int nr = uk->nr;
    for (int64_t j = 0; j < nc; j++) {
        const uint8_t *o = packed + (j / nr) * kq * nr * 4 + (j % nr) * 4;
        for (int64_t q = 0; q < kq; q++, o += nr * 4)
            for (int t = 0; t < 4; t++)
                col_sum[j] += uk->b_signed ? (int8_t)o[t] : o[t];
    }
}

void qgemm_pack_b_kn(const void *src, int64_t K, int64_t n0, int64_t nc, const QGemmUkernel *uk, uint8_t flip,
                     uint8_t *dst, int32_t *col_sum)
{
    const QGemmMatrix *b = src;
    int64_t kq = qgemm_quads(K);
    for (int64_t q = 0; q < kq; q++) {
        const uint8_t *r[4];
        for (int t = 0; t < 4; t++)
            r[t] = 4 * q + t < K ? b->data + (4 * q + t) * b->ld + n0 : NULL;
        qgemm_pack_quad(r, nc, uk, kq, q, flip, dst, col_sum);
    }
    qgemm_pack_tail(nc, uk->nr, kq, dst);
}

/* Column j of B is row n0 + j of the source: its quads are 4 contiguous bytes. */
void qgemm_pack_b_nk(const void *src, int64_t K, int64_t n0, int64_t nc, const QGemmUkernel *uk, uint8_t flip,
                     uint8_t *dst, int32_t *col_sum)
{
    const QGemmMatrix *b = src;
    int nr = uk->nr;
    int64_t kq = qgemm_quads(K), strip_bytes = kq * nr * 4;
    uint32_t fl = flip * 0x01010101u;
    for (int64_t j = 0; j < nc; j++) {
        const uint8_t *row = b->data + (n0 + j) * b->ld;
        uint8_t *o = dst + (j / nr) * strip_bytes + (j % nr) * 4;
        int32_t sum = 0;
        for (int64_t q = 0; q < kq; q++, o += nr * 4) {
            uint32_t v = 0;
            if (4 * q + 4 <= K) {
                memcpy(&v, row + 4 * q, 4);
                v ^= fl;
            } else {
                uint8_t t4[4] = {0};
                for (int64_t t = 0; 4 * q + t < K; t++)
                    t4[t] = row[4 * q + t] ^ flip;
                memcpy(&v, t4, 4);
            }
            memcpy(o, &v, 4);
            if (col_sum)
                for (int t = 0; t < 4 && 4 * q + t < K; t++)
                    sum += uk->b_signed ? (int8_t)o[t] : o[t];
        }
        if (col_sum)
            col_sum[j] = sum;
    }
    qgemm_pack_tail(nc, nr, kq, dst);
}

/* ---- the driver ---- */

/* Columns per block: the packed block (K x nc bytes) stays near 128 KiB, in L2, while
 * every strip of A streams past it. */
static int64_t block_cols(const QGemmArgs *g)
{
    int64_t nr = g->uk->nr, kq = qgemm_quads(g->K);
    int64_t nc = (128 * 1024) / (kq * 4 > 0 ? kq * 4 : 1);
    nc = nc / nr * nr;
    nc = CRUN_MAX(nc, nr);
    nc = CRUN_MIN(nc, QGEMM_NC_MAX);
    int64_t n_round = (g->N + nr - 1) / nr * nr;
    return CRUN_MIN(nc, n_round);
}

static size_t block_bytes(const QGemmArgs *g, int64_t nc)
{
    size_t b = (size_t)(qgemm_quads(g->K) * 4 * nc);
    return (b + 63) & ~(size_t)63;
}

size_t qgemm_ws_bytes(const QGemmArgs *g, int n_threads)
{
    int64_t nc = block_cols(g);
    return (size_t)n_threads * (block_bytes(g, nc) + (size_t)nc * sizeof(int32_t) + 64);
}

typedef struct QGemmTask {
    const QGemmArgs *g;
    void *ws;
    size_t per_thread;
    int64_t nc, n_blocks, row_groups, strips_per_group;
} QGemmTask;

static void qgemm_task(void *ctx, int64_t task, int thread)
{
    const QGemmTask *t = ctx;
    const QGemmArgs *g = t->g;
    const QGemmUkernel *uk = g->uk;
    int64_t blk = task / t->row_groups, rg = task % t->row_groups;
    int64_t n0 = blk * t->nc, nc = CRUN_MIN(t->nc, g->N - n0), kq = qgemm_quads(g->K);
    uint8_t *b = (uint8_t *)t->ws + (size_t)thread * t->per_thread;
    int32_t *col_sum = g->epi.row_zw ? (int32_t *)(b + block_bytes(g, t->nc)) : NULL;
    if (col_sum)
        memset(col_sum, 0, (size_t)nc * sizeof *col_sum);
    g->pack_b(g->b_src, g->K, n0, nc, uk, g->b_flip, b, col_sum);
    size_t esz = g->epi.out == QOUT_I32 ? 4 : 1;
    int64_t s0 = rg * t->strips_per_group, s1 = CRUN_MIN(s0 + t->strips_per_group, (g->M + uk->mr - 1) / uk->mr);
    for (int64_t s = s0; s < s1; s++) {
        int64_t m0 = s * uk->mr;
        int m = (int)CRUN_MIN(uk->mr, g->M - m0);
        QGemmEpi e = g->epi;
        e.row_add += m0;
        e.mult = e.mult ? e.mult + m0 : NULL;
        e.row_zw = e.row_zw ? e.row_zw + m0 : NULL;
        const int8_t *a = g->a_packed + s * kq * uk->mr * 4;
        for (int64_t j = 0; j < nc; j += uk->nr) {
            e.col_sum = col_sum ? col_sum + j : NULL;
            char *c = (char *)g->c + (size_t)(m0 * g->rs + (n0 + j) * g->cs) * esz;
            uk->fn(kq, a, b + j * kq * 4, &e, c, g->rs, g->cs, m, (int)CRUN_MIN(uk->nr, nc - j));
        }
    }
}

void qgemm_run(const QGemmArgs *g, void *ws, ThreadPool *pool)
{
    if (g->M <= 0 || g->N <= 0)
        return;
    QGemmTask t = {.g = g, .ws = ws, .nc = block_cols(g)};
    t.per_thread = block_bytes(g, t.nc) + (size_t)t.nc * sizeof(int32_t) + 64;
    t.n_blocks = (g->N + t.nc - 1) / t.nc;
    int64_t strips = (g->M + g->uk->mr - 1) / g->uk->mr;
    int threads = pool_threads(pool);
    /* Few column blocks for the threads: split the rows too (each group packs its block). */
    t.row_groups = threads > 1 && t.n_blocks < 2 * threads ? CRUN_MIN(strips, (2 * threads + t.n_blocks - 1) / t.n_blocks) : 1;
    t.strips_per_group = (strips + t.row_groups - 1) / t.row_groups;
    t.row_groups = (strips + t.strips_per_group - 1) / t.strips_per_group;
    pool_for(pool, t.n_blocks * t.row_groups, qgemm_task, &t);
}
