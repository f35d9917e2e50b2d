/* ptq.c - the post-training quantizer behind `crun quantize`: runs the float model on
 * calibration samples with every tensor to quantize exposed as an output, turns what it
 * saw into ranges (quant/calib.h) and has loaders/onnx_qdq.c write the QDQ model; or, for
 * weight-only block quantization, has loaders/onnx_nbits.c rewrite the weights. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crun.h"
#include "loaders/onnx_nbits.h"
#include "loaders/onnx_qdq.h"
#include "loaders/tensor_file.h"
#include "quant/calib.h"
#include "runtime/progress.h"

void crun_quantize_options_init(crun_quantize_options *o)
{
    memset(o, 0, sizeof *o);
    o->calib_random = 16;
    o->method = CRUN_CALIB_MINMAX;
    o->percentile = 99.99f;
    o->per_channel = 1;
    o->block_size = 32;
}

/* ---- calibration samples ---- */

typedef struct Samples {
    char **files; /* calib_dir's .npy files in name order, or NULL (random) */
    int n_files, n_samples, n_inputs;
} Samples;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static crun_status list_samples(const crun_quantize_options *o, int n_inputs, Samples *s)
{
    memset(s, 0, sizeof *s);
    s->n_inputs = n_inputs > 0 ? n_inputs : 1;
    if (!o->calib_dir) {
        s->n_samples = o->calib_random > 0 ? o->calib_random : 16;
        return CRUN_OK;
    }
    DIR *dir = opendir(o->calib_dir);
    if (!dir)
        return error_set(CRUN_ERR_IO, "%s: cannot open the calibration directory", o->calib_dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy"))
            continue;
        char **f = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *f);
        char *path = malloc(strlen(o->calib_dir) + len + 2);
        if (!f || !path) {
            free(f ? NULL : path);
            closedir(dir);
            return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
        s->files = f;
        sprintf(path, "%s/%s", o->calib_dir, e->d_name);
        s->files[s->n_files++] = path;
    }
    closedir(dir);
    qsort(s->files, (size_t)s->n_files, sizeof *s->files, cmp_str);
    s->n_samples = s->n_files / s->n_inputs;
    if (s->n_samples == 0)
        return error_set(CRUN_ERR_IO, "%s: no .npy calibration samples (the model has %d input%s)", o->calib_dir,
                         s->n_inputs, s->n_inputs > 1 ? "s" : "");
    return CRUN_OK;
}

static void samples_free(Samples *s)
{
    for (int i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
}

static uint32_t lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* The value given for a symbolic dim, else 1. */
static int64_t dim_value(const crun_quantize_options *o, const char *sym)
{
    for (int i = 0; sym && i < o->n_dims; i++)
        if (o->dims[i].name && !strcmp(o->dims[i].name, sym))
            return o->dims[i].value;
    return 1;
}

/* Random values for input k of a model (symbolic dims as o says), in *buf (malloc'd: the
 * session reads it until the run). */
static crun_status bind_random(crun_session *s, const crun_model *m, const crun_quantize_options *o, int k,
                               uint32_t *rng, void **buf)
{
    crun_tensor_info ti;
    crun_model_input_info(m, k, &ti);
    int64_t dims[CRUN_MAX_RANK], n = 1;
    int rank = ti.rank > 0 ? ti.rank : 0;
    for (int i = 0; i < rank; i++) {
        dims[i] = ti.dims[i] >= 0 ? ti.dims[i] : dim_value(o, ti.dim_names[i]);
        n *= dims[i];
    }
    size_t esz = crun_dtype_size(ti.dtype);
    void *data = malloc((size_t)n * (esz ? esz : 1) + 1);
    if (!data)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = lcg(rng);
        if (ti.dtype == CRUN_DTYPE_FLOAT)
            ((float *)data)[i] = (float)r / (float)(1u << 24) * 2.0f - 1.0f;
        else if (ti.dtype == CRUN_DTYPE_INT64)
            ((int64_t *)data)[i] = r % 10;
        else if (ti.dtype == CRUN_DTYPE_INT32)
            ((int32_t *)data)[i] = (int32_t)(r % 10);
        else
            memset((char *)data + i * (int64_t)esz, 0, esz);
    }
    *buf = data;
    return crun_session_set_input(s, k, ti.dtype, rank, dims, data);
}

