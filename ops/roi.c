/* roi.c - region ops: RoiAlign (opsets 10 and 16), MaxRoiPool (opset 1) and
 * NonMaxSuppression (opsets 10 and 11).
 *
 * RoiAlign follows the reference of ONNX and ONNX Runtime: bilinear samples on a regular
 * grid in each bin, averaged ("avg") or, for "max", the largest of the four weighted
 * corner terms of each sample. NonMaxSuppression's output length depends on the data, so
 * its infer runs the selection (needs_data until every input is known). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"
#include "runtime/threadpool.h"

static inline double load_at(const Tensor *t, int64_t i)
{
    return t->dtype == CRUN_DTYPE_FLOAT ? (double)((const float *)t->data)[i] : tensor_get_double(t, i);
}

/* ================= RoiAlign ================= */

#define ROI_GRID_MAX ((int64_t)1 << 20)

typedef struct RoiAlignParams {
    int64_t out_h, out_w, sampling_ratio;
    float spatial_scale;
    bool half_pixel, is_max;
} RoiAlignParams;

static crun_status parse_roialign(Node *n, Diag *d)
{
    RoiAlignParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    const char *mode = "avg", *ctm = n->opset >= 16 ? "half_pixel" : "output_half_pixel";
    crun_status st = attr_get_int(n, "output_height", 1, &p->out_h, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "output_width", 1, &p->out_w, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "sampling_ratio", 0, &p->sampling_ratio, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "spatial_scale", 1.0f, &p->spatial_scale, d);
    if (st == CRUN_OK)
        st = attr_get_string(n, "mode", "avg", &mode, d);
    if (st == CRUN_OK && n->opset >= 16)
        st = attr_get_string(n, "coordinate_transformation_mode", "half_pixel", &ctm, d);
    if (st != CRUN_OK)
        return st;
    if (p->out_h < 1 || p->out_w < 1 || p->sampling_ratio < 0 || p->sampling_ratio > ROI_GRID_MAX)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL,
                         "output_height/width must be >= 1, sampling_ratio in [0, %lld]", (long long)ROI_GRID_MAX);
    if (strcmp(mode, "avg") && strcmp(mode, "max"))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "mode '%s' is not valid", mode);
    if (strcmp(ctm, "half_pixel") && strcmp(ctm, "output_half_pixel"))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "coordinate_transformation_mode '%s' is not valid", ctm);
    p->is_max = strcmp(mode, "max") == 0;
    p->half_pixel = strcmp(ctm, "half_pixel") == 0;
    return CRUN_OK;
}

static crun_status roialign_infer(InferCtx *c)
{
    const RoiAlignParams *p = c->params;
    const Tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    NODE_CHECK(c, dtype_is_float(x->dtype) && x->rank == 4, "X must be a 4-D float tensor");
    NODE_CHECK(c, rois->dtype == x->dtype && rois->rank == 2 && rois->dims[1] == 4,
               "rois must be [num_rois, 4] of X's type");
    NODE_CHECK(c,
               (bi->dtype == CRUN_DTYPE_INT64 || bi->dtype == CRUN_DTYPE_INT32) && bi->rank == 1 &&
                   bi->dims[0] == rois->dims[0],
               "batch_indices must be an int64 tensor of num_rois values");
    int64_t dims[4] = {rois->dims[0], x->dims[1], p->out_h, p->out_w};
    out_set(c->out[0], x->dtype, 4, dims);
    return CRUN_OK;
}

typedef struct RoiJob {
    const RoiAlignParams *p;
    const Tensor *x, *rois;
    Tensor *y;
    const int64_t *batch; /* validated batch index per roi (in ws) */
} RoiJob;

/* Bilinear sample of plane at (y, x) as the four weighted corner terms (all 0 outside). */
static void bilinear_terms(const Tensor *x, int64_t base, int64_t H, int64_t W, double y, double xx, double t[4])
{
    t[0] = t[1] = t[2] = t[3] = 0.0;
    if (!(y >= -1.0 && y <= (double)H && xx >= -1.0 && xx <= (double)W)) /* outside, or NaN */
        return;
    y = y < 0 ? 0 : y;
    xx = xx < 0 ? 0 : xx;
    int64_t y0 = (int64_t)y, x0 = (int64_t)xx, y1, x1;
    if (y0 >= H - 1) {
        y0 = y1 = H - 1;
        y = (double)y0;
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= W - 1) {
        x0 = x1 = W - 1;
        xx = (double)x0;
    } else {
        x1 = x0 + 1;
    }
    double ly = y - (double)y0, lx = xx - (double)x0, hy = 1.0 - ly, hx = 1.0 - lx;
    t[0] = hy * hx * load_at(x, base + y0 * W + x0);
    t[1] = hy * lx * load_at(x, base + y0 * W + x1);
    t[2] = ly * hx * load_at(x, base + y1 * W + x0);
    t[3] = ly * lx * load_at(x, base + y1 * W + x1);
}

