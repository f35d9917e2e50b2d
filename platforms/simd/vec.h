/* vec.h - one small float-vector vocabulary over AVX-512, AVX2+FMA and NEON, so a kernel
 * is written once (an .inc file in platforms/simd/) and compiled per ISA by a file that
 * defines VEC_ISA_AVX512, VEC_ISA_AVX2 or VEC_ISA_NEON first (the _avx512.c, _avx2.c and
 * _neon.c files of platforms/x86/ and platforms/arm/; only those get the ISA's flags). VEC_FN(name) gives the per-ISA symbol,
 * name__avx512 and so on, as XNNPACK names its microkernels.
 *
 *   vf           a vector of VF_N floats
 *   vf_loadn/vf_storen   the first n < VF_N lanes (others read as 0 / left untouched)
 *   vf_even      the even-indexed floats of the 2 * VF_N at p (stride-2 access)
 *   vf_exp       e^x within 2 ulp on [-87, 88], clamped outside; NaN stays NaN
 *   vf_transpose a VF_N x VF_N block: dst[j * dld + i] = src[i * sld + j]
 *   vf_store_interleave4 / vf_load_deinterleave4   p[4 i + j] = {a, b, c, d}[j][i], 4 VF_N floats */
#ifndef CRUN_PLATFORMS_SIMD_VEC_H
#define CRUN_PLATFORMS_SIMD_VEC_H

#include <stdint.h>
#include <string.h>

#if defined(VEC_ISA_AVX512) || defined(VEC_ISA_AVX2)
#include <immintrin.h>
/* dst[j * dld + i] = src[i * sld + j] for i, j < 8 (AVX-512 builds include AVX2). */
static inline void vec_transpose8(const float *src, int64_t sld, float *dst, int64_t dld)
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(src + i * sld);
    for (int i = 0; i < 8; i += 2) { /* pairs of rows interleaved: (i, i+1) per column */
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) { /* four rows per column, in each 128-bit half */
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; j++) { /* halves joined: rows 0-3 and 4-7 of columns j and j + 4 */
        _mm256_storeu_ps(dst + j * dld, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
        _mm256_storeu_ps(dst + (j + 4) * dld, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
    }
}

/* p[4 i + 0..3] = a[i], b[i], c[i], d[i] for i < 8. */
static inline void vec_store_interleave4_8(float *p, __m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b); /* a0 b0 a1 b1 | a4 b4 a5 b5 ... */
    __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)); /* a0 b0 c0 d0 | a4 b4 c4 d4 */
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(p, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
    _mm256_storeu_ps(p + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(p + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
}

/* The inverse: a[i], b[i], c[i], d[i] = p[4 i + 0..3] for i < 8. */
static inline void vec_load_deinterleave4_8(const float *p, __m256 *a, __m256 *b, __m256 *c, __m256 *d)
{
    __m256 r0 = _mm256_loadu_ps(p), r1 = _mm256_loadu_ps(p + 8), r2 = _mm256_loadu_ps(p + 16);
    __m256 r3 = _mm256_loadu_ps(p + 24);
    __m256 m0 = _mm256_permute2f128_ps(r0, r2, 0x20), m1 = _mm256_permute2f128_ps(r0, r2, 0x31); /* quads 0|4, 1|5 */
    __m256 m2 = _mm256_permute2f128_ps(r1, r3, 0x20), m3 = _mm256_permute2f128_ps(r1, r3, 0x31); /* quads 2|6, 3|7 */
    __m256 t0 = _mm256_unpacklo_ps(m0, m1), t1 = _mm256_unpackhi_ps(m0, m1); /* a0 a1 b0 b1, c0 c1 d0 d1 */
    __m256 t2 = _mm256_unpacklo_ps(m2, m3), t3 = _mm256_unpackhi_ps(m2, m3);
    *a = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    *b = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    *c = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    *d = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
}
#endif

#if defined(VEC_ISA_AVX512)
#include <immintrin.h>
#define VEC_FN(name) name##__avx512
#define VF_N 16
typedef __m512 vf;
typedef __m512i vi;
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_loadn(const float *p, int n) { return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p); }
static inline void vf_storen(float *p, vf v, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
/* 1/a to about 1 ulp: the 14-bit estimate and one Newton step (a division costs far more). */
static inline vf vf_recip(vf a)
{
    __m512 r = _mm512_rcp14_ps(a);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(1.0f)), r);
}
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vf_round(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vi vf_to_vi(vf a) { return _mm512_cvtps_epi32(a); }
static inline vf vi_to_vf(vi a) { return _mm512_cvtepi32_ps(a); }
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_load(const int32_t *p) { return _mm512_loadu_si512(p); }
static inline void vi_store(int32_t *p, vi v) { _mm512_storeu_si512(p, v); }
static inline vf vf_pow2i(vi n) /* 2^n for integer n in [-126, 127] */
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
}
/* Lanes where x >= 0 take a, others b. */
static inline vf vf_select_nonneg(vf x, vf a, vf b)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), b, a);
}
/* p[0], p[2], ..., p[2 * VF_N - 2]. */
static inline vf vf_even(const float *p)
{
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), idx, _mm512_loadu_ps(p + 16));
}
/* Lanes where a < b take t, others f (NaN compares false). */
static inline vf vf_blend_lt(vf a, vf b, vf t, vf f)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t);
}
static inline float vf_hsum(vf a) { return _mm512_reduce_add_ps(a); }
static inline float vf_hmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline void vf_store_interleave4(float *p, vf a, vf b, vf c, vf d)
{
#define VEC_HALF(v, h) _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), h))
    vec_store_interleave4_8(p, _mm512_castps512_ps256(a), _mm512_castps512_ps256(b), _mm512_castps512_ps256(c),
                            _mm512_castps512_ps256(d));
    vec_store_interleave4_8(p + 32, VEC_HALF(a, 1), VEC_HALF(b, 1), VEC_HALF(c, 1), VEC_HALF(d, 1));
#undef VEC_HALF
}
static inline void vf_load_deinterleave4(const float *p, vf *a, vf *b, vf *c, vf *d)
{
    __m256 a0, b0, c0, d0, a1, b1, c1, d1;
    vec_load_deinterleave4_8(p, &a0, &b0, &c0, &d0);
    vec_load_deinterleave4_8(p + 32, &a1, &b1, &c1, &d1);
#define VEC_JOIN(lo, hi) \
    _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1))
    *a = VEC_JOIN(a0, a1), *b = VEC_JOIN(b0, b1), *c = VEC_JOIN(c0, c1), *d = VEC_JOIN(d0, d1);
