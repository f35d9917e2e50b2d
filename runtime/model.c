/* model.c - crun_model_*: loading a model (file or memory), and what it tells about itself. */
#include "runtime/model.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loaders/crun_file.h"
#include "runtime/packcache.h"
#include "runtime/passes/passes.h"

/* Largest model file crun reads (protobuf's own limit is 2 GB). */
#define MAX_MODEL_BYTES ((size_t)2 << 30)

static void count_params(crun_model *m)
{
    const Graph *g = m->graph;
    for (int v = 0; v < g->n_values; v++) {
        const Value *val = &g->values[v];
        if (!(val->flags & VALUE_IS_CONST))
            continue;
        int64_t n = shape_numel(val->dims, val->rank);
        m->param_count += n;
        m->param_bytes += n * (int64_t)dtype_size(val->dtype);
    }
}

/* Hands m out, or on failure publishes d (prefixed with the source) and frees m. */
static crun_status finish_load(crun_model *m, crun_status st, Diag *d, const char *source, crun_model **out)
{
    if (st != CRUN_OK) {
        diag_prefix(d, "%s", source);
        diag_publish(d);
        crun_model_free(m);
        return st;
    }
    *out = m;
    return CRUN_OK;
}

static crun_status load(const void *data, size_t size, const char *dir, const char *source, crun_model **out)
{
    *out = NULL;
    Diag d = {0};
    crun_model *m = calloc(1, sizeof *m);
    if (!m)
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", source);
    m->source = str_dup(source);
    crun_status st = m->source ? onnx_load_model(data, size, dir, m, &d)
                               : diag_fail(&d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == CRUN_OK) {
        count_params(m);
        st = passes_run(m->graph, &d);
    }
    if (st == CRUN_OK && !(m->graph->packs = packcache_new()))
        st = diag_fail(&d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    return finish_load(m, st, &d, source, out);
}

/* A compiled model over image (held as kind says: freed with the model, even on failure). */
static crun_status load_compiled(const void *image, size_t size, int kind, const char *source, crun_model **out)
{
    *out = NULL;
    Diag d = {0};
    crun_model *m = calloc(1, sizeof *m);
    if (!m) {
        if (kind == IMAGE_MAPPED)
            munmap((void *)image, size);
        else if (kind == IMAGE_COPIED)
            mem_free((void *)image);
        return error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", source);
    }
    m->image = image;
    m->image_bytes = size;
    m->image_kind = kind;
    m->compiled = true;
    m->source = str_dup(source);
    crun_status st = m->source ? crunfile_load(image, size, m, &d)
                               : diag_fail(&d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    return finish_load(m, st, &d, source, out);
}

static void list_graph(const Graph *g, void (*fn)(void *, const char *, const char *), void *ctx)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->op)
            fn(ctx, n->op->domain, n->op->name);
        for (int a = 0; a < n->n_attrs; a++) {
            const Attr *at = &n->attrs[a];
            int k = at->type == ATTR_GRAPH ? 1 : at->type == ATTR_GRAPHS ? at->n : 0;
            for (int j = 0; j < k; j++)
                list_graph(at->graphs[j], fn, ctx);
        }
    }
}

void model_list_ops(const crun_model *m, void (*fn)(void *ctx, const char *domain, const char *op), void *ctx)
{
    onnx_list_ops(m->proto, fn, ctx);
    list_graph(m->graph, fn, ctx);
}

crun_status model_load_compiled_borrowed(const void *image, size_t size, crun_model **out)
{
    return load_compiled(image, size, IMAGE_BORROWED, "<static>", out);
}