static void roialign_task(void *ctx, int64_t t, int thread)
{
    const RoiJob *j = ctx;
    const RoiAlignParams *p = j->p;
    int64_t C = j->x->dims[1], H = j->x->dims[2], W = j->x->dims[3];
    int64_t r = t / C, ch = t % C;
    double off = p->half_pixel ? 0.5 : 0.0, sc = p->spatial_scale;
    double x0 = load_at(j->rois, r * 4) * sc - off, y0 = load_at(j->rois, r * 4 + 1) * sc - off;
    double x1 = load_at(j->rois, r * 4 + 2) * sc - off, y1 = load_at(j->rois, r * 4 + 3) * sc - off;
    double rw = x1 - x0, rh = y1 - y0;
    if (!p->half_pixel) { /* malformed rois are forced to 1x1 */
        rw = rw > 1.0 ? rw : 1.0;
        rh = rh > 1.0 ? rh : 1.0;
    }
    double bh = rh / (double)p->out_h, bw = rw / (double)p->out_w;
    /* The adaptive grid is capped (at ROI_GRID_MAX per axis) so that absurd or non-finite
     * coordinates cannot overflow the sample count. */
    int64_t gh = p->sampling_ratio > 0 ? p->sampling_ratio : double_to_i64_sat(ceil(rh / (double)p->out_h));
    int64_t gw = p->sampling_ratio > 0 ? p->sampling_ratio : double_to_i64_sat(ceil(rw / (double)p->out_w));
    gh = CRUN_MAX((int64_t)0, CRUN_MIN(gh, ROI_GRID_MAX));
    gw = CRUN_MAX((int64_t)0, CRUN_MIN(gw, ROI_GRID_MAX));
    double count = (double)CRUN_MAX(gh * gw, (int64_t)1);
    int64_t base = (j->batch[r] * C + ch) * H * W;
    int64_t yo = (r * C + ch) * p->out_h * p->out_w;
    for (int64_t ph = 0; ph < p->out_h; ph++)
        for (int64_t pw = 0; pw < p->out_w; pw++) {
            double acc = 0.0;
            bool first = true;
            for (int64_t iy = 0; iy < gh; iy++) {
                double yy = y0 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                for (int64_t ix = 0; ix < gw; ix++) {
                    double xx = x0 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                    double tm[4];
                    bilinear_terms(j->x, base, H, W, yy, xx, tm);
                    if (!p->is_max) {
                        acc += tm[0] + tm[1] + tm[2] + tm[3];
                        continue;
                    }
                    double v = fmax(fmax(tm[0], tm[1]), fmax(tm[2], tm[3]));
                    acc = first ? v : fmax(acc, v);
                    first = false;
                }
            }
            tensor_set_double(j->y, yo + ph * p->out_w + pw, p->is_max ? acc : acc / count);
        }
}

static crun_status roialign_prepare(PrepCtx *c)
{
    c->ws_bytes = (size_t)c->in[1]->dims[0] * sizeof(int64_t);
    return CRUN_OK;
}

static crun_status roialign_run(KernelCtx *k)
{
    const Tensor *x = k->in[0], *rois = k->in[1], *bi = k->in[2];
    int64_t *batch = k->ws, R = rois->dims[0];
    for (int64_t r = 0; r < R; r++) {
        batch[r] = tensor_get_int(bi, r);
        if (batch[r] < 0 || batch[r] >= x->dims[0])
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "batch_indices[%lld] = %lld is outside [0, %lld)",
                             (long long)r, (long long)batch[r], (long long)x->dims[0]);
    }
    if (x->dims[2] == 0 || x->dims[3] == 0) {
        memset(k->out[0]->data, 0, tensor_bytes(k->out[0]));
        return CRUN_OK;
    }
    RoiJob j = {k->params, x, rois, k->out[0], batch};
    pool_for(k->pool, R * x->dims[1], roialign_task, &j);
    return CRUN_OK;
}