/* Binds sample `sample`; the data stays in held[k] (tensors the caller frees after the
 * run). */
static crun_status bind_sample(crun_session *s, const crun_model *m, const crun_quantize_options *o,
                               const Samples *sm, int sample, uint32_t *rng, Tensor *held)
{
    for (int k = 0; k < sm->n_inputs; k++) {
        crun_status st;
        if (!sm->files) {
            st = bind_random(s, m, o, k, rng, &held[k].data);
        } else {
            Diag d = {0};
            const char *path = sm->files[sample * sm->n_inputs + k];
            st = tensor_file_read(path, &held[k], NULL, &d);
            if (st != CRUN_OK) {
                diag_publish(&d);
                return st;
            }
            st = crun_session_set_input(s, k, held[k].dtype, held[k].rank, held[k].dims, held[k].data);
            if (st != CRUN_OK)
                return error_set(st, "%s: %s", path, crun_last_error());
        }
        if (st != CRUN_OK)
            return st;
    }
    return CRUN_OK;
}

static void release_sample(const Samples *sm, Tensor *held)
{
    for (int k = 0; k < sm->n_inputs; k++) {
        if (sm->files && held[k].data)
            tensor_file_free(&held[k]);
        else
            free(held[k].data);
        held[k].data = NULL;
    }
}

/* ---- the two passes over the samples ---- */

typedef struct Calib {
    const QdqPlan *plan;
    crun_model *model;
    crun_session *session;
    int *out_index; /* per target: output of the calibration model, -1 when tied/absent */
    CalibStats *stats;
} Calib;

static crun_status observe_all(Calib *c, const crun_quantize_options *o, const Samples *sm, bool hist, Progress *pg,
                               int64_t done0)
{
    uint32_t rng = 0x5eed;
    Tensor *held = calloc((size_t)sm->n_inputs, sizeof *held);
    if (!held)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < sm->n_samples; i++) {
        crun_status st = bind_sample(c->session, c->model, o, sm, i, &rng, held);
        if (st == CRUN_OK)
            st = crun_session_run(c->session);
        if (st != CRUN_OK) {
            release_sample(sm, held);
            free(held);
            return st;
        }
        for (int t = 0; t < c->plan->n_targets; t++) {
            crun_tensor out;
            if (c->out_index[t] < 0 || crun_session_get_output(c->session, c->out_index[t], &out) != CRUN_OK ||
                out.dtype != CRUN_DTYPE_FLOAT)
                continue;
            int64_t n = (int64_t)(out.size_bytes / 4);
            if (hist)
                calib_observe_hist(&c->stats[t], out.data, n);
            else
                calib_observe_range(&c->stats[t], out.data, n);
        }
        release_sample(sm, held); /* (after reading: an output may be an input) */
        progress_update(pg, done0 + i + 1, NULL);
    }
    free(held);
    return CRUN_OK;
}

static crun_status calibrate(Calib *c, const crun_quantize_options *o, float (*range)[2])
{
    Samples sm;
    crun_status st = list_samples(o, crun_model_input_count(c->model), &sm);
    if (st != CRUN_OK) {
        samples_free(&sm);
        return st;
    }
    bool hist = o->method != CRUN_CALIB_MINMAX;
    Progress pg;
    progress_start(&pg, o->progress, "calibrating", (int64_t)sm.n_samples * (hist ? 2 : 1));
    st = observe_all(c, o, &sm, false, &pg, 0);
    if (st == CRUN_OK && hist)
        st = observe_all(c, o, &sm, true, &pg, sm.n_samples);
    progress_end(&pg);
    samples_free(&sm);
    for (int t = 0; st == CRUN_OK && t < c->plan->n_targets; t++)
        calib_range(&c->stats[t], (CalibMethod)o->method, o->percentile, &range[t][0], &range[t][1]);
    return st;
}

