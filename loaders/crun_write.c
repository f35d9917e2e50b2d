/* crun_write.c - writing a planned model as a .crun file (see crun_file.h).
 *
 * The tables are a stream of records, each field little-endian: u8/i32/u32/i64/u64/f32,
 * strings as u32 length + bytes, blob references as u64 offset (from the blob section's
 * start, a multiple of 64) + u64 bytes. In order: model facts; symbols; opsets; the main
 * graph (a graph: name, values, nodes with their attributes and any subgraphs, inputs,
 * outputs); the pack blocks (global node number in record order, tag, blob); the plan's
 * arena layout (see put_offsets), which sessions planned for the same shapes and threads
 * must reproduce. */
#include "loaders/crun_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model.h"
#include "runtime/packcache.h"

typedef struct Blob {
    const void *data;
    size_t bytes;
} Blob;

typedef struct Writer {
    uint8_t *buf;
    size_t n, cap;
    Blob *blobs;
    size_t n_blobs, cap_blobs;
    uint64_t blob_end; /* bytes of the blob section so far */
    const Plan *plan;  /* the main graph's plan: kernel names */
    const Graph *main;
    const bool *packed;    /* main-graph values kept only in their packed form */
    const Node **node_ids; /* node of each global number, for the pack index */
    int n_node_ids, cap_node_ids;
    bool oom;
} Writer;

static void put(Writer *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            w->oom = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->n, p, n);
    w->n += n;
}

static void put_u8(Writer *w, uint8_t v) { put(w, &v, 1); }
static void put_i32(Writer *w, int32_t v) { put(w, &v, 4); }
static void put_u32(Writer *w, uint32_t v) { put(w, &v, 4); }
static void put_i64(Writer *w, int64_t v) { put(w, &v, 8); }
static void put_u64(Writer *w, uint64_t v) { put(w, &v, 8); }
static void put_f32(Writer *w, float v) { put(w, &v, 4); }

