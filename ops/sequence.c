/* sequence.c - sequence and optional ops: SequenceConstruct, SequenceEmpty, SequenceAt,
 * SequenceInsert, SequenceErase, SequenceLength, SplitToSequence, ConcatFromSequence,
 * Optional, OptionalHasElement, OptionalGetElement.
 *
 * Sequences live outside the arena (their length is known only while running), so these
 * ops are always planned as dynamic steps and never folded; the executor hands each
 * sequence output an empty Sequence to fill (out->seq). */
#include <string.h>

#include "ops/registry.h"
#include "runtime/sequence.h"

typedef struct SeqParams {
    int64_t dtype;   /* SequenceEmpty */
    int64_t axis;    /* SplitToSequence, ConcatFromSequence */
    int64_t keepdims, new_axis;
    ValueKind opt_kind; /* Optional's type attribute */
    crun_dtype opt_dtype;
} SeqParams;

static crun_status parse_seq(Node *n, Diag *d)
{
    SeqParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    crun_status st = attr_get_int(n, "dtype", CRUN_DTYPE_FLOAT, &p->dtype, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "axis", 0, &p->axis, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "keepdims", 1, &p->keepdims, d);
    if (st == CRUN_OK)
        st = attr_get_int(n, "new_axis", 0, &p->new_axis, d);
    const Attr *t = node_attr(n, "type");
    if (t && t->type == ATTR_TYPE_PROTO) {
        p->opt_kind = t->tp_kind;
        p->opt_dtype = t->tp_dtype;
    }
    if (st == CRUN_OK && !dtype_is_valid((int)p->dtype))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'dtype' is not a valid type");
    return st;
}

static void set_sequence(Tensor *o, crun_dtype dtype)
{
    o->kind = VALUE_SEQUENCE;
    o->dtype = dtype;
    o->rank = 0;
}

/* Sequence inputs carry no items while planning: the step waits for the run. */
static bool need_items(InferCtx *c, const Tensor *s)
{
    if (s->seq || s->none)
        return false;
    c->needs_data = true;
    return true;
}

static crun_status check_seq_input(InferCtx *c, int i)
{
    NODE_CHECK(c, c->in[i] && c->in[i]->kind == VALUE_SEQUENCE, "input %d must be a sequence", i);
    return CRUN_OK;
}

/* Reads a scalar position input, normalised against len (insert allows len itself). */
static crun_status position(const KernelCtx *k, int idx, int len, bool insert, int *pos)
{
    const Tensor *p = k->n_in > idx ? k->in[idx] : NULL;
    int64_t v = p ? tensor_get_int(p, 0) : (insert ? len : len - 1);
    int64_t hi = insert ? len : len - 1;
    if (v < -len || v > hi)
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "position %lld is out of range for a sequence of %d",
                         (long long)v, len);
    *pos = (int)(v < 0 ? v + len : v);
    return CRUN_OK;
}