/* Errors about the calibration copy (loaded from memory) name the model file instead. */
static crun_status name_the_file(crun_status st, const char *model_path)
{
    char msg[512];
    const char *mem = "<memory>: ";
    snprintf(msg, sizeof msg, "%s", crun_last_error()); /* (error_set rewrites that buffer) */
    if (st == CRUN_OK || strncmp(msg, mem, strlen(mem)))
        return st;
    return error_set(st, "%s: %s", model_path, msg + strlen(mem));
}

static crun_status open_calibration(Calib *c, const crun_quantize_options *o)
{
    uint8_t *bytes = NULL;
    size_t size = 0;
    Diag d = {0};
    crun_status st = qdq_calibration_model(c->plan, &bytes, &size, &d);
    if (st != CRUN_OK) {
        diag_publish(&d);
        return st;
    }
    st = crun_model_load_memory(bytes, size, &c->model);
    free(bytes);
    if (st != CRUN_OK)
        return st;
    crun_session_options so;
    crun_session_options_init(&so);
    so.threads = o->threads;
    so.dims = o->dims;
    so.n_dims = o->n_dims > 0 ? (size_t)o->n_dims : 0;
    st = crun_session_create(c->model, &so, &c->session);
    if (st != CRUN_OK)
        return st;
    for (int t = 0; t < c->plan->n_targets; t++)
        c->out_index[t] = c->plan->targets[t].tie >= 0 ? -1 : crun_model_find_output(c->model, c->plan->targets[t].name);
    return CRUN_OK;
}

/* ---- mixed precision (options.sensitivity) ---- */

enum { SENS_SAMPLES = 16 };

/* The float model's outputs on the first samples, to measure int8 models against. */
typedef struct Reference {
    const crun_quantize_options *o;
    Samples sm;
    int n;
    float **out;  /* per sample: its float outputs one after another */
    int64_t *len;
} Reference;

/* Runs m on r's samples: stores the outputs (store), or sets *err to their relative RMS
 * difference from the stored ones. */
static crun_status run_reference(crun_model *m, Reference *r, bool store, double *err)
{
    crun_session_options so;
    crun_session_options_init(&so);
    so.threads = r->o->threads;
    so.dims = r->o->dims;
    so.n_dims = r->o->n_dims > 0 ? (size_t)r->o->n_dims : 0;
    crun_session *s = NULL;
    crun_status st = crun_session_create(m, &so, &s);
    Tensor *held = calloc((size_t)r->sm.n_inputs, sizeof *held);
    uint32_t rng = 0x5eed; /* observe_all's: the same random samples */
    double num = 0, den = 0;
    if (st == CRUN_OK && !held)
        st = error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; st == CRUN_OK && i < r->n; i++) {
        st = bind_sample(s, m, r->o, &r->sm, i, &rng, held);
        if (st == CRUN_OK)
            st = crun_session_run(s);
        int64_t at = 0;
        for (int k = 0; st == CRUN_OK && k < crun_model_output_count(m); k++) {
            crun_tensor t;
            if (crun_session_get_output(s, k, &t) != CRUN_OK || t.dtype != CRUN_DTYPE_FLOAT)
                continue;
            int64_t n = (int64_t)(t.size_bytes / 4);
            const float *y = t.data;
            if (store) {
                float *grown = realloc(r->out[i], (size_t)(r->len[i] + n + 1) * sizeof *grown);
                if (!grown) {
                    st = error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
                    break;
                }
                memcpy(grown + r->len[i], y, (size_t)n * sizeof *y);
                r->out[i] = grown, r->len[i] += n;
                continue;
            }
            for (int64_t j = 0; j < n && at + j < r->len[i]; j++) {
                double want = r->out[i][at + j], diff = (double)y[j] - want;
                num += diff * diff, den += want * want;
            }
            at += n;
        }
        release_sample(&r->sm, held);
    }
    free(held);
    crun_session_free(s);
    if (err)
        *err = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
    return st;
}

