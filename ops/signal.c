/* signal.c - DFT, STFT, HannWindow, HammingWindow, BlackmanWindow, MelWeightMatrix
 * (opset 17).
 *
 * Transforms compute in double: radix-2 FFT for power-of-two lengths, Bluestein's chirp-z
 * (through a power-of-two FFT) for other long lengths, a direct sum for short ones. Twiddle
 * angles are reduced to an integer fraction of a turn before cos/sin, so bins that should be
 * exactly zero come out at rounding level. Lines are split across threads, each with its own
 * scratch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/threadpool.h"

#define SIG_PI 3.14159265358979323846
#define DIRECT_MAX 64 /* lengths up to this use the direct sum */

/* ================= the transform (complex values interleaved re, im) ================= */

static bool is_pow2(int64_t n)
{
    return n > 0 && (n & (n - 1)) == 0;
}

static int64_t next_pow2(int64_t n)
{
    int64_t m = 1;
    while (m < n)
        m <<= 1;
    return m;
}

/* Doubles of scratch fft_any needs for length n (besides the data). */
static int64_t fft_scratch(int64_t n)
{
    if (n <= 1)
        return 0;
    if (is_pow2(n))
        return n;
    if (n <= DIRECT_MAX)
        return 2 * n;
    int64_t m = next_pow2(2 * n - 1);
    return m + 4 * m + 2 * n;
}

/* exp(sign * 2 pi i * num / den) with num reduced modulo den first. */
static void twiddle(int64_t num, int64_t den, double sign, double *re, double *im)
{
    double a = 2.0 * SIG_PI * (double)(num % den) / (double)den;
    *re = cos(a);
    *im = sign * sin(a);
}

/* In place, n a power of two; tw holds n/2 twiddles exp(sign 2 pi i k / n). */
static void fft_pow2(double *z, int64_t n, const double *tw)
{
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j |= bit;
        if (i < j) {
            double tr = z[2 * i], ti = z[2 * i + 1];
            z[2 * i] = z[2 * j], z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = tr, z[2 * j + 1] = ti;
        }
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
        int64_t half = len / 2, step = n / len;
        for (int64_t s = 0; s < n; s += len)
            for (int64_t k = 0; k < half; k++) {
                double wr = tw[2 * k * step], wi = tw[2 * k * step + 1];
                double *a = z + 2 * (s + k), *b = z + 2 * (s + k + half);
                double br = b[0] * wr - b[1] * wi, bi = b[0] * wi + b[1] * wr;
                b[0] = a[0] - br, b[1] = a[1] - bi;
                a[0] += br, a[1] += bi;
            }
    }
}

static void pow2_twiddles(int64_t n, double sign, double *tw)
{
    for (int64_t k = 0; k < n / 2; k++)
        twiddle(k, n, sign, &tw[2 * k], &tw[2 * k + 1]);
}