static void put_bytes(Writer *w, const char *s, size_t n)
{
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

static void put_str(Writer *w, const char *s) { put_bytes(w, s ? s : "", s ? strlen(s) : 0); }

static void put_blob(Writer *w, const void *data, size_t bytes)
{
    if (!w->oom && w->n_blobs == w->cap_blobs) {
        size_t cap = w->cap_blobs ? 2 * w->cap_blobs : 64;
        Blob *b = realloc(w->blobs, cap * sizeof *b);
        if (!b) {
            w->oom = true;
            return;
        }
        w->blobs = b;
        w->cap_blobs = cap;
    }
    if (w->oom)
        return;
    w->blobs[w->n_blobs++] = (Blob){data, bytes};
    put_u64(w, w->blob_end);
    put_u64(w, bytes);
    w->blob_end += align_up(bytes, CRUNFILE_BLOB_ALIGN);
}

static void put_shape(Writer *w, crun_dtype dtype, int rank, const int64_t *dims)
{
    put_i32(w, (int32_t)dtype);
    put_i32(w, rank);
    for (int i = 0; i < rank; i++)
        put_i64(w, dims[i]);
}

/* Tensor data: strings inline, everything else as a blob (inline for attribute tensors). */
static void put_data(Writer *w, crun_dtype dtype, const void *data, int64_t numel, bool as_blob)
{
    if (dtype == CRUN_DTYPE_STRING) {
        const char *const *s = data;
        for (int64_t i = 0; i < numel; i++)
            put_str(w, s[i]);
        return;
    }
    size_t bytes = (size_t)numel * dtype_size(dtype);
    if (as_blob)
        put_blob(w, data, bytes);
    else
        put_bytes(w, data, bytes);
}

static void put_graph(Writer *w, const Graph *g);

static void put_attr(Writer *w, const Attr *a)
{
    put_str(w, a->name);
    put_i32(w, (int32_t)a->type);
    switch (a->type) {
    case ATTR_FLOAT: put_f32(w, a->f); break;
    case ATTR_INT: put_i64(w, a->i); break;
    case ATTR_STRING: put_bytes(w, a->s, a->s_len); break;
    case ATTR_FLOATS:
        put_u32(w, (uint32_t)a->n);
        put(w, a->floats, (size_t)a->n * sizeof(float));
        break;
    case ATTR_INTS:
        put_u32(w, (uint32_t)a->n);
        put(w, a->ints, (size_t)a->n * sizeof(int64_t));
        break;
    case ATTR_STRINGS:
        put_u32(w, (uint32_t)a->n);
        for (int i = 0; i < a->n; i++)
            put_str(w, a->strings[i]);
        break;
    case ATTR_TENSOR:
    case ATTR_TENSORS: {
        int n = a->type == ATTR_TENSOR ? 1 : a->n;
        put_u32(w, (uint32_t)n);
        for (int i = 0; i < n; i++) {
            const Tensor *t = &a->tensors[i].t;
            put_shape(w, t->dtype, t->rank, t->dims);
            put_data(w, t->dtype, t->data, tensor_numel(t), false);
        }
        break;
    }
    case ATTR_GRAPH:
    case ATTR_GRAPHS: {
        int n = a->type == ATTR_GRAPH ? 1 : a->n;
        put_u32(w, (uint32_t)n);
        for (int i = 0; i < n; i++)
            put_graph(w, a->graphs[i]);
        break;
    }
    case ATTR_TYPE_PROTO:
    case ATTR_TYPE_PROTOS:
        put_i32(w, (int32_t)a->tp_kind);
        put_i32(w, (int32_t)a->tp_dtype);
        break;
    default: break; /* the loader keeps no other kinds */
    }
}

/* keep: whether anything reads the value (passes leave the constants they replaced in
 * the table; those are written as plain unused values, without data). */
static void put_value(Writer *w, const Value *v, bool packed, bool keep)
{
    put_str(w, v->name);
    put_u8(w, (uint8_t)v->kind);
    put_u8(w, v->optional);
    put_i32(w, (int32_t)v->dtype);
    put_i32(w, v->rank);
    for (int i = 0; i < v->rank; i++) {
        put_i64(w, v->dims[i]);
        put_i32(w, v->sym[i]);
    }
    uint32_t flags = v->flags & (VALUE_IS_INPUT | VALUE_IS_OUTPUT | VALUE_IS_OUTER | VALUE_IS_CONST);
    if (!keep)
        flags &= ~(uint32_t)VALUE_IS_CONST;
    put_u32(w, flags | (packed ? VALUE_PACKED : 0));
    put_i32(w, v->outer);
    if ((flags & VALUE_IS_CONST) && !packed)
        put_data(w, v->dtype, v->data, shape_numel(v->dims, v->rank), true);
}

/* The constants of the main graph that every reader takes from a shared pack (the plan's
 * packed_inputs): the file keeps their packs and leaves the values out. */
static bool *packed_values(const Graph *g, const Plan *p)
{
    bool *packed = calloc((size_t)g->n_values + 1, 1), *other = calloc((size_t)g->n_values + 1, 1);
    const PlanStep **step_of = calloc((size_t)g->n_nodes + 1, sizeof *step_of);
    if (!packed || !other || !step_of) {
        free(packed);
        free(other);
        free(step_of);
        return NULL;
    }
    for (int s = 0; s < p->n_steps; s++)
        if (p->steps[s].kv && !p->steps[s].dynamic)
            step_of[p->steps[s].node] = &p->steps[s];
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            const PlanStep *st = step_of[i];
            if (v < 0)
                continue;
            if (st && k < 32 && (st->packed_inputs & (1u << k)))
                packed[v] = true;
            else
                other[v] = true;
        }
    for (int v = 0; v < g->n_values; v++)
        packed[v] = packed[v] && !other[v] && (g->values[v].flags & VALUE_IS_CONST) && !value_escapes(g, v);
    free(other);
    free(step_of);
    return packed;
}

/* Name of the kernel the plan chose for node i of the main graph, "" if none. */
static const char *planned_kernel(const Writer *w, const Graph *g, int i)
{
    if (g != w->main)
        return "";
    for (int s = 0; s < w->plan->n_steps; s++)
        if (w->plan->steps[s].node == i && w->plan->steps[s].kv)
            return w->plan->steps[s].kv->name;
    return "";
}

static void number_node(Writer *w, const Node *n)
{
    if (w->oom)
        return;
    if (w->n_node_ids == w->cap_node_ids) {
        int cap = w->cap_node_ids ? 2 * w->cap_node_ids : 256;
        const Node **p = realloc(w->node_ids, (size_t)cap * sizeof *p);
        if (!p) {
            w->oom = true;
            return;
        }
        w->node_ids = p;
        w->cap_node_ids = cap;
    }
    w->node_ids[w->n_node_ids++] = n;
}

static void put_node(Writer *w, const Graph *g, int i)
{
    const Node *n = &g->nodes[i];
    number_node(w, n);
    put_str(w, n->name);
    put_str(w, n->op_type);
    put_str(w, n->domain);
    put_i32(w, n->opset);
    put_i32(w, n->n_in);
    for (int k = 0; k < n->n_in; k++)
        put_i32(w, n->in[k]);
    put_i32(w, n->n_out);
    for (int k = 0; k < n->n_out; k++)
        put_i32(w, n->out[k]);
    put_i32(w, n->n_implicit);
    put_i32(w, (int32_t)n->act.kind);
    put_f32(w, n->act.alpha);
    put_f32(w, n->act.beta);
    put_u8(w, n->act.affine);
    put_f32(w, n->act.mul);
    put_f32(w, n->act.add);
    put_str(w, n->fused);
    put_str(w, planned_kernel(w, g, i));
    put_u32(w, (uint32_t)n->n_attrs);
    for (int a = 0; a < n->n_attrs; a++)
        put_attr(w, &n->attrs[a]);
}