static crun_status oom(const KernelCtx *k) { return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory"); }

/* ---- SequenceConstruct / SequenceEmpty ---- */

static crun_status construct_infer(InferCtx *c)
{
    for (int i = 1; i < c->n_in; i++)
        NODE_CHECK(c, c->in[i]->dtype == c->in[0]->dtype, "input %d has type %s, input 0 has %s", i,
                   dtype_name(c->in[i]->dtype), dtype_name(c->in[0]->dtype));
    set_sequence(c->out[0], c->in[0]->dtype);
    return CRUN_OK;
}

static crun_status construct_run(KernelCtx *k)
{
    for (int i = 0; i < k->n_in; i++)
        if (seq_insert_copy(k->out[0]->seq, i, k->in[i]) != CRUN_OK)
            return oom(k);
    return CRUN_OK;
}

static crun_status empty_infer(InferCtx *c)
{
    const SeqParams *p = c->params;
    set_sequence(c->out[0], (crun_dtype)p->dtype);
    return CRUN_OK;
}

static crun_status empty_run(KernelCtx *k) { return CRUN_OK; }

/* ---- SequenceAt / SequenceLength ---- */

static crun_status at_infer(InferCtx *c)
{
    crun_status st = check_seq_input(c, 0);
    if (st != CRUN_OK || need_items(c, c->in[0]))
        return st;
    const Sequence *s = c->in[0]->seq;
    if (!c->in[1]->data) {
        c->needs_data = true;
        return CRUN_OK;
    }
    int64_t v = tensor_get_int(c->in[1], 0);
    NODE_CHECK(c, v >= -s->n && v < s->n, "position %lld is out of range for a sequence of %d", (long long)v, s->n);
    const Tensor *item = &s->items[v < 0 ? v + s->n : v];
    out_set(c->out[0], item->dtype, item->rank, item->dims);
    return CRUN_OK;
}

static crun_status at_run(KernelCtx *k)
{
    int pos = 0;
    crun_status st = position(k, 1, k->in[0]->seq->n, false, &pos);
    return st != CRUN_OK ? st : value_copy(k->out[0], &k->in[0]->seq->items[pos]) == CRUN_OK ? CRUN_OK : oom(k);
}

static crun_status length_infer(InferCtx *c)
{
    crun_status st = check_seq_input(c, 0);
    out_set(c->out[0], CRUN_DTYPE_INT64, 0, NULL);
    return st;
}

static crun_status length_run(KernelCtx *k)
{
    *(int64_t *)k->out[0]->data = k->in[0]->seq->n;
    return CRUN_OK;
}

/* ---- SequenceInsert / SequenceErase ---- */

static crun_status insert_infer(InferCtx *c)
{
    crun_status st = check_seq_input(c, 0);
    if (st != CRUN_OK)
        return st;
    NODE_CHECK(c, !c->in[0]->dtype || c->in[0]->dtype == c->in[1]->dtype, "inserting %s into a sequence of %s",
               dtype_name(c->in[1]->dtype), dtype_name(c->in[0]->dtype));
    set_sequence(c->out[0], c->in[1]->dtype);
    return CRUN_OK;
}

static crun_status insert_run(KernelCtx *k)
{
    Sequence *out = k->out[0]->seq;
    int pos = 0;
    crun_status st = position(k, 2, k->in[0]->seq->n, true, &pos);
    if (st != CRUN_OK)
        return st;
    if (seq_copy(out, k->in[0]->seq) != CRUN_OK || seq_insert_copy(out, pos, k->in[1]) != CRUN_OK)
        return oom(k);
    return CRUN_OK;
}

static crun_status erase_infer(InferCtx *c)
{
    crun_status st = check_seq_input(c, 0);
    set_sequence(c->out[0], c->in[0]->dtype);
    return st;
}

static crun_status erase_run(KernelCtx *k)
{
    Sequence *out = k->out[0]->seq;
    int pos = 0;
    crun_status st = position(k, 1, k->in[0]->seq->n, false, &pos);
    if (st != CRUN_OK)
        return st;
    if (seq_copy(out, k->in[0]->seq) != CRUN_OK)
        return oom(k);
    seq_erase(out, pos);
    return CRUN_OK;
}

/* ---- SplitToSequence ---- */

static crun_status split_infer(InferCtx *c)
{
    const SeqParams *p = c->params;
    const Tensor *x = c->in[0];
    NODE_CHECK(c, axis_normalize(p->axis, x->rank) >= 0, "axis %lld is out of range for rank %d", (long long)p->axis,
               x->rank);
    if (c->n_in > 1 && c->in[1]) {
        const Tensor *sp = c->in[1];
        NODE_CHECK(c, sp->rank <= 1 && (sp->dtype == CRUN_DTYPE_INT64 || sp->dtype == CRUN_DTYPE_INT32),
                   "'split' must be an int32/int64 scalar or 1-D tensor");
    }
    set_sequence(c->out[0], x->dtype);
    return CRUN_OK;
}

/* Appends x[.., start:start+len, ..] along axis as one item (axis squeezed if asked),
 * gathered into the scratch buffer first. */
static crun_status push_slice(KernelCtx *k, int axis, int64_t start, int64_t len, bool squeeze)
{
    const Tensor *x = k->in[0];
    if (x->dtype == CRUN_DTYPE_STRING)
        return node_fail(k->node, k->d, CRUN_ERR_UNSUPPORTED, "string tensors cannot be split into sequences");
    size_t es = dtype_size(x->dtype);
    int64_t outer = shape_numel(x->dims, axis), inner = shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    size_t row = (size_t)(len * inner) * es;
    for (int64_t o = 0; o < outer && row; o++)
        memcpy((char *)k->ws + (size_t)o * row, (const char *)x->data + (size_t)((o * x->dims[axis] + start) * inner) * es,
               row);
    Tensor item = {.dtype = x->dtype, .rank = x->rank, .data = k->ws};
    memcpy(item.dims, x->dims, sizeof item.dims);
    item.dims[axis] = len;
    if (squeeze) {
        memmove(&item.dims[axis], &item.dims[axis + 1], (size_t)(x->rank - axis - 1) * sizeof(int64_t));
        item.rank--;
    }
    Sequence *out = k->out[0]->seq;
    return seq_insert_copy(out, out->n, &item) == CRUN_OK ? CRUN_OK : oom(k);
}

static crun_status split_prepare(PrepCtx *c)
{
    c->ws_bytes = tensor_bytes(c->in[0]);
    return CRUN_OK;
}

static crun_status split_run(KernelCtx *k)
{
    const SeqParams *p = k->params;
    const Tensor *x = k->in[0], *sp = k->n_in > 1 ? k->in[1] : NULL;
    int axis = axis_normalize(p->axis, x->rank);
    int64_t dim = x->dims[axis];
    if (!sp) {
        for (int64_t i = 0; i < dim; i++) {
            crun_status st = push_slice(k, axis, i, 1, !p->keepdims);
            if (st != CRUN_OK)
                return st;
        }
        return CRUN_OK;
    }
    int64_t n = tensor_numel(sp), start = 0;
    if (sp->rank == 0) {
        int64_t chunk = tensor_get_int(sp, 0);
        if (chunk <= 0)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "split size %lld must be positive", (long long)chunk);
        for (; start < dim; start += chunk) {
            crun_status st = push_slice(k, axis, start, CRUN_MIN(chunk, dim - start), false);
            if (st != CRUN_OK)
                return st;
        }
        return CRUN_OK;
    }
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t len = tensor_get_int(sp, i);
        if (len < 0 || len > dim - total)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "split sizes do not add up to %lld", (long long)dim);
        total += len;
    }
    if (total != dim)
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "split sizes add up to %lld, not %lld", (long long)total,
                         (long long)dim);
    for (int64_t i = 0; i < n; i++) {
        int64_t len = tensor_get_int(sp, i);
        crun_status st = push_slice(k, axis, start, len, false);
        if (st != CRUN_OK)
            return st;
        start += len;
    }
    return CRUN_OK;
}