/* Unnormalised DFT of z (length n) in place: sum_j z[j] exp(sign 2 pi i j k / n). */
static void fft_any(double *z, int64_t n, bool inverse, double *scratch)
{
    double sign = inverse ? 1.0 : -1.0;
    if (n <= 1)
        return;
    if (is_pow2(n)) {
        pow2_twiddles(n, sign, scratch);
        fft_pow2(z, n, scratch);
        return;
    }
    if (n <= DIRECT_MAX) {
        for (int64_t k = 0; k < n; k++) {
            double sr = 0, si = 0;
            for (int64_t j = 0; j < n; j++) {
                double wr, wi;
                twiddle(j * k, n, sign, &wr, &wi);
                sr += z[2 * j] * wr - z[2 * j + 1] * wi;
                si += z[2 * j] * wi + z[2 * j + 1] * wr;
            }
            scratch[2 * k] = sr, scratch[2 * k + 1] = si;
        }
        memcpy(z, scratch, (size_t)(2 * n) * sizeof(double));
        return;
    }
    /* Bluestein: jk = (j^2 + k^2 - (k-j)^2) / 2 turns the DFT into a convolution. */
    int64_t m = next_pow2(2 * n - 1);
    double *tw = scratch, *a = tw + m, *b = a + 2 * m, *w = b + 2 * m;
    for (int64_t k = 0; k < n; k++) /* w_k = exp(sign pi i k^2 / n) = exp(sign 2 pi i k^2 / 2n) */
        twiddle((k * k) % (2 * n), 2 * n, sign, &w[2 * k], &w[2 * k + 1]);
    memset(a, 0, (size_t)(4 * m) * sizeof(double));
    for (int64_t k = 0; k < n; k++) {
        a[2 * k] = z[2 * k] * w[2 * k] - z[2 * k + 1] * w[2 * k + 1];
        a[2 * k + 1] = z[2 * k] * w[2 * k + 1] + z[2 * k + 1] * w[2 * k];
        b[2 * k] = w[2 * k], b[2 * k + 1] = -w[2 * k + 1];
        if (k) {
            b[2 * (m - k)] = w[2 * k];
            b[2 * (m - k) + 1] = -w[2 * k + 1];
        }
    }
    pow2_twiddles(m, -1.0, tw);
    fft_pow2(a, m, tw);
    fft_pow2(b, m, tw);
    for (int64_t k = 0; k < m; k++) {
        double r = a[2 * k] * b[2 * k] - a[2 * k + 1] * b[2 * k + 1];
        double i = a[2 * k] * b[2 * k + 1] + a[2 * k + 1] * b[2 * k];
        a[2 * k] = r, a[2 * k + 1] = -i; /* conjugate: the inverse as a forward transform */
    }
    fft_pow2(a, m, tw);
    for (int64_t k = 0; k < n; k++) {
        double cr = a[2 * k] / (double)m, ci = -a[2 * k + 1] / (double)m;
        z[2 * k] = cr * w[2 * k] - ci * w[2 * k + 1];
        z[2 * k + 1] = cr * w[2 * k + 1] + ci * w[2 * k];
    }
}

/* Element i of a float tensor as double, with float32 read directly. */
static inline double load_at(const Tensor *t, int64_t i)
{
    return t->dtype == CRUN_DTYPE_FLOAT ? (double)((const float *)t->data)[i] : tensor_get_double(t, i);
}

static inline void store_at(Tensor *t, int64_t i, double v)
{
    if (t->dtype == CRUN_DTYPE_FLOAT)
        ((float *)t->data)[i] = (float)v;
    else
        tensor_set_double(t, i, v);
}

/* Reads a scalar (or 1-element) integer input; false when it is not one. */
static bool scalar_int(const Tensor *t, int64_t *v)
{
    if (!t || (t->dtype != CRUN_DTYPE_INT32 && t->dtype != CRUN_DTYPE_INT64) || tensor_numel(t) != 1)
        return false;
    if (t->data)
        *v = tensor_get_int(t, 0);
    return true;
}

/* ================= DFT ================= */

typedef struct DftParams {
    int64_t axis, inverse, onesided;
} DftParams;

static crun_status parse_dft(Node *n, Diag *d)
{
    DftParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "axis", 1, &p->axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "inverse", 0, &p->inverse, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "onesided", 0, &p->onesided, d);
    if (st == CRUN_OK && p->inverse && p->onesided)
        return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "onesided with inverse is not supported");
    return st;
}

/* The transformed axis (negative counts from the back), or -1 when out of range. */
static int dft_axis(const DftParams *p, int rank)
{
    int64_t a = p->axis < 0 ? p->axis + rank : p->axis;
    return a >= 0 && a < rank - 1 ? (int)a : -1;
}