crun_status crun_model_load_file(const char *path, crun_model **out)
{
    if (!out)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_load_file: out is NULL");
    *out = NULL;
    if (!path)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_load_file: path is NULL");
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return error_set(CRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return error_set(CRUN_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > MAX_MODEL_BYTES) {
        close(fd);
        return error_set(CRUN_ERR_INVALID_MODEL, "%s: file is larger than 2 GB", path);
    }
    /* Mapped rather than read: the bytes are parsed once and never copied whole. */
    size_t size = (size_t)sb.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED)
        return error_set(CRUN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    /* A compiled model is used where it lies: the mapping lives as long as the model. */
    if (crunfile_is(map, size))
        return load_compiled(map, size, IMAGE_MAPPED, path, out);
    char *tmp = str_dup(path);
    crun_status st = tmp ? load(size ? map : "", size, dirname(tmp), path, out)
                         : error_set(CRUN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    free(tmp);
    if (size)
        munmap(map, size);
    return st;
}

crun_status crun_model_load_memory(const void *data, size_t size, crun_model **out)
{
    if (!out)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_load_memory: out is NULL");
    *out = NULL;
    if (!data && size)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_load_memory: data is NULL");
    if (data && crunfile_is(data, size)) {
        void *copy = mem_alloc_aligned(size);
        if (!copy)
            return error_set(CRUN_ERR_OUT_OF_MEMORY, "<memory>: out of memory copying the compiled model");
        memcpy(copy, data, size);
        return load_compiled(copy, size, IMAGE_COPIED, "<memory>", out);
    }
    return load(data ? data : "", size, NULL, "<memory>", out);
}

void crun_model_free(crun_model *m)
{
    if (!m)
        return;
    graph_free(m->graph);
    onnx_free_proto(m->proto);
    for (int i = 0; i < m->n_ops; i++)
        free(m->ops[i].op_type);
    free(m->ops);
    for (int i = 0; i < m->n_meta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].value);
    }
    free(m->meta);
    free(m->producer);
    free(m->source);
    if (m->image_kind == IMAGE_MAPPED)
        munmap((void *)m->image, m->image_bytes);
    else if (m->image_kind == IMAGE_COPIED)
        mem_free((void *)m->image);
    struct HeapRegion *region = m->region;
    free(m);
    heap_region_close(region); /* the caller may reuse its buffer from now on */
}

int32_t crun_model_input_count(const crun_model *m) { return m ? m->graph->n_inputs : 0; }
int32_t crun_model_output_count(const crun_model *m) { return m ? m->graph->n_outputs : 0; }

static void fill_info(const crun_model *m, const GraphIO *io, crun_tensor_info *out)
{
    const Graph *g = m->graph;
    const Value *v = &g->values[io->value];
    memset(out, 0, sizeof *out);
    out->name = io->name;
    out->dtype = v->dtype;
    out->rank = v->rank;
    out->kind = v->kind == VALUE_SEQUENCE ? CRUN_VALUE_SEQUENCE : CRUN_VALUE_TENSOR;
    out->optional = v->optional;
    for (int i = 0; i < v->rank && i < CRUN_MAX_RANK; i++) {
        out->dims[i] = (v->flags & VALUE_IS_CONST) ? v->dims[i] : v->sym[i] >= 0 ? -1 : v->dims[i];
        out->dim_names[i] = v->sym[i] >= 0 ? g->syms[v->sym[i]] : NULL;
    }
}

crun_status crun_model_input_info(const crun_model *m, int32_t index, crun_tensor_info *out)
{
    if (!m || !out || index < 0 || index >= m->graph->n_inputs)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_input_info: no input %d", (int)index);
    fill_info(m, &m->graph->inputs[index], out);
    return CRUN_OK;
}

crun_status crun_model_output_info(const crun_model *m, int32_t index, crun_tensor_info *out)
{
    if (!m || !out || index < 0 || index >= m->graph->n_outputs)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_output_info: no output %d", (int)index);
    fill_info(m, &m->graph->outputs[index], out);
    return CRUN_OK;
}

static int32_t find_io(const GraphIO *io, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(io[i].name, name) == 0)
            return i;
    return -1;
}

int32_t crun_model_find_input(const crun_model *m, const char *name)
{
    return m ? find_io(m->graph->inputs, m->graph->n_inputs, name) : -1;
}

int32_t crun_model_find_output(const crun_model *m, const char *name)
{
    return m ? find_io(m->graph->outputs, m->graph->n_outputs, name) : -1;
}

void crun_model_get_summary(const crun_model *m, crun_model_summary *out)
{
    memset(out, 0, sizeof *out);
    if (!m)
        return;
    out->ir_version = m->ir_version;
    out->opset = m->opset;
    out->producer = m->producer;
    out->node_count = m->node_count;
    out->param_count = m->param_count;
    out->param_bytes = m->param_bytes;
    out->op_type_count = m->n_ops;
}

crun_status crun_model_op_histogram(const crun_model *m, int32_t index, const char **op_type, int64_t *count)
{
    if (!m || index < 0 || index >= m->n_ops || !op_type || !count)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_op_histogram: no entry %d", (int)index);
    *op_type = m->ops[index].op_type;
    *count = m->ops[index].count;
    return CRUN_OK;
}

const char *crun_model_metadata(const crun_model *m, const char *key)
{
    for (int i = 0; m && key && i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return m->meta[i].value;
    return NULL;
}