/* ---- ConcatFromSequence ---- */

static crun_status concat_infer(InferCtx *c)
{
    const SeqParams *p = c->params;
    crun_status st = check_seq_input(c, 0);
    if (st != CRUN_OK || need_items(c, c->in[0]))
        return st;
    const Sequence *s = c->in[0]->seq;
    NODE_CHECK(c, s->n > 0, "the sequence is empty");
    const Tensor *t0 = &s->items[0];
    int out_rank = t0->rank + (p->new_axis ? 1 : 0);
    int axis = axis_normalize(p->axis, out_rank);
    NODE_CHECK(c, axis >= 0, "axis %lld is out of range", (long long)p->axis);
    int64_t dims[CRUN_MAX_RANK];
    NODE_CHECK(c, out_rank <= CRUN_MAX_RANK, "result rank too large");
    for (int i = 0, j = 0; i < out_rank; i++)
        dims[i] = p->new_axis && i == axis ? 0 : t0->dims[j++];
    dims[axis] = 0; /* summed over the items below */
    for (int i = 0; i < s->n; i++) {
        const Tensor *t = &s->items[i];
        NODE_CHECK(c, t->rank == t0->rank, "item %d has rank %d, item 0 has %d", i, t->rank, t0->rank);
        for (int a = 0; a < t->rank; a++)
            NODE_CHECK(c, (!p->new_axis && a == axis) || t->dims[a] == t0->dims[a], "item %d differs in dim %d", i, a);
        dims[axis] += p->new_axis ? 1 : t->dims[axis];
    }
    out_set(c->out[0], t0->dtype, out_rank, dims);
    return CRUN_OK;
}