static void put_io(Writer *w, const GraphIO *io, int n)
{
    put_u32(w, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        put_str(w, io[i].name);
        put_i32(w, io[i].value);
        put_i32(w, io[i].parent_input);
    }
}

static bool *used_values(const Graph *g)
{
    bool *used = calloc((size_t)g->n_values + 1, 1);
    for (int i = 0; used && i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0)
                used[g->nodes[i].in[k]] = true;
    for (int i = 0; used && i < g->n_outputs; i++)
        used[g->outputs[i].value] = true;
    return used;
}

static void put_graph(Writer *w, const Graph *g)
{
    bool *used = used_values(g);
    if (!used)
        w->oom = true;
    put_str(w, g->name);
    put_u32(w, (uint32_t)g->n_values);
    for (int v = 0; v < g->n_values && used; v++)
        put_value(w, &g->values[v], g == w->main && w->packed && w->packed[v], used[v]);
    free(used);
    put_u32(w, (uint32_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++)
        put_node(w, g, i);
    put_io(w, g->inputs, g->n_inputs);
    put_io(w, g->outputs, g->n_outputs);
}

static void put_model(Writer *w, const crun_model *m)
{
    put_i64(w, m->ir_version);
    put_i64(w, m->opset);
    put_str(w, m->producer);
    put_u32(w, (uint32_t)m->n_meta);
    for (int i = 0; i < m->n_meta; i++) {
        put_str(w, m->meta[i].key);
        put_str(w, m->meta[i].value);
    }
    put_u32(w, (uint32_t)m->n_ops);
    for (int i = 0; i < m->n_ops; i++) {
        put_str(w, m->ops[i].op_type);
        put_i64(w, m->ops[i].count);
    }
    put_i64(w, m->node_count);
    put_i64(w, m->param_count);
    put_i64(w, m->param_bytes);
    const Graph *g = m->graph;
    put_u32(w, g->fp16_weights);
    put_u32(w, (uint32_t)g->n_syms);
    for (int i = 0; i < g->n_syms; i++)
        put_str(w, g->syms[i]);
    put_u32(w, (uint32_t)g->n_opsets);
    for (int i = 0; i < g->n_opsets; i++) {
        put_str(w, g->opsets[i].domain);
        put_i64(w, g->opsets[i].version);
    }
    put_graph(w, g);
}

static int node_number(const Writer *w, const void *owner)
{
    for (int i = 0; i < w->n_node_ids; i++)
        if (w->node_ids[i] == owner)
            return i;
    return -1;
}

static void put_packs(Writer *w, PackCache *c)
{
    size_t n = packcache_count(c), kept = 0;
    for (size_t i = 0; i < n; i++) {
        PackEntry e;
        if (packcache_entry(c, i, &e) && node_number(w, e.owner) >= 0)
            kept++;
    }
    put_u32(w, (uint32_t)kept);
    for (size_t i = 0; i < n; i++) {
        PackEntry e;
        int id;
        if (!packcache_entry(c, i, &e) || (id = node_number(w, e.owner)) < 0)
            continue;
        put_u32(w, (uint32_t)id);
        put_str(w, e.tag);
        put_blob(w, e.data, e.bytes);
    }
}

/* The plan's arena layout: the key of its input shapes, then each main-graph value's
 * offset + 1 (0 outside the arena). */
static void put_offsets(Writer *w, const Plan *p)
{
    put_u64(w, plan_inputs_key(p->inputs, p->g->n_inputs));
    put_u32(w, (uint32_t)p->g->n_values);
    for (int v = 0; v < p->g->n_values; v++)
        put_u64(w, p->vals[v].store == STORE_ARENA ? (uint64_t)p->vals[v].offset + 1 : 0);
}

static void put_header(uint8_t *h, const CrunFileHeader *f)
{
    memset(h, 0, CRUNFILE_HEADER_BYTES);
    memcpy(h, CRUNFILE_MAGIC, 8);
    uint32_t u32[4] = {f->format, CRUNFILE_HEADER_BYTES, (uint32_t)f->isa, (uint32_t)f->threads};
    memcpy(h + 8, u32, sizeof u32);
    uint64_t u64[9] = {f->file_bytes,  f->tables_offset, f->tables_bytes, f->tables_sum,     f->blobs_offset,
                       f->blobs_bytes, f->blobs_sum,     f->arena_bytes,  f->workspace_bytes};
    memcpy(h + 24, u64, sizeof u64);
    memcpy(h + 96, f->build, sizeof f->build);
    memcpy(h + 144, f->arch, sizeof f->arch);
    uint64_t sum = crunfile_checksum(h, CRUNFILE_HEADER_BYTES - 8);
    memcpy(h + CRUNFILE_HEADER_BYTES - 8, &sum, 8);
}

static crun_status write_file(const char *path, const Writer *w, const CrunFileHeader *f, Diag *d)
{
    uint8_t header[CRUNFILE_HEADER_BYTES];
    put_header(header, f);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return diag_fail(d, CRUN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    static const uint8_t zeros[CRUNFILE_BLOB_ALIGN];
    bool ok = fwrite(header, 1, sizeof header, fp) == sizeof header && fwrite(w->buf, 1, w->n, fp) == w->n;
    size_t pad = (size_t)(f->blobs_offset - f->tables_offset - w->n);
    ok = ok && fwrite(zeros, 1, pad, fp) == pad;
    for (size_t i = 0; ok && i < w->n_blobs; i++) {
        size_t gap = align_up(w->blobs[i].bytes, CRUNFILE_BLOB_ALIGN) - w->blobs[i].bytes;
        ok = (w->blobs[i].bytes == 0 || fwrite(w->blobs[i].data, 1, w->blobs[i].bytes, fp) == w->blobs[i].bytes) &&
             fwrite(zeros, 1, gap, fp) == gap;
    }
    if (fclose(fp) != 0)
        ok = false;
    if (!ok) {
        remove(path);
        return diag_fail(d, CRUN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return CRUN_OK;
}

crun_status crunfile_set_workspace(const char *path, uint64_t workspace_bytes, Diag *d)
{
    uint8_t h[CRUNFILE_HEADER_BYTES];
    FILE *fp = fopen(path, "r+b");
    bool ok = fp && fread(h, 1, sizeof h, fp) == sizeof h;
    if (ok) {
        memcpy(h + 24 + 8 * 8, &workspace_bytes, 8); /* the ninth u64 (see put_header) */
        uint64_t sum = crunfile_checksum(h, CRUNFILE_HEADER_BYTES - 8);
        memcpy(h + CRUNFILE_HEADER_BYTES - 8, &sum, 8);
        ok = fseek(fp, 0, SEEK_SET) == 0 && fwrite(h, 1, sizeof h, fp) == sizeof h;
    }
    if (fp && fclose(fp) != 0)
        ok = false;
    return ok ? CRUN_OK : diag_fail(d, CRUN_ERR_IO, "%s: cannot update the header: %s", path, strerror(errno));
}

/* The checksum of the blob section as it lies on disk: each blob, then zeros to 64. */
static uint64_t blobs_checksum(const Writer *w)
{
    Checksum c;
    checksum_init(&c);
    for (size_t i = 0; i < w->n_blobs; i++) {
        size_t whole = w->blobs[i].bytes / 32 * 32, span = align_up(w->blobs[i].bytes, CRUNFILE_BLOB_ALIGN);
        uint8_t tail[128] = {0};
        checksum_blocks(&c, w->blobs[i].data, whole);
        if (span > whole) {
            memcpy(tail, (const uint8_t *)w->blobs[i].data + whole, w->blobs[i].bytes - whole);
            checksum_blocks(&c, tail, span - whole);
        }
    }
    return checksum_finish(&c, NULL, 0);
}

crun_status crunfile_write(const crun_model *m, const Plan *p, Isa isa, uint64_t workspace_bytes, const char *path,
                           Diag *d)
{
    bool *packed = packed_values(m->graph, p);
    Writer w = {.plan = p, .main = m->graph, .packed = packed, .oom = !packed};
    put_model(&w, m);
    put_packs(&w, m->graph->packs);
    put_offsets(&w, p);
    crun_status st = w.oom ? diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory writing the compiled model") : CRUN_OK;
    CrunFileHeader f = {.format = CRUNFILE_FORMAT, .isa = isa, .threads = p->n_threads};
    if (st == CRUN_OK) {
        snprintf(f.build, sizeof f.build, "%s", crunfile_build_id());
        snprintf(f.arch, sizeof f.arch, "%s", crunfile_arch());
        f.tables_offset = CRUNFILE_HEADER_BYTES;
        f.tables_bytes = w.n;
        f.tables_sum = crunfile_checksum(w.buf, w.n);
        f.blobs_offset = align_up(CRUNFILE_HEADER_BYTES + w.n, CRUNFILE_BLOB_ALIGN);
        f.blobs_bytes = w.blob_end;
        f.file_bytes = f.blobs_offset + f.blobs_bytes;
        f.arena_bytes = p->arena_bytes;
        f.workspace_bytes = workspace_bytes;
        f.blobs_sum = blobs_checksum(&w);
    }
    if (st == CRUN_OK)
        st = write_file(path, &w, &f, d);
    free(packed);
    free(w.buf);
    free(w.blobs);
    free(w.node_ids);
    return st;
}
