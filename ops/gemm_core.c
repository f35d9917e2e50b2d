/* gemm_core.c - packing, blocking and threading of the GEMM; the portable microkernel. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/gemm.h"
#include "runtime/threadpool.h"

/* ---- the portable microkernel: 4 x 8, written so compilers vectorize the inner loop ---- */

#define REF_MR 4
#define REF_NR 8

void gemm_store_tile(const float *acc, int acc_ld, float *c, int64_t ldc, int m, int n, bool accumulate,
                     const GemmEpi *e)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float v = acc[i * acc_ld + j];
            if (accumulate)
                v += c[i * ldc + j];
            if (e) {
                if (e->row_bias)
                    v += e->row_bias[i];
                if (e->col_bias)
                    v += e->col_bias[j];
                if (v < e->lo) /* NaN stays NaN, as in the vector kernels */
                    v = e->lo;
                if (v > e->hi)
                    v = e->hi;
                if (e->act)
                    v = act_apply1(e->act, v);
            }
            c[i * ldc + j] = v;
        }
}

static void ukernel_ref_4x8(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int m, int n,
                            bool accumulate, const GemmEpi *e)
{
    float acc[REF_MR][REF_NR] = {{0}};
    for (int64_t k = 0; k < kc; k++) {
        const float *ak = a + k * REF_MR, *bk = b + k * REF_NR;
        for (int i = 0; i < REF_MR; i++)
            for (int j = 0; j < REF_NR; j++)
                acc[i][j] += ak[i] * bk[j];
    }
    gemm_store_tile(&acc[0][0], REF_NR, c, ldc, m, n, accumulate, e);
}

static const GemmUkernel ukernel_ref = {"gemm_f32_4x8_ref", ISA_SCALAR, REF_MR, REF_NR, ukernel_ref_4x8, NULL};

#ifdef CRUN_HAVE_AVX2
extern const GemmUkernel gemm_ukernel_avx2, gemm_ukernel_avx2_4, gemm_ukernel_avx2_1;
#endif
#ifdef CRUN_HAVE_AVX512
extern const GemmUkernel gemm_ukernel_avx512, gemm_ukernel_avx512_8, gemm_ukernel_avx512_4, gemm_ukernel_avx512_1;
#endif
#ifdef CRUN_HAVE_NEON
extern const GemmUkernel gemm_ukernel_neon, gemm_ukernel_neon_4, gemm_ukernel_neon_1;
#endif
#ifdef CRUN_HAVE_NEONFP16
extern const GemmUkernel gemm_ukernel_neonfp16, gemm_ukernel_neonfp16_4, gemm_ukernel_neonfp16_1;
#endif

/* Every microkernel built in, best ISA first and, within an ISA, tallest first; the
 * tests run each one. The float16 ones come first and are chosen only by
 * gemm_ukernel_f16_for. */
static const GemmUkernel *const ukernels[] = {
#ifdef CRUN_HAVE_NEONFP16
    &gemm_ukernel_neonfp16, &gemm_ukernel_neonfp16_4, &gemm_ukernel_neonfp16_1,
#endif
#ifdef CRUN_HAVE_AVX512
    &gemm_ukernel_avx512, &gemm_ukernel_avx512_8, &gemm_ukernel_avx512_4, &gemm_ukernel_avx512_1,
#endif
#ifdef CRUN_HAVE_AVX2
    &gemm_ukernel_avx2, &gemm_ukernel_avx2_4, &gemm_ukernel_avx2_1,
#endif
#ifdef CRUN_HAVE_NEON
    &gemm_ukernel_neon, &gemm_ukernel_neon_4, &gemm_ukernel_neon_1,
#endif
    &ukernel_ref,
};

const GemmUkernel *gemm_ukernel_ref(void) { return &ukernel_ref; }

static const GemmUkernel *best_of(bool half)
{
    for (size_t i = 0; i < CRUN_ARRAY_LEN(ukernels); i++)
        if (isa_allowed(ukernels[i]->isa) && (ukernels[i]->narrow != NULL) == half)
            return ukernels[i];
    return half ? NULL : &ukernel_ref;
}

const GemmUkernel *gemm_ukernel_best(void) { return best_of(false); }