static int64_t roi_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(out[0]) * 16;
}

static const KernelVariant roialign_kernels[] = {
    {"roialign_ref", ISA_SCALAR, NULL, roialign_prepare, roialign_run, NULL}, {0}};
const OpDesc op_RoiAlign = {"", "RoiAlign", 3, 3, 1, 1, 0, parse_roialign, roialign_infer, roi_flops, roialign_kernels};

/* ================= MaxRoiPool ================= */

typedef struct RoiPoolParams {
    int64_t pooled[2];
    float spatial_scale;
} RoiPoolParams;

static crun_status parse_maxroipool(Node *n, Diag *d)
{
    RoiPoolParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    int count = 0;
    crun_status st = attr_get_ints(n, "pooled_shape", p->pooled, 2, &count, d);
    if (st == CRUN_OK)
        st = attr_get_float(n, "spatial_scale", 1.0f, &p->spatial_scale, d);
    if (st == CRUN_OK && (count != 2 || p->pooled[0] < 1 || p->pooled[1] < 1))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "pooled_shape must be 2 values >= 1");
    return st;
}

static crun_status maxroipool_infer(InferCtx *c)
{
    const RoiPoolParams *p = c->params;
    const Tensor *x = c->in[0], *rois = c->in[1];
    NODE_CHECK(c, dtype_is_float(x->dtype) && x->rank == 4, "X must be a 4-D float tensor");
    NODE_CHECK(c, rois->dtype == x->dtype && rois->rank == 2 && rois->dims[1] == 5,
               "rois must be [num_rois, 5] of X's type");
    int64_t dims[4] = {rois->dims[0], x->dims[1], p->pooled[0], p->pooled[1]};
    out_set(c->out[0], x->dtype, 4, dims);
    return CRUN_OK;
}

/* v clamped to [0, hi] as an integer (v is integral or huge). */
static int64_t clamp_bin(double v, int64_t hi) { return v <= 0 ? 0 : v >= (double)hi ? hi : (int64_t)v; }

/* Caffe's ROI pooling: the roi (rounded to pixels, inclusive) split into pooled bins; each
 * output is the max of its bin, 0 for an empty bin. */
static crun_status maxroipool_run(KernelCtx *k)
{
    const RoiPoolParams *p = k->params;
    const Tensor *x = k->in[0], *rois = k->in[1];
    Tensor *y = k->out[0];
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], PH = p->pooled[0], PW = p->pooled[1];
    for (int64_t r = 0; r < rois->dims[0]; r++) {
        double bd = load_at(rois, r * 5);
        int64_t b = double_to_i64_sat(bd);
        if (!(bd >= 0) || b >= N)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "roi %lld has batch index %g outside [0, %lld)",
                             (long long)r, bd, (long long)N);
        int64_t c4[4]; /* clamped far outside any image, so the sizes below cannot overflow */
        for (int i = 0; i < 4; i++) {
            double v = round(load_at(rois, r * 5 + 1 + i) * p->spatial_scale);
            c4[i] = double_to_i64_sat(fmin(fmax(v, -(double)CRUN_MAX_NUMEL), (double)CRUN_MAX_NUMEL));
        }
        double rh = (double)CRUN_MAX(c4[3] - c4[1] + 1, (int64_t)1),
               rw = (double)CRUN_MAX(c4[2] - c4[0] + 1, (int64_t)1);
        double bh = rh / (double)PH, bw = rw / (double)PW;
        for (int64_t ch = 0; ch < C; ch++) {
            int64_t base = (b * C + ch) * H * W;
            for (int64_t ph = 0; ph < PH; ph++)
                for (int64_t pw = 0; pw < PW; pw++) {
                    int64_t hs = clamp_bin(floor((double)ph * bh) + (double)c4[1], H);
                    int64_t he = clamp_bin(ceil((double)(ph + 1) * bh) + (double)c4[1], H);
                    int64_t ws = clamp_bin(floor((double)pw * bw) + (double)c4[0], W);
                    int64_t we = clamp_bin(ceil((double)(pw + 1) * bw) + (double)c4[0], W);
                    double m = 0.0;
                    if (he > hs && we > ws) {
                        m = -INFINITY;
                        for (int64_t yy = hs; yy < he; yy++)
                            for (int64_t xx = ws; xx < we; xx++)
                                m = fmax(m, load_at(x, base + yy * W + xx));
                    }
                    tensor_set_double(y, ((r * C + ch) * PH + ph) * PW + pw, m);
                }
        }
    }
    return CRUN_OK;
}