/* Writes the QDQ model with the nodes in excl left float, the ranges full calibrated. */
static crun_status write_subset(const void *bytes, size_t size, const QdqPlan *full, const float (*range)[2],
                                bool per_channel, const char *const *excl, int n_excl, const char *path)
{
    QdqPlan sub;
    Diag d = {0};
    crun_status st = qdq_plan_make(bytes, size, excl, n_excl, &sub, &d);
    float (*sr)[2] = st == CRUN_OK ? calloc((size_t)sub.n_targets + 1, sizeof *sr) : NULL;
    if (st == CRUN_OK && !sr)
        st = diag_fail(&d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int t = 0; sr && t < sub.n_targets; t++) {
        int i = qdq_target_index(full, sub.targets[t].name);
        if (i >= 0)
            sr[t][0] = range[i][0], sr[t][1] = range[i][1];
    }
    if (st == CRUN_OK)
        st = qdq_write(&sub, (const float(*)[2])sr, per_channel, path, &d);
    if (st != CRUN_OK)
        diag_publish(&d);
    free(sr);
    qdq_plan_free(&sub);
    return st;
}

/* The error of the int8 model with excl left float, on r's samples. */
static crun_status try_subset(const void *bytes, size_t size, const QdqPlan *full, const float (*range)[2],
                              bool per_channel, const char *const *excl, int n_excl, const char *tmp, Reference *r,
                              double *err)
{
    crun_status st = write_subset(bytes, size, full, range, per_channel, excl, n_excl, tmp);
    crun_model *m = NULL;
    if (st == CRUN_OK)
        st = crun_model_load_file(tmp, &m);
    if (st == CRUN_OK)
        st = run_reference(m, r, false, err);
    crun_model_free(m);
    remove(tmp);
    return st;
}

/* A node's error when it alone is int8. */
typedef struct Sensitivity {
    double err;
    int node;
} Sensitivity;

static int more_sensitive(const void *a, const void *b)
{
    double x = ((const Sensitivity *)a)->err, y = ((const Sensitivity *)b)->err;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Picks the nodes to keep float: each node alone in int8 gives an error; the most
 * sensitive first, the fewest of them (binary search) that bring the whole model within
 * o->sensitivity. excl holds the user's exclusions, then (filled here) *n_float names. */
static crun_status choose_float_nodes(const void *bytes, size_t size, const QdqPlan *full, const float (*range)[2],
                                      const crun_quantize_options *o, const char *tmp, const char **excl,
                                      int *n_float)
{
    int nu = o->n_exclude, n = full->n_nodes;
    Reference r = {.o = o};
    crun_model *fm = NULL;
    Sensitivity *sens = calloc((size_t)n + 1, sizeof *sens);
    double e = 0;
    crun_status st = sens ? crun_model_load_memory(bytes, size, &fm) : CRUN_ERR_OUT_OF_MEMORY;
    if (st == CRUN_OK)
        st = list_samples(o, crun_model_input_count(fm), &r.sm);
    r.n = r.sm.n_samples < SENS_SAMPLES ? r.sm.n_samples : SENS_SAMPLES;
    r.out = calloc((size_t)r.n + 1, sizeof *r.out);
    r.len = calloc((size_t)r.n + 1, sizeof *r.len);
    if (st == CRUN_OK && (!r.out || !r.len))
        st = error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == CRUN_OK)
        st = run_reference(fm, &r, true, NULL);
    Progress pg;
    progress_start(&pg, o->progress, "sensitivity", n + 8);
    for (int i = 0; st == CRUN_OK && i < n; i++) { /* node i alone in int8 */
        int k = nu;
        for (int j = 0; j < n; j++)
            if (j != i)
                excl[k++] = full->nodes[j];
        sens[i].node = i;
        st = try_subset(bytes, size, full, range, o->per_channel != 0, excl, k, tmp, &r, &sens[i].err);
        progress_update(&pg, i + 1, NULL);
    }
    sort_items(sens, (size_t)n, sizeof *sens, more_sensitive); /* stable: ties keep graph order */
    for (int i = 0; i < n; i++)
        excl[nu + i] = full->nodes[sens[i].node];
    int lo = 0, hi = n, step = 0;
    while (st == CRUN_OK && lo < hi) {
        int mid = (lo + hi) / 2;
        st = try_subset(bytes, size, full, range, o->per_channel != 0, excl, nu + mid, tmp, &r, &e);
        if (e <= o->sensitivity)
            hi = mid;
        else
            lo = mid + 1;
        progress_update(&pg, n + ++step, NULL);
    }
    progress_end(&pg);
    *n_float = lo;
    for (int i = 0; i < r.n; i++)
        free(r.out ? r.out[i] : NULL);
    free(r.out);
    free(r.len);
    samples_free(&r.sm);
    crun_model_free(fm);
    free(sens);
    return st;
}