static crun_status dft_infer(InferCtx *c)
{
    const DftParams *p = c->params;
    const Tensor *x = c->in[0], *len = c->n_in > 1 ? c->in[1] : NULL;
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, x->rank >= 2 && (x->dims[x->rank - 1] == 1 || x->dims[x->rank - 1] == 2),
               "input must have rank >= 2 and a last dim of 1 (real) or 2 (complex)");
    int axis = dft_axis(p, x->rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range for rank %d", (long long)p->axis, x->rank);
    NODE_CHECK(c, !p->onesided || x->dims[x->rank - 1] == 1, "onesided needs a real input");
    int64_t n = x->dims[axis];
    if (len) {
        NODE_CHECK(c, scalar_int(len, &n), "dft_length must be an int32 or int64 scalar");
        if (!len->data) {
            c->needs_data = true;
            return CRUN_OK;
        }
        NODE_CHECK(c, n >= 1, "dft_length must be >= 1 (got %lld)", (long long)n);
    }
    int64_t dims[CRUN_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = p->onesided ? n / 2 + 1 : n;
    dims[x->rank - 1] = 2;
    out_set(c->out[0], x->dtype, x->rank, dims);
    return CRUN_OK;
}

/* One batch of lines: the line's input elements are in[base + j*stride*cin (+1)], j < n_in. */
typedef struct DftJob {
    const Tensor *x, *win; /* win: STFT window (or NULL) */
    Tensor *y;
    int64_t n, n_in, n_out;                        /* transform length, input samples used, bins kept */
    int64_t inner, in_axis_dim, out_axis_dim, cin; /* cin: 1 real, 2 complex */
    int64_t frame_step;                            /* STFT: signal samples between frames (lines are frames) */
    int64_t frames;
    bool inverse;
    double *ws;
    int64_t ws_per_thread;
} DftJob;

static void dft_line(const DftJob *j, double *z, double *scratch, int64_t in_base, int64_t in_stride, int64_t out_base,
                     int64_t out_stride)
{
    memset(z, 0, (size_t)(2 * j->n) * sizeof(double));
    for (int64_t k = 0; k < j->n_in; k++) {
        int64_t at = (in_base + k * in_stride) * j->cin;
        double w = j->win ? load_at(j->win, k) : 1.0;
        z[2 * k] = load_at(j->x, at) * w;
        if (j->cin == 2)
            z[2 * k + 1] = load_at(j->x, at + 1) * w;
    }
    fft_any(z, j->n, j->inverse, scratch);
    double scale = j->inverse ? 1.0 / (double)j->n : 1.0;
    for (int64_t k = 0; k < j->n_out; k++) {
        int64_t at = (out_base + k * out_stride) * 2;
        store_at(j->y, at, z[2 * k] * scale);
        store_at(j->y, at + 1, z[2 * k + 1] * scale);
    }
}

static void dft_task(void *ctx, int64_t t, int thread)
{
    const DftJob *j = ctx;
    double *z = j->ws + thread * j->ws_per_thread;
    int64_t outer = t / j->inner, in_ = t % j->inner;
    dft_line(j, z, z + 2 * j->n, outer * j->in_axis_dim * j->inner + in_, j->inner,
             outer * j->out_axis_dim * j->inner + in_, j->inner);
}

static int64_t per_thread_doubles(int64_t n)
{
    return align_up((size_t)(2 * n + fft_scratch(n)), 8);
}

static int64_t dft_length(const KernelCtx *k, int axis)
{
    int64_t n = k->in[0]->dims[axis];
    if (k->n_in > 1 && k->in[1])
        n = tensor_get_int(k->in[1], 0);
    return n;
}

static crun_status dft_prepare(PrepCtx *c)
{
    const DftParams *p = c->params;
    int axis = dft_axis(p, c->in[0]->rank);
    int64_t n = c->out[0]->dims[axis];
    if (p->onesided) /* the full length is the input's or dft_length */
        n = c->n_in > 1 && c->in[1] ? tensor_get_int(c->in[1], 0) : c->in[0]->dims[axis];
    c->ws_bytes = (size_t)per_thread_doubles(n) * sizeof(double) * (size_t)c->n_threads;
    return CRUN_OK;
}

static crun_status dft_run(KernelCtx *k)
{
    const DftParams *p = k->params;
    const Tensor *x = k->in[0];
    int axis = dft_axis(p, x->rank);
    int64_t n = dft_length(k, axis);
    DftJob j = {.x = x,
                .y = k->out[0],
                .n = n,
                .n_in = CRUN_MIN(n, x->dims[axis]),
                .n_out = k->out[0]->dims[axis],
                .inner = shape_numel(x->dims + axis + 1, x->rank - axis - 2),
                .in_axis_dim = x->dims[axis],
                .out_axis_dim = k->out[0]->dims[axis],
                .cin = x->dims[x->rank - 1],
                .inverse = p->inverse != 0,
                .ws = k->ws,
                .ws_per_thread = per_thread_doubles(n)};
    int64_t outer = shape_numel(x->dims, axis);
    pool_for(k->pool, outer * j.inner, dft_task, &j);
    return CRUN_OK;
}

static int64_t dft_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return 5 * tensor_numel(out[0]) * 8;
}