#undef VEC_JOIN
}
/* The VF_N x VF_N block transposed, as four 8 x 8 quarters (the off-diagonal ones swap). */
static inline void vf_transpose(const float *src, int64_t sld, float *dst, int64_t dld)
{
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 16; j += 8)
            vec_transpose8(src + i * sld + j, sld, dst + j * dld + i, dld);
}

#elif defined(VEC_ISA_AVX2)
#include <immintrin.h>
#define VEC_FN(name) name##__avx2
#define VF_N 8
typedef __m256 vf;
typedef __m256i vi;
static inline __m256i vec_mask8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_loadn(const float *p, int n) { return _mm256_maskload_ps(p, vec_mask8(n)); }
static inline void vf_storen(float *p, vf v, int n) { _mm256_maskstore_ps(p, vec_mask8(n), v); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
/* 1/a to about 1 ulp: the 12-bit estimate and one Newton step. */
static inline vf vf_recip(vf a)
{
    __m256 r = _mm256_rcp_ps(a);
    return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(a, r, _mm256_set1_ps(1.0f)), r);
}
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vf_round(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vi vf_to_vi(vf a) { return _mm256_cvtps_epi32(a); }
static inline vf vi_to_vf(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vi vi_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi vi_load(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void vi_store(int32_t *p, vi v) { _mm256_storeu_si256((__m256i *)p, v); }
static inline vf vf_pow2i(vi n)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}
static inline vf vf_select_nonneg(vf x, vf a, vf b)
{
    return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
}
static inline vf vf_blend_lt(vf a, vf b, vf t, vf f) { return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
static inline vf vf_even(const float *p)
{
    __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
static inline float vf_hsum(vf a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
static inline float vf_hmax(vf a)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
static inline void vf_transpose(const float *src, int64_t sld, float *dst, int64_t dld)
{
    vec_transpose8(src, sld, dst, dld);
}
static inline void vf_store_interleave4(float *p, vf a, vf b, vf c, vf d) { vec_store_interleave4_8(p, a, b, c, d); }
static inline void vf_load_deinterleave4(const float *p, vf *a, vf *b, vf *c, vf *d)
{
    vec_load_deinterleave4_8(p, a, b, c, d);
}

#elif defined(VEC_ISA_NEON)
#include <arm_neon.h>
#define VEC_FN(name) name##__neon
#define VF_N 4
typedef float32x4_t vf;
typedef int32x4_t vi;
static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline vf vf_loadn(const float *p, int n)
{
    float t[4] = {0, 0, 0, 0};
    memcpy(t, p, (size_t)n * sizeof *t);
    return vld1q_f32(t);
}
static inline void vf_storen(float *p, vf v, int n)
{
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)n * sizeof *t);
}
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_recip(vf a) { return vdivq_f32(vdupq_n_f32(1.0f), a); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }
static inline vf vf_min(vf a, vf b) { return vminq_f32(a, b); }
static inline vf vf_round(vf a) { return vrndnq_f32(a); }
static inline vi vf_to_vi(vf a) { return vcvtnq_s32_f32(a); }
static inline vf vi_to_vf(vi a) { return vcvtq_f32_s32(a); }
static inline vi vi_add(vi a, vi b) { return vaddq_s32(a, b); }
static inline vi vi_load(const int32_t *p) { return vld1q_s32(p); }
static inline void vi_store(int32_t *p, vi v) { vst1q_s32(p, v); }
static inline vf vf_pow2i(vi n) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n, vdupq_n_s32(127)), 23)); }
static inline vf vf_select_nonneg(vf x, vf a, vf b) { return vbslq_f32(vcgeq_f32(x, vdupq_n_f32(0.0f)), a, b); }
static inline vf vf_even(const float *p) { return vld2q_f32(p).val[0]; }
static inline vf vf_blend_lt(vf a, vf b, vf t, vf f) { return vbslq_f32(vcltq_f32(a, b), t, f); }
static inline float vf_hsum(vf a) { return vaddvq_f32(a); }
static inline float vf_hmax(vf a) { return vmaxvq_f32(a); }
static inline void vf_store_interleave4(float *p, vf a, vf b, vf c, vf d)
{
    float32x4x4_t v = {{a, b, c, d}};
    vst4q_f32(p, v);
}
static inline void vf_load_deinterleave4(const float *p, vf *a, vf *b, vf *c, vf *d)
{
    float32x4x4_t v = vld4q_f32(p);
    *a = v.val[0], *b = v.val[1], *c = v.val[2], *d = v.val[3];
}
static inline void vf_transpose(const float *src, int64_t sld, float *dst, int64_t dld)
{
    float32x4x2_t a = vtrnq_f32(vld1q_f32(src), vld1q_f32(src + sld)); /* rows 0, 1 by even / odd column */
    float32x4x2_t b = vtrnq_f32(vld1q_f32(src + 2 * sld), vld1q_f32(src + 3 * sld));
    vst1q_f32(dst, vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0])));
    vst1q_f32(dst + dld, vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1])));
    vst1q_f32(dst + 2 * dld, vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0])));
    vst1q_f32(dst + 3 * dld, vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1])));
}