/* Mixed precision: the user's exclusions plus the nodes choose_float_nodes keeps float. */
static crun_status write_mixed(const void *bytes, size_t size, const QdqPlan *plan, const float (*range)[2],
                               const crun_quantize_options *o, const char *out_path)
{
    const char **excl = calloc((size_t)(o->n_exclude + plan->n_nodes) + 1, sizeof *excl);
    char *tmp = malloc(strlen(out_path) + 32);
    if (!excl || !tmp) {
        free(excl);
        free(tmp);
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int i = 0; i < o->n_exclude; i++)
        excl[i] = o->exclude[i];
    sprintf(tmp, "%s.sensitivity.tmp", out_path);
    int n_float = 0;
    crun_status st = choose_float_nodes(bytes, size, plan, range, o, tmp, excl, &n_float);
    if (st == CRUN_OK)
        st = write_subset(bytes, size, plan, range, o->per_channel != 0, excl, o->n_exclude + n_float, out_path);
    free(excl);
    free(tmp);
    return st;
}

crun_status crun_quantize_file(const char *model_path, const char *out_path, const crun_quantize_options *options)
{
    crun_quantize_options o;
    if (options)
        o = *options;
    else
        crun_quantize_options_init(&o);
    if (!model_path || !out_path)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_quantize_file: a path is NULL");
    if (o.method < CRUN_CALIB_MINMAX || o.method > CRUN_CALIB_ENTROPY)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_quantize_file: unknown calibration method %d", o.method);
    void *bytes = NULL;
    size_t size = 0;
    Diag d = {0};
    crun_status st = file_read_all(model_path, &bytes, &size, &d);
    if (st != CRUN_OK) {
        diag_publish(&d);
        return st;
    }
    if (o.weight_bits) {
        int n_done;
        st = nbits_write(bytes, size, o.weight_bits, o.block_size, o.exclude, o.n_exclude, out_path, &n_done, &d);
        free(bytes);
        if (st != CRUN_OK) {
            diag_prefix(&d, "%s", model_path);
            diag_publish(&d);
        }
        return st;
    }
    QdqPlan plan;
    st = qdq_plan_make(bytes, size, o.exclude, o.n_exclude, &plan, &d);
    if (st != CRUN_OK) {
        free(bytes);
        diag_prefix(&d, "%s", model_path);
        diag_publish(&d);
        return st;
    }
    Calib c = {.plan = &plan};
    c.out_index = calloc((size_t)plan.n_targets + 1, sizeof *c.out_index);
    c.stats = calloc((size_t)plan.n_targets + 1, sizeof *c.stats);
    float (*range)[2] = calloc((size_t)plan.n_targets + 1, sizeof *range);
    if (!c.out_index || !c.stats || !range)
        st = error_set(CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == CRUN_OK)
        st = name_the_file(open_calibration(&c, &o), model_path);
    if (st == CRUN_OK)
        st = name_the_file(calibrate(&c, &o, range), model_path);
    if (st == CRUN_OK && o.sensitivity > 0) {
        st = name_the_file(write_mixed(bytes, size, &plan, (const float(*)[2])range, &o, out_path), model_path);
    } else if (st == CRUN_OK) {
        st = qdq_write(&plan, (const float(*)[2])range, o.per_channel != 0, out_path, &d);
        if (st != CRUN_OK)
            diag_publish(&d);
    }
    crun_session_free(c.session);
    crun_model_free(c.model);
    free(c.out_index);
    free(c.stats);
    free(range);
    free(bytes);
    qdq_plan_free(&plan);
    return st;
}