static const KernelVariant dft_kernels[] = {{"dft_ref", ISA_SCALAR, NULL, dft_prepare, dft_run, NULL}, {0}};
const OpDesc op_DFT = {"", "DFT", 1, 2, 1, 1, 0, parse_dft, dft_infer, dft_flops, dft_kernels};

/* ================= STFT ================= */

typedef struct StftParams {
    int64_t onesided;
} StftParams;

static crun_status parse_stft(Node *n, Diag *d)
{
    StftParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    return attr_get_int(n, "onesided", 1, &p->onesided, d);
}

/* Frame length and count from the inputs; a message when they do not fit. */
static const char *stft_dims(const Tensor *const *in, int n_in, int64_t *n_fft, int64_t *frames, int64_t *step)
{
    const Tensor *x = in[0], *win = n_in > 2 ? in[2] : NULL, *len = n_in > 3 ? in[3] : NULL;
    *n_fft = -1;
    *frames = 0;
    *step = 0;
    if (!scalar_int(in[1], step))
        return "frame_step must be an int32 or int64 scalar";
    if (len && !scalar_int(len, n_fft))
        return "frame_length must be an int32 or int64 scalar";
    if (win) {
        if (win->rank != 1)
            return "window must be 1-D";
        if (len && *n_fft != win->dims[0])
            return "frame_length differs from the window's length";
        *n_fft = win->dims[0];
    }
    if (!win && !len)
        return "one of window and frame_length is required";
    if (*n_fft < 1)
        return "the frame length must be >= 1";
    if (*step < 1)
        return "frame_step must be >= 1";
    if (*n_fft > x->dims[1])
        return "the frame is longer than the signal";
    *frames = (x->dims[1] - *n_fft) / *step + 1;
    return NULL;
}

static crun_status stft_infer(InferCtx *c)
{
    const StftParams *p = c->params;
    const Tensor *x = c->in[0], *win = c->n_in > 2 ? c->in[2] : NULL, *len = c->n_in > 3 ? c->in[3] : NULL;
    NODE_CHECK(c, dtype_is_float(x->dtype), "type %s is not supported", dtype_name(x->dtype));
    NODE_CHECK(c, x->rank == 3 && (x->dims[2] == 1 || x->dims[2] == 2),
               "signal must be [batch, length, 1] (real) or [batch, length, 2] (complex)");
    NODE_CHECK(c, !p->onesided || x->dims[2] == 1, "onesided needs a real signal");
    if (win)
        NODE_CHECK(c, win->dtype == x->dtype, "window must have the signal's type");
    if (!c->in[1]->data || (len && !len->data)) {
        c->needs_data = true;
        return CRUN_OK;
    }
    int64_t n_fft = 0, frames = 0, step = 0;
    const char *err = stft_dims(c->in, c->n_in, &n_fft, &frames, &step);
    NODE_CHECK(c, !err, "%s", err);
    int64_t dims[4] = {x->dims[0], frames, p->onesided ? n_fft / 2 + 1 : n_fft, 2};
    out_set(c->out[0], x->dtype, 4, dims);
    return CRUN_OK;
}

static void stft_task(void *ctx, int64_t t, int thread)
{
    const DftJob *j = ctx;
    double *z = j->ws + thread * j->ws_per_thread;
    int64_t b = t / j->frames, f = t % j->frames;
    dft_line(j, z, z + 2 * j->n, b * j->in_axis_dim + f * j->frame_step, 1, t * j->n_out, 1);
}

static crun_status stft_prepare(PrepCtx *c)
{
    int64_t n_fft = 0, frames = 0, step = 0;
    const char *err = stft_dims(c->in, c->n_in, &n_fft, &frames, &step);
    assert(!err);
    (void)err;
    c->ws_bytes = (size_t)per_thread_doubles(n_fft) * sizeof(double) * (size_t)c->n_threads;
    return CRUN_OK;
}