static const KernelVariant maxroipool_kernels[] = {{"maxroipool_ref", ISA_SCALAR, NULL, NULL, maxroipool_run, NULL},
                                                   {0}};
const OpDesc op_MaxRoiPool = {"",        "MaxRoiPool",      2, 2, 1, 1, 0, parse_maxroipool, maxroipool_infer,
                              roi_flops, maxroipool_kernels};

/* ================= NonMaxSuppression ================= */

typedef struct NmsParams {
    int64_t center_point_box;
} NmsParams;

static crun_status parse_nms(Node *n, Diag *d)
{
    NmsParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "center_point_box", 0, &p->center_point_box, d);
    if (st == CRUN_OK && p->center_point_box != 0 && p->center_point_box != 1)
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "center_point_box must be 0 or 1");
    return st;
}

typedef struct NmsCand {
    double score;
    int64_t index;
} NmsCand;

/* Higher score first; equal scores keep the lower box index first. */
static int cand_cmp(const void *a, const void *b)
{
    const NmsCand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Corners (ymin, xmin, ymax, xmax) of box i of batch b. */
static void box_corners(const Tensor *boxes, bool center, int64_t b, int64_t i, double out[4])
{
    int64_t at = (b * boxes->dims[1] + i) * 4;
    double v[4];
    for (int k = 0; k < 4; k++)
        v[k] = load_at(boxes, at + k);
    if (center) { /* [x_center, y_center, width, height] */
        out[0] = v[1] - v[3] / 2, out[1] = v[0] - v[2] / 2;
        out[2] = v[1] + v[3] / 2, out[3] = v[0] + v[2] / 2;
        return;
    }
    out[0] = fmin(v[0], v[2]), out[1] = fmin(v[1], v[3]);
    out[2] = fmax(v[0], v[2]), out[3] = fmax(v[1], v[3]);
}

static bool suppressed_by(const double a[4], const double b[4], double thr)
{
    double ih = fmin(a[2], b[2]) - fmax(a[0], b[0]), iw = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    double inter = fmax(ih, 0.0) * fmax(iw, 0.0);
    if (inter <= 0)
        return false;
    double aa = (a[2] - a[0]) * (a[3] - a[1]), ab = (b[2] - b[0]) * (b[3] - b[1]);
    double uni = aa + ab - inter;
    if (aa <= 0 || ab <= 0 || uni <= 0)
        return false;
    return inter / uni > thr;
}

typedef struct NmsArgs {
    const Tensor *boxes, *scores;
    int64_t max_out;
    double iou, score_thr;
    bool has_score_thr, center;
} NmsArgs;

static void nms_args(const NmsParams *p, const Tensor *const *in, int n_in, NmsArgs *a)
{
    const Tensor *mo = n_in > 2 ? in[2] : NULL, *iou = n_in > 3 ? in[3] : NULL, *st = n_in > 4 ? in[4] : NULL;
    a->boxes = in[0];
    a->scores = in[1];
    a->max_out = mo && tensor_numel(mo) ? tensor_get_int(mo, 0) : 0;
    a->iou = iou && tensor_numel(iou) ? tensor_get_double(iou, 0) : 0.0;
    a->has_score_thr = st && tensor_numel(st);
    a->score_thr = a->has_score_thr ? tensor_get_double(st, 0) : 0.0;
    a->center = p->center_point_box != 0;
}

/* Runs the selection; writes the first cap [batch, class, box] triples to out (when not
 * NULL) and returns how many there are. cand and sel hold spatial_dimension entries each. */
static int64_t nms_select(const NmsArgs *a, NmsCand *cand, int64_t *sel, int64_t *out, int64_t cap)
{
    int64_t NB = a->scores->dims[0], NC = a->scores->dims[1], S = a->scores->dims[2], total = 0;
    for (int64_t b = 0; b < NB; b++)
        for (int64_t c = 0; c < NC; c++) {
            int64_t n = 0, n_sel = 0;
            for (int64_t i = 0; i < S && a->max_out > 0; i++) {
                double s = load_at(a->scores, (b * NC + c) * S + i);
                if (!a->has_score_thr || s > a->score_thr)
                    cand[n++] = (NmsCand){s, i};
            }
            qsort(cand, (size_t)n, sizeof *cand, cand_cmp);
            for (int64_t k = 0; k < n && n_sel < a->max_out; k++) {
                double box[4], other[4];
                box_corners(a->boxes, a->center, b, cand[k].index, box);
                bool keep = true;
                for (int64_t s = 0; s < n_sel && keep; s++) {
                    box_corners(a->boxes, a->center, b, sel[s], other);
                    keep = !suppressed_by(box, other, a->iou);
                }
                if (!keep)
                    continue;
                sel[n_sel++] = cand[k].index;
                if (out && total < cap) {
                    out[3 * total] = b;
                    out[3 * total + 1] = c;
                    out[3 * total + 2] = cand[k].index;
                }
                total++;
            }
        }
    return total;
}

static size_t nms_scratch(const Tensor *scores)
{
    return (size_t)scores->dims[2] * (sizeof(NmsCand) + sizeof(int64_t));
}

static crun_status nms_infer(InferCtx *c)
{
    const Tensor *boxes = c->in[0], *scores = c->in[1];
    NODE_CHECK(c, dtype_is_float(boxes->dtype) && boxes->rank == 3 && boxes->dims[2] == 4,
               "boxes must be [num_batches, spatial_dimension, 4]");
    NODE_CHECK(c,
               scores->dtype == boxes->dtype && scores->rank == 3 && scores->dims[0] == boxes->dims[0] &&
                   scores->dims[2] == boxes->dims[1],
               "scores must be [num_batches, num_classes, spatial_dimension] matching boxes");
    static const char *const names[] = {"max_output_boxes_per_class", "iou_threshold", "score_threshold"};
    for (int i = 2; i < c->n_in && i < 5; i++)
        if (c->in[i]) {
            NODE_CHECK(c, tensor_numel(c->in[i]) <= 1, "%s must be a scalar", names[i - 2]);
            NODE_CHECK(c,
                       i == 2 ? c->in[i]->dtype == CRUN_DTYPE_INT64 || c->in[i]->dtype == CRUN_DTYPE_INT32
                              : dtype_is_float(c->in[i]->dtype),
                       "%s has type %s", names[i - 2], dtype_name(c->in[i]->dtype));
        }
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && !c->in[i]->data) {
            c->needs_data = true;
            return CRUN_OK;
        }
    NmsArgs a;
    nms_args(c->params, c->in, c->n_in, &a);
    void *scratch = malloc(nms_scratch(scores) + 1);
    if (!scratch)
        return node_fail(c->node, c->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t n = nms_select(&a, scratch, (int64_t *)((NmsCand *)scratch + scores->dims[2]), NULL, 0);
    free(scratch);
    int64_t dims[2] = {n, 3};
    out_set(c->out[0], CRUN_DTYPE_INT64, 2, dims);
    return CRUN_OK;
}

static crun_status nms_prepare(PrepCtx *c)
{
    c->ws_bytes = nms_scratch(c->in[1]);
    return CRUN_OK;
}

static crun_status nms_run(KernelCtx *k)
{
    NmsArgs a;
    nms_args(k->params, k->in, k->n_in, &a);
    NmsCand *cand = k->ws;
    int64_t n = nms_select(&a, cand, (int64_t *)(cand + a.scores->dims[2]), k->out[0]->data, k->out[0]->dims[0]);
    if (n != k->out[0]->dims[0]) /* infer ran the same selection on the same data */
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "selection changed between shape and run");
    return CRUN_OK;
}

static int64_t nms_flops(const Node *n, const Tensor *const *in, const Tensor *const *out)
{
    return tensor_numel(in[1]) * 8;
}

static const KernelVariant nms_kernels[] = {{"nms_ref", ISA_SCALAR, NULL, nms_prepare, nms_run, NULL}, {0}};
const OpDesc op_NonMaxSuppression = {"", "NonMaxSuppression", 2,         5,         1,          1,
                                     0,  parse_nms,           nms_infer, nms_flops, nms_kernels};