#else
#error "define VEC_ISA_AVX512, VEC_ISA_AVX2 or VEC_ISA_NEON before including vec.h"
#endif

/* e^x: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for exactness), e^r by a degree-6
 * polynomial (Taylor coefficients; error below 2 ulp on that range), times 2^n. Inputs
 * are clamped to [-87.3, 88.3] so 2^n stays a normal float. */
static inline vf vf_exp(vf x)
{
    /* Constant first: x86 max/min return the second operand when one is NaN, so NaN stays. */
    x = vf_min(vf_set1(88.3f), vf_max(vf_set1(-87.3f), x));
    vf n = vf_round(vf_mul(x, vf_set1(1.44269504088896341f)));
    vf r = vf_fma(n, vf_set1(-0.693145751953125f), x);
    r = vf_fma(n, vf_set1(-1.428606765330187045e-06f), r);
    vf p = vf_set1(1.0f / 720.0f);
    p = vf_fma(p, r, vf_set1(1.0f / 120.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 24.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 6.0f));
    p = vf_fma(p, r, vf_set1(0.5f));
    p = vf_fma(p, r, vf_set1(1.0f));
    p = vf_fma(p, r, vf_set1(1.0f));
    return vf_mul(p, vf_pow2i(vf_to_vi(n)));
}