/* Rows computed per real row when M rows are cut into strips of mr, over the kernel's
 * relative speed (taller tiles reuse each B load across more rows). */
static double strip_cost(const GemmUkernel *uk, int64_t M)
{
    double speed = uk->mr >= 12 ? 1.0 : uk->mr >= 6 ? 0.93 : uk->mr >= 4 ? 0.8 : 0.4;
    return (double)((M + uk->mr - 1) / uk->mr * uk->mr) / (double)M / speed;
}

static const GemmUkernel *best_for(int64_t M, bool half)
{
    const GemmUkernel *best = best_of(half);
    if (M <= 0 || !best)
        return best;
    for (size_t i = 0; i < CRUN_ARRAY_LEN(ukernels); i++) {
        const GemmUkernel *uk = ukernels[i];
        if (uk->isa == best->isa && (uk->narrow != NULL) == half && strip_cost(uk, M) < strip_cost(best, M))
            best = uk;
    }
    return best;
}

const GemmUkernel *gemm_ukernel_for(int64_t M) { return best_for(M, false); }
const GemmUkernel *gemm_ukernel_f16_for(int64_t M) { return best_for(M, true); }

int gemm_ukernel_count(void) { return (int)CRUN_ARRAY_LEN(ukernels); }
const GemmUkernel *gemm_ukernel_at(int i) { return ukernels[i]; }

/* ---- packing ---- */

static inline float mat_at(const GemmMatrix *m, int64_t r, int64_t c)
{
    return m->trans ? m->data[c * m->ld + r] : m->data[r * m->ld + c];
}

/* Rows [m0, m0+mc) x k [k0, k0+kc) of A as one MR strip (mc <= mr), zero padded. */
static void pack_a_strip(const GemmMatrix *a, int64_t m0, int mc, int64_t k0, int64_t kc, int mr, float *dst)
{
    if (mc < mr)
        memset(dst, 0, (size_t)(kc * mr) * sizeof *dst);
    for (int i = 0; i < mc; i++) {
        if (a->trans) {
            const float *col = a->data + k0 * a->ld + m0 + i;
            for (int64_t k = 0; k < kc; k++)
                dst[k * mr + i] = col[k * a->ld];
        } else {
            const float *row = a->data + (m0 + i) * a->ld + k0;
            for (int64_t k = 0; k < kc; k++)
                dst[k * mr + i] = row[k];
        }
    }
}

void gemm_pack_b_matrix(const void *src, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst)
{
    const GemmMatrix *b = src;
    for (int64_t s = 0; s < nc; s += nr) {
        int w = (int)CRUN_MIN((int64_t)nr, nc - s);
        for (int64_t k = 0; k < kc; k++) {
            float *d = dst + (s / nr) * kc * nr + k * nr;
            if (!b->trans && w == nr) {
                memcpy(d, b->data + (k0 + k) * b->ld + n0 + s, (size_t)nr * sizeof(float));
                continue;
            }
            for (int j = 0; j < nr; j++)
                d[j] = j < w ? mat_at(b, k0 + k, n0 + s + j) : 0.0f;
        }
    }
}

/* The packed element `elems` elements past base, for either element size. */
static inline const float *packed_at(const GemmUkernel *uk, const float *base, int64_t elems)
{
    return (const float *)((const char *)base + (size_t)elems * gemm_elem_bytes(uk));
}

size_t gemm_packed_a_bytes(const GemmUkernel *uk, int64_t M, int64_t K)
{
    int64_t strips = (M + uk->mr - 1) / uk->mr;
    return (size_t)(strips * uk->mr * CRUN_MAX(K, (int64_t)1)) * gemm_elem_bytes(uk);
}

/* Half-precision kernels' packs are made a k block at a time in float32 on the stack, then
 * narrowed into place (within a strip, k-major blocks are consecutive). */
#define HALF_MAX_STRIP 16

