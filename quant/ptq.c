/* ptq.c - the post-training quantizer behind `crun quantize`: runs the float model on
 * calibration samples with every tensor to quantize exposed as an output, turns what it
 * saw into ranges (quant/calib.h) and has loaders/onnx_qdq.c write the QDQ model; or, for
 * weight-only block quantization, has loaders/onnx_nbits.c rewrite the weights. */
#include <dirent.h>
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
    free(bytes);
    if (st != CRUN_OK) {
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
    if (st == CRUN_OK) {
        st = qdq_write(&plan, (const float(*)[2])range, o.per_channel != 0, out_path, &d);
        if (st != CRUN_OK)
            diag_publish(&d);
    }
    crun_session_free(c.session);
    crun_model_free(c.model);
    free(c.out_index);
    free(c.stats);
    free(range);
    qdq_plan_free(&plan);
    return st;
}
