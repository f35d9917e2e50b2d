/* eval.c - one-node evaluation for constant folding. */
#include "runtime/eval.h"

#include <stdlib.h>
#include <string.h>

crun_status node_infer(const Node *n, const Tensor *const *in, int n_in, Tensor *const *out, int n_out,
                       bool *needs_data, Diag *d)
{
    InferCtx ic = {.node = n, .params = n->params, .n_in = n_in, .n_out = n_out, .in = in, .out = out, .d = d};
    if (!(n->op->flags & OPF_ANY_VALUE))
        for (int i = 0; i < n_in; i++)
            if (in[i] && (in[i]->kind != VALUE_TENSOR || in[i]->none))
                return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "input %d is %s, which this op does not take", i,
                                 in[i]->none ? "an optional without value" : "a sequence");
    for (int i = 0; i < n_out; i++)
        if (out[i]) {
            out[i]->dtype = CRUN_DTYPE_UNDEFINED;
            out[i]->rank = 0;
            out[i]->data = NULL;
            out[i]->kind = VALUE_TENSOR;
            out[i]->none = false;
            out[i]->seq = NULL;
        }
    crun_status st = n->op->infer(&ic);
    *needs_data = ic.needs_data;
    if (st != CRUN_OK || ic.needs_data)
        return st;
    for (int i = 0; i < n_out; i++) {
        if (!out[i])
            continue;
        if (out[i]->rank < 0 || out[i]->rank > CRUN_MAX_RANK)
            return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "output %d has rank %d (at most %d supported)", i,
                             out[i]->rank, CRUN_MAX_RANK);
        if (tensor_numel(out[i]) < 0)
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "output %d is too large", i);
        if (!dtype_is_valid(out[i]->dtype))
            return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "output %d has no type", i);
    }
    return CRUN_OK;
}

static void free_outputs(Tensor *const *out, int n_out)
{
    for (int i = 0; i < n_out; i++)
        if (out[i]) {
            tensor_data_free(out[i]->dtype, out[i]->data, tensor_numel(out[i]));
            out[i]->data = NULL;
        }
}

crun_status node_eval(const Node *n, const Tensor *const *in, int n_in, Tensor *const *out, int n_out, bool *done,
                      Diag *d)
{
    *done = false;
    bool needs_data = false;
    crun_status st = node_infer(n, in, n_in, out, n_out, &needs_data, d);
    if (st != CRUN_OK)
        return st;
    assert(!needs_data); /* every input has data here */
    if (!node_fold_is_cheap(n, in, out, n_out))
        return CRUN_OK; /* too heavy to do while loading: *done stays false */
    for (int i = 0; i < n_out; i++)
        if (out[i] && !(out[i]->data = mem_calloc_aligned(tensor_bytes(out[i])))) {
            free_outputs(out, n_out);
            return node_fail(n, d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        }
    PrepCtx pc = {.node = n, .params = n->params, .n_in = n_in, .n_out = n_out, .in = in,
                  .out = (const Tensor *const *)out, .n_threads = 1, .d = d};
    const KernelVariant *kv = op_choose_kernel(n->op, &pc);
    if (!kv) {
        free_outputs(out, n_out);
        return node_fail(n, d, CRUN_ERR_UNSUPPORTED, "no kernel for input type %s",
                         n_in && in[0] ? dtype_name(in[0]->dtype) : "?");
    }
    pc.kdata = kv->data;
    if (kv->prepare && (st = kv->prepare(&pc)) != CRUN_OK) {
        free_outputs(out, n_out);
        return st;
    }
    void *ws = pc.ws_bytes ? mem_alloc_aligned(pc.ws_bytes) : NULL;
    if (pc.ws_bytes && !ws) {
        mem_free(pc.state);
        free_outputs(out, n_out);
        return node_fail(n, d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    KernelCtx kc = {.node = n, .params = n->params, .n_in = n_in, .n_out = n_out, .in = in, .out = out,
                    .kdata = kv->data, .state = pc.state, .ws = ws, .pool = NULL, .d = d};
    st = node_outputs_empty(n, out, n_out) ? CRUN_OK : kv->run(&kc);
    mem_free(ws);
    mem_free(pc.state);
    if (st != CRUN_OK)
        free_outputs(out, n_out);
    /* Folding runs on constants: a failure there is a defect of the model itself. */
    if (st == CRUN_ERR_RUNTIME)
        st = d->status = CRUN_ERR_INVALID_MODEL;
    *done = st == CRUN_OK;
    return st;
}

/* Folding limits: about a tenth of a second of work and 64 MiB of results. */
#define FOLD_MAX_FLOPS ((int64_t)1 << 28)
#define FOLD_MAX_BYTES ((size_t)64 << 20)

bool node_outputs_empty(const Node *n, Tensor *const *out, int n_out)
{
    if (n->op->flags & OPF_KERNEL_SHAPES)
        return false;
    int seen = 0;
    for (int i = 0; i < n_out; i++) {
        if (!out[i])
            continue;
        if (out[i]->kind != VALUE_TENSOR || out[i]->none || tensor_numel(out[i]) != 0)
            return false;
        seen++;
    }
    return seen > 0;
}

bool node_fold_is_cheap(const Node *n, const Tensor *const *in, Tensor *const *out, int n_out)
{
    size_t bytes = 0;
    int64_t elems = 0;
    for (int i = 0; i < n_out; i++)
        if (out[i]) {
            bytes += tensor_bytes(out[i]);
            elems += tensor_numel(out[i]);
        }
    int64_t flops = n->op->flops ? n->op->flops(n, in, (const Tensor *const *)out) : elems;
    return bytes <= FOLD_MAX_BYTES && flops <= FOLD_MAX_FLOPS;
}