void gemm_pack_a(const GemmUkernel *uk, const GemmMatrix *a, int64_t M, int64_t K, float *dst)
{
    for (int64_t m0 = 0; m0 < M; m0 += uk->mr) {
        int mc = (int)CRUN_MIN((int64_t)uk->mr, M - m0);
        float *d = (float *)packed_at(uk, dst, (m0 / uk->mr) * K * uk->mr);
        if (!uk->narrow) {
            pack_a_strip(a, m0, mc, 0, K, uk->mr, d);
            continue;
        }
        assert(uk->mr <= HALF_MAX_STRIP);
        float tmp[GEMM_KC * HALF_MAX_STRIP];
        for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
            int64_t kc = CRUN_MIN((int64_t)GEMM_KC, K - k0);
            pack_a_strip(a, m0, mc, k0, kc, uk->mr, tmp);
            uk->narrow(tmp, (char *)d + (size_t)(k0 * uk->mr) * 2, (size_t)(kc * uk->mr));
        }
    }
}

size_t gemm_packed_b_bytes(const GemmUkernel *uk, int64_t K, int64_t N)
{
    int64_t strips = (N + uk->nr - 1) / uk->nr;
    return (size_t)(strips * uk->nr * CRUN_MAX(K, (int64_t)1)) * gemm_elem_bytes(uk);
}

/* Where strip s of the k block at k0 starts in a full packed B: k blocks one after
 * another, each its strips one after another (kc x nr each). A k block's strips, which
 * the driver reads in turn, are thus contiguous: strips of the full K were K * nr floats
 * apart, a power-of-two multiple for most convolutions' K, so they shared cache sets. */
static int64_t packed_b_offset(const GemmUkernel *uk, int64_t N, int64_t K, int64_t k0, int64_t s)
{
    int64_t padded = (N + uk->nr - 1) / uk->nr * uk->nr, kc = CRUN_MIN((int64_t)GEMM_KC, K - k0);
    return k0 * padded + s * kc * uk->nr;
}

void gemm_pack_b_full(const GemmUkernel *uk, GemmPackBFn pack, const void *src, int64_t K, int64_t N, float *dst)
{
    assert(!uk->narrow || uk->nr <= HALF_MAX_STRIP);
    for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
        int64_t kc = CRUN_MIN((int64_t)GEMM_KC, K - k0);
        for (int64_t n0 = 0; n0 < N; n0 += uk->nr) {
            int64_t nc = CRUN_MIN((int64_t)uk->nr, N - n0);
            float *d = (float *)packed_at(uk, dst, packed_b_offset(uk, N, K, k0, n0 / uk->nr));
            if (!uk->narrow) {
                pack(src, k0, kc, n0, nc, uk->nr, d);
                continue;
            }
            float tmp[GEMM_KC * HALF_MAX_STRIP];
            pack(src, k0, kc, n0, nc, uk->nr, tmp);
            uk->narrow(tmp, d, (size_t)(kc * uk->nr));
        }
    }
}

/* ---- the driver ---- */

typedef struct GemmJob {
    const GemmArgs *g;
    char *ws;
    size_t ws_per_thread;
    int64_t n_blocks, n_step, m_step;
} GemmJob;

/* Per-thread scratch: a packed B block (unless B is pre-packed) and one packed A strip
 * (unless A is), both no larger than the problem needs. */
static size_t block_b_floats(const GemmArgs *g)
{
    if (g->b_packed)
        return 0;
    int64_t kc = CRUN_MIN(g->K, (int64_t)GEMM_KC), nc = CRUN_MIN(g->N, (int64_t)GEMM_NC);
    return align_up((size_t)(kc * (int64_t)align_up((size_t)nc, (size_t)g->uk->nr)), CRUN_ALIGN / sizeof(float));
}

static size_t strip_a_floats(const GemmArgs *g)
{
    return g->a_packed ? 0 : (size_t)(CRUN_MIN(g->K, (int64_t)GEMM_KC) * g->uk->mr);
}

/* A half-precision kernel packs in float32, then narrows into a second area of halves. */
static size_t half_area_bytes(const GemmArgs *g)
{
    return g->uk->narrow ? align_up((block_b_floats(g) + strip_a_floats(g)) * 2, CRUN_ALIGN) : 0;
}

size_t gemm_ws_bytes(const GemmArgs *g, int n_threads)
{
    size_t per = align_up((block_b_floats(g) + strip_a_floats(g)) * sizeof(float), CRUN_ALIGN) + half_area_bytes(g);
    return per * (size_t)n_threads;
}