static crun_status stft_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    int64_t n_fft = 0, frames = 0, step = 0;
    stft_dims(k->in, k->n_in, &n_fft, &frames, &step);
    DftJob j = {.x = x,
                .win = k->n_in > 2 ? k->in[2] : NULL,
                .y = k->out[0],
                .n = n_fft,
                .n_in = n_fft,
                .n_out = k->out[0]->dims[2],
                .in_axis_dim = x->dims[1],
                .cin = x->dims[2],
                .frame_step = step,
                .frames = frames,
                .ws = k->ws,
                .ws_per_thread = per_thread_doubles(n_fft)};
    pool_for(k->pool, x->dims[0] * frames, stft_task, &j);
    return CRUN_OK;
}

static const KernelVariant stft_kernels[] = {{"stft_ref", ISA_SCALAR, NULL, stft_prepare, stft_run, NULL}, {0}};
const OpDesc op_STFT = {"", "STFT", 2, 4, 1, 1, 0, parse_stft, stft_infer, dft_flops, stft_kernels};

/* ================= window functions ================= */

typedef struct WindowParams {
    int64_t periodic, dtype;
} WindowParams;

static crun_status parse_window(Node *n, Diag *d)
{
    WindowParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "periodic", 1, &p->periodic, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "output_datatype", CRUN_DTYPE_FLOAT, &p->dtype, d);
    if (st != CRUN_OK)
        return st;
    if (!dtype_is_valid((int)p->dtype) || !(dtype_is_float((crun_dtype)p->dtype) || dtype_is_int((crun_dtype)p->dtype)))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "output_datatype %lld is not a numeric type",
                         (long long)p->dtype);
    return CRUN_OK;
}

static crun_status window_infer(InferCtx *c)
{
    const WindowParams *p = c->params;
    int64_t size = 0;
    NODE_CHECK(c, scalar_int(c->in[0], &size), "size must be an int32 or int64 scalar");
    if (!c->in[0]->data) {
        c->needs_data = true;
        return CRUN_OK;
    }
    NODE_CHECK(c, size >= 0, "size must be >= 0 (got %lld)", (long long)size);
    out_set(c->out[0], (crun_dtype)p->dtype, 1, &size);
    return CRUN_OK;
}

/* Generalised cosine window: a0 - a1 cos(2 pi k / N) + a2 cos(4 pi k / N), N = size for a
 * periodic window, size - 1 for a symmetric one. */
static void cosine_window(KernelCtx *k, double a0, double a1, double a2)
{
    const WindowParams *p = k->params;
    Tensor *y = k->out[0];
    int64_t size = y->dims[0], den = p->periodic ? size : size - 1;
    for (int64_t i = 0; i < size; i++) {
        double v = 1.0;
        if (den > 0) {
            double c1, c2, s;
            twiddle(i, den, 1.0, &c1, &s);
            twiddle(2 * i, den, 1.0, &c2, &s);
            v = a0 - a1 * c1 + a2 * c2;
        }
        tensor_set_double(y, i, v);
    }
}

static crun_status hann_run(KernelCtx *k)
{
    cosine_window(k, 0.5, 0.5, 0.0);
    return CRUN_OK;
}
static crun_status hamming_run(KernelCtx *k)
{
    cosine_window(k, 25.0 / 46.0, 21.0 / 46.0, 0.0);
    return CRUN_OK;
}
static crun_status blackman_run(KernelCtx *k)
{
    cosine_window(k, 0.42, 0.5, 0.08);
    return CRUN_OK;
}

static int64_t window_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(out[0]) * 8;
}

static const KernelVariant hann_kernels[] = {{"hann_ref", ISA_SCALAR, NULL, NULL, hann_run, NULL}, {0}};
static const KernelVariant hamming_kernels[] = {{"hamming_ref", ISA_SCALAR, NULL, NULL, hamming_run, NULL}, {0}};
static const KernelVariant blackman_kernels[] = {{"blackman_ref", ISA_SCALAR, NULL, NULL, blackman_run, NULL}, {0}};
const OpDesc op_HannWindow = {"", "HannWindow", 1, 1, 1, 1, 0, parse_window, window_infer, window_flops, hann_kernels};
const OpDesc op_HammingWindow = {"",           "HammingWindow", 1, 1, 1, 1, 0, parse_window, window_infer,
                                 window_flops, hamming_kernels};