static crun_status concat_run(KernelCtx *k)
{
    const SeqParams *p = k->params;
    const Sequence *s = k->in[0]->seq;
    Tensor *o = k->out[0];
    int axis = axis_normalize(p->axis, o->rank);
    size_t es = dtype_size(o->dtype);
    int64_t outer = shape_numel(o->dims, axis);
    size_t out_row = (size_t)shape_numel(o->dims + axis, o->rank - axis) * es, col = 0;
    for (int i = 0; i < s->n; i++) {
        const Tensor *t = &s->items[i];
        /* With new_axis each item is one slice of the new axis. */
        size_t row = p->new_axis ? (size_t)tensor_numel(t) / (size_t)CRUN_MAX(outer, 1) * es
                                 : (size_t)shape_numel(t->dims + axis, t->rank - axis) * es;
        for (int64_t r = 0; r < outer && row; r++)
            memcpy((char *)o->data + (size_t)r * out_row + col, (const char *)t->data + (size_t)r * row, row);
        col += row;
    }
    return CRUN_OK;
}

/* ---- Optional ---- */

static crun_status optional_infer(InferCtx *c)
{
    const SeqParams *p = c->params;
    Tensor *o = c->out[0];
    const Tensor *x = c->n_in > 0 ? c->in[0] : NULL;
    if (!x) {
        NODE_CHECK(c, p->opt_kind == VALUE_SEQUENCE || p->opt_dtype, "an Optional without input needs 'type'");
        o->kind = p->opt_kind;
        o->dtype = p->opt_dtype;
        o->none = true;
        return CRUN_OK;
    }
    *o = *x;
    o->data = NULL;
    o->seq = NULL;
    return CRUN_OK;
}

static crun_status copy_run(KernelCtx *k)
{
    if (k->n_in == 0 || !k->in[0])
        return CRUN_OK;
    if (k->in[0]->none)
        return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "the optional input holds no value");
    return value_copy(k->out[0], k->in[0]) == CRUN_OK ? CRUN_OK : oom(k);
}

static crun_status has_element_infer(InferCtx *c)
{
    out_set(c->out[0], CRUN_DTYPE_BOOL, 0, NULL);
    return CRUN_OK;
}

static crun_status has_element_run(KernelCtx *k)
{
    const Tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    *(uint8_t *)k->out[0]->data = x && !x->none;
    return CRUN_OK;
}

static crun_status get_element_infer(InferCtx *c)
{
    const Tensor *x = c->in[0];
    if (x->none)
        return node_fail(c->node, c->d, CRUN_ERR_RUNTIME, "the optional input holds no value");
    Tensor *o = c->out[0];
    *o = *x;
    o->data = NULL;
    o->seq = NULL;
    return CRUN_OK;
}

#define SEQ_OP(id, name, min_in, max_in, infer, run, prepare) \
    static const KernelVariant id##_kernels[] = {{#id "_ref", ISA_SCALAR, NULL, prepare, run, NULL}, {0}}; \
    const OpDesc op_##id = {"", name, min_in, max_in, 1, 1, OPF_NO_FOLD | OPF_ANY_VALUE, parse_seq, infer, NULL, \
                            id##_kernels};

SEQ_OP(SequenceConstruct, "SequenceConstruct", 1, -1, construct_infer, construct_run, NULL)
SEQ_OP(SequenceEmpty, "SequenceEmpty", 0, 0, empty_infer, empty_run, NULL)
SEQ_OP(SequenceAt, "SequenceAt", 2, 2, at_infer, at_run, NULL)
SEQ_OP(SequenceLength, "SequenceLength", 1, 1, length_infer, length_run, NULL)
SEQ_OP(SequenceInsert, "SequenceInsert", 2, 3, insert_infer, insert_run, NULL)
SEQ_OP(SequenceErase, "SequenceErase", 1, 2, erase_infer, erase_run, NULL)
SEQ_OP(SplitToSequence, "SplitToSequence", 1, 2, split_infer, split_run, split_prepare)
SEQ_OP(ConcatFromSequence, "ConcatFromSequence", 1, 1, concat_infer, concat_run, NULL)
SEQ_OP(Optional, "Optional", 0, 1, optional_infer, copy_run, NULL)
SEQ_OP(OptionalHasElement, "OptionalHasElement", 0, 1, has_element_infer, has_element_run, NULL)
SEQ_OP(OptionalGetElement, "OptionalGetElement", 1, 1, get_element_infer, copy_run, NULL)