size_t gemm_ws_bytes_max(void)
{
    size_t most = 0;
    for (int i = 0; i < gemm_ukernel_count(); i++) {
        GemmArgs g = {.M = GEMM_NC, .N = GEMM_NC, .K = GEMM_KC, .uk = gemm_ukernel_at(i)};
        size_t b = gemm_ws_bytes(&g, 1);
        most = b > most ? b : most;
    }
    return most;
}

static float bias_at(const GemmArgs *g, int64_t i, int64_t j)
{
    switch (g->bias_kind) {
    case GEMM_BIAS_SCALAR: return g->bias[0];
    case GEMM_BIAS_ROW: return g->bias[i];
    case GEMM_BIAS_COL: return g->bias[j];
    case GEMM_BIAS_FULL: return g->bias[i * g->bias_ld + j];
    default: return 0.0f;
    }
}

/* The general epilogue (alpha, beta, any bias, any activation) over rows [m0, m1) and
 * columns [n0, n1), for what the microkernels' own epilogue does not cover. */
static void epilogue(const GemmArgs *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    bool scale = g->alpha != 1.0f, bias = g->bias_kind != GEMM_BIAS_NONE;
    for (int64_t i = m0; i < m1; i++) {
        float *row = g->c + i * g->ldc;
        if (scale || bias)
            for (int64_t j = n0; j < n1; j++)
                row[j] = g->alpha * row[j] + (bias ? g->beta * bias_at(g, i, j) : 0.0f);
        act_apply_f32(&g->act, row + n0, n1 - n0);
    }
}

/* Whether the microkernels apply the bias themselves (alpha = beta = 1, bias per row or
 * column) and, if so, whether the activation is their clamp. */
static bool epi_in_kernel(const GemmArgs *g)
{
    return g->alpha == 1.0f && (g->bias_kind == GEMM_BIAS_NONE ||
                                (g->beta == 1.0f && (g->bias_kind == GEMM_BIAS_ROW || g->bias_kind == GEMM_BIAS_COL)));
}

/* The epilogue of the tile at (i, jn) when the microkernel can apply it. */
static const GemmEpi *tile_epi(const GemmArgs *g, int64_t i, int64_t jn, GemmEpi *e)
{
    if (!epi_in_kernel(g))
        return NULL;
    e->row_bias = g->bias_kind == GEMM_BIAS_ROW ? g->bias + i : NULL;
    e->col_bias = g->bias_kind == GEMM_BIAS_COL ? g->bias + jn : NULL;
    e->act = act_as_clamp(&g->act, &e->lo, &e->hi) ? NULL : &g->act;
    return e;
}

static void tile_finish(const GemmArgs *g, int64_t i, int mc, int64_t jn, int nc)
{
    if (!epi_in_kernel(g))
        epilogue(g, i, i + mc, jn, jn + nc);
}

/* Most columns per block: wider when B was packed at plan time (A's strips are then packed
 * fewer times), otherwise what fits L2 beside its packing. */
static int64_t block_n(const GemmArgs *g) { return g->b_packed ? GEMM_NC_PACKED : GEMM_NC; }