/* 1 / (1 + e^-x) with one reciprocal: x >= 0 gives r = 1/(1+e), else e/(1+e) = e r,
 * where e = e^-|x| never overflows. */
static inline vf vf_sigmoid(vf x)
{
    vf ax = vf_max(x, vf_sub(vf_zero(), x));
    vf e = vf_exp(vf_sub(vf_zero(), ax));
    vf r = vf_recip(vf_add(vf_set1(1.0f), e)); /* 1 + e is in [1, 2]: the estimate is safe */
    return vf_select_nonneg(x, r, vf_mul(e, r));
}

/* erf x: below |x| = 0.9 its Taylor series to x^19 (truncation < 2e-9), above it
 * Abramowitz & Stegun 7.1.26, 1 - t P(t) e^(-x^2) with t = 1 / (1 + 0.3275911 |x|)
 * (absolute error < 1.5e-7 where erf >= 0.79), the sign put back. */
static inline vf vf_erf(vf x)
{
    vf ax = vf_max(x, vf_sub(vf_zero(), x)), x2 = vf_mul(x, x);
    static const float taylor[10] = {-1.0f / 6894720, 1.0f / 685440, -1.0f / 75600, 1.0f / 9360, -1.0f / 1320,
                                     1.0f / 216,      -1.0f / 42,     1.0f / 10,     -1.0f / 3,   1.0f};
    vf p = vf_set1(taylor[0]);
    for (int i = 1; i < 10; i++)
        p = vf_fma(p, x2, vf_set1(taylor[i]));
    vf small = vf_mul(vf_mul(x, vf_set1(1.12837916709551257f)), p);
    /* |x| capped so 1 + p|x| stays finite (the reciprocal's Newton step would make inf NaN) */
    vf t = vf_recip(vf_fma(vf_min(vf_set1(1e6f), ax), vf_set1(0.3275911f), vf_set1(1.0f)));
    vf q = vf_set1(1.061405429f);
    q = vf_fma(q, t, vf_set1(-1.453152027f));
    q = vf_fma(q, t, vf_set1(1.421413741f));
    q = vf_fma(q, t, vf_set1(-0.284496736f));
    q = vf_fma(q, t, vf_set1(0.254829592f));
    vf big = vf_sub(vf_set1(1.0f), vf_mul(vf_mul(q, t), vf_exp(vf_sub(vf_zero(), x2))));
    big = vf_select_nonneg(x, big, vf_sub(vf_zero(), big));
    return vf_blend_lt(ax, vf_set1(0.9f), small, big);
}

/* tanh x = sign(x) (1 - e^-2|x|) / (1 + e^-2|x|). */
static inline vf vf_tanh(vf x)
{
    vf ax = vf_max(x, vf_sub(vf_zero(), x));
    vf e = vf_exp(vf_mul(ax, vf_set1(-2.0f)));
    vf t = vf_mul(vf_sub(vf_set1(1.0f), e), vf_recip(vf_add(vf_set1(1.0f), e))); /* 1 + e in [1, 2] */
    return vf_select_nonneg(x, t, vf_sub(vf_zero(), t));
}

#endif