const OpDesc op_BlackmanWindow = {"",           "BlackmanWindow", 1, 1, 1, 1, 0, parse_window, window_infer,
                                  window_flops, blackman_kernels};

/* ================= MelWeightMatrix ================= */

static bool scalar_float(const Tensor *t)
{
    return t && dtype_is_float(t->dtype) && tensor_numel(t) == 1;
}

static crun_status mel_infer(InferCtx *c)
{
    const WindowParams *p = c->params; /* output_datatype only */
    int64_t bins = 0, dft = 0, rate = 0;
    NODE_CHECK(c, scalar_int(c->in[0], &bins) && scalar_int(c->in[1], &dft) && scalar_int(c->in[2], &rate),
               "num_mel_bins, dft_length and sample_rate must be int32 or int64 scalars");
    NODE_CHECK(c, scalar_float(c->in[3]) && scalar_float(c->in[4]),
               "lower_edge_hertz and upper_edge_hertz must be float scalars");
    if (!c->in[0]->data || !c->in[1]->data) {
        c->needs_data = true;
        return CRUN_OK;
    }
    NODE_CHECK(c, bins >= 1 && dft >= 1, "num_mel_bins and dft_length must be >= 1");
    int64_t dims[2] = {dft / 2 + 1, bins};
    out_set(c->out[0], (crun_dtype)p->dtype, 2, dims);
    return CRUN_OK;
}

static double hz_to_mel(double f)
{
    return 2595.0 * log10(1.0 + f / 700.0);
}
static double mel_to_hz(double m)
{
    return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
}

/* Triangular filters whose corners are the spectrogram bins of num_mel_bins + 2 points spread
 * evenly in mel over [lower, upper] (bin = floor((dft_length + 1) * f / sample_rate)). */
static crun_status mel_run(KernelCtx *k)
{
    Tensor *y = k->out[0];
    int64_t bins = tensor_get_int(k->in[0], 0), dft = tensor_get_int(k->in[1], 0);
    int64_t rate = tensor_get_int(k->in[2], 0), n_spec = dft / 2 + 1;
    double lo = tensor_get_double(k->in[3], 0), hi = tensor_get_double(k->in[4], 0);
    if (rate <= 0 || !(lo >= 0) || !(hi >= lo))
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME,
                         "need sample_rate > 0 and 0 <= lower_edge_hertz <= upper_edge_hertz");
    memset(y->data, 0, tensor_bytes(y));
    double mlo = hz_to_mel(lo), step = (hz_to_mel(hi) - mlo) / (double)(bins + 2);
    int64_t prev2 = 0, prev1 = 0;
    for (int64_t i = 0; i < bins + 2; i++) {
        double f = floor((double)(dft + 1) * mel_to_hz((double)i * step + mlo) / (double)rate);
        int64_t cur = double_to_i64_sat(f);
        if (i >= 2) {
            int64_t left = prev2, center = prev1, right = cur, m = i - 2;
#define SET(row, v)                                                                                                    \
    do {                                                                                                               \
        if ((row) >= 0 && (row) < n_spec)                                                                              \
            tensor_set_double(y, (row)*bins + m, (v));                                                                 \
    } while (0)
            if (center == left)
                SET(center, 1.0);
            else
                for (int64_t r = left; r <= CRUN_MIN(center, n_spec - 1); r++)
                    SET(r, (double)(r - left) / (double)(center - left));
            for (int64_t r = center; r < CRUN_MIN(right, n_spec); r++)
                SET(r, (double)(right - r) / (double)(right - center));
#undef SET
        }
        prev2 = prev1;
        prev1 = cur;
    }
    return CRUN_OK;
}

static const KernelVariant mel_kernels[] = {{"melweightmatrix_ref", ISA_SCALAR, NULL, NULL, mel_run, NULL}, {0}};
const OpDesc op_MelWeightMatrix = {"",        "MelWeightMatrix", 5,          5, 1, 1, 0, parse_window,
                                   mel_infer, window_flops,      mel_kernels};