static void gemm_task(void *ctx, int64_t t, int thread)
{
    const GemmJob *j = ctx;
    const GemmArgs *g = j->g;
    const GemmUkernel *uk = g->uk;
    int mr = uk->mr, nr = uk->nr;
    int64_t n0 = (t % j->n_blocks) * j->n_step, n1 = CRUN_MIN(g->N, n0 + j->n_step);
    int64_t m0 = (t / j->n_blocks) * j->m_step, m1 = CRUN_MIN(g->M, m0 + j->m_step);
    float *bbuf = (float *)(j->ws + (size_t)thread * j->ws_per_thread);
    float *abuf = bbuf + block_b_floats(g);
    /* Where a half-precision kernel's narrowed blocks go (the float32 ones otherwise). */
    float *bhalf = bbuf, *ahalf = abuf;
    if (uk->narrow) {
        bhalf = (float *)((char *)bbuf + align_up((block_b_floats(g) + strip_a_floats(g)) * sizeof(float), CRUN_ALIGN));
        ahalf = (float *)((char *)bhalf + block_b_floats(g) * 2);
    }
    if (g->K == 0) {
        for (int64_t i = m0; i < m1 && !g->accumulate; i++)
            memset(g->c + i * g->ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
        epilogue(g, m0, m1, n0, n1);
        return;
    }
    for (int64_t k0 = 0; k0 < g->K; k0 += GEMM_KC) {
        int64_t kc = CRUN_MIN((int64_t)GEMM_KC, g->K - k0);
        bool last = k0 + kc == g->K;
        const float *bblk;
        int64_t bstride;
        if (g->b_packed) {
            bblk = packed_at(uk, g->b_packed, packed_b_offset(uk, g->N, g->K, k0, n0 / nr));
            bstride = kc * nr;
        } else {
            g->pack_b(g->b_src, k0, kc, n0, n1 - n0, nr, bbuf);
            if (uk->narrow)
                uk->narrow(bbuf, bhalf, (size_t)(kc * ((n1 - n0 + nr - 1) / nr * nr)));
            bblk = bhalf;
            bstride = kc * nr;
        }
        for (int64_t i = m0; i < m1; i += mr) {
            int mc = (int)CRUN_MIN((int64_t)mr, m1 - i);
            const float *ablk;
            if (g->a_packed) {
                ablk = packed_at(uk, g->a_packed, (i / mr) * g->K * mr + k0 * mr);
            } else {
                pack_a_strip(&g->a, i, mc, k0, kc, mr, abuf);
                if (uk->narrow)
                    uk->narrow(abuf, ahalf, (size_t)(kc * mr));
                ablk = ahalf;
            }
            for (int64_t jn = n0; jn < n1; jn += nr) {
                int nc = (int)CRUN_MIN((int64_t)nr, n1 - jn);
                GemmEpi e;
                uk->fn(kc, ablk, packed_at(uk, bblk, ((jn - n0) / nr) * bstride), g->c + i * g->ldc + jn, g->ldc, mc,
                       nc, k0 > 0 || g->accumulate, last ? tile_epi(g, i, jn, &e) : NULL);
                if (last)
                    tile_finish(g, i, mc, jn, nc);
            }
        }
    }
}

void gemm_run(const GemmArgs *g, void *ws, struct ThreadPool *pool)
{
    if (g->M <= 0 || g->N <= 0)
        return;
    int threads = pool_threads(pool);
    GemmJob j = {.g = g, .ws = ws};
    j.ws_per_thread = gemm_ws_bytes(g, 1);
    /* About two tasks per thread. Each task packs its own copy of whatever operand is not
     * packed already: splitting N repeats A's packing, splitting M repeats B's. So an
     * unpacked B (convolution's im2col) is split by columns, down to single strips, before
     * M is; a packed B leaves the split to M. Column blocks have equal widths (whole
     * strips), so no thread is left with a sliver. */
    int64_t nr = g->uk->nr, mr = g->uk->mr, tasks = threads == 1 ? 1 : 2 * (int64_t)threads;
    int64_t n_strips = (g->N + nr - 1) / nr;
    j.n_blocks = (g->N + block_n(g) - 1) / block_n(g);
    if (!g->b_packed && j.n_blocks < tasks)
        j.n_blocks = CRUN_MIN(n_strips, tasks);
    j.n_step = ((g->N + j.n_blocks - 1) / j.n_blocks + nr - 1) / nr * nr;
    j.n_blocks = (g->N + j.n_step - 1) / j.n_step;
    int64_t m_strips = (g->M + mr - 1) / mr;
    int64_t want = CRUN_MAX((int64_t)1, (tasks + j.n_blocks - 1) / j.n_blocks);
    int64_t m_chunks = CRUN_MIN(m_strips, want);
    j.m_step = (m_strips + m_chunks - 1) / m_chunks * mr;
    int64_t m_tasks = (g->M + j.m_step - 1) / j.m_step;
    pool_for(pool, j.n_blocks * m_tasks, gemm_task, &j);
}

void gemm_naive(int64_t M, int64_t N, int64_t K, const GemmMatrix *a, const GemmMatrix *b, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)mat_at(a, i, k) * mat_at(b, k, j);
            c[i * ldc + j] = (float)s;
        }
}
