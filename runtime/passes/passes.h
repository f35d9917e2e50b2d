/* passes.h - graph rewrites run once at load. Each pass is one file with one entry point;
 * passes.c holds the list and its order. */
#ifndef CRUN_PASSES_H
#define CRUN_PASSES_H

#include "runtime/graph.h"

crun_status pass_remove_identity(Graph *g, Diag *d);
crun_status pass_fold_constants(Graph *g, Diag *d);
/* Folding that leaves DequantizeLinear nodes for pass_fuse_qdq to match. */
crun_status pass_fold_constants_keep_dq(Graph *g, Diag *d);
crun_status pass_fuse_qdq(Graph *g, Diag *d);
crun_status pass_fold_batchnorm(Graph *g, Diag *d);
crun_status pass_fuse_layernorm(Graph *g, Diag *d);
crun_status pass_fuse_bias(Graph *g, Diag *d);
crun_status pass_fuse_activation(Graph *g, Diag *d);
crun_status pass_remove_dead(Graph *g, Diag *d);

/* Runs every pass in order on g and its subgraphs. */
crun_status passes_run(Graph *g, Diag *d);

/* ---- helpers shared by the passes ---- */

/* A constant value as a tensor view (data owned by the graph). */
static inline Tensor value_tensor(const Value *v)
{
    Tensor t = {.dtype = v->dtype, .rank = v->rank, .data = v->data};
    for (int i = 0; i < v->rank; i++)
        t.dims[i] = v->dims[i];
    return t;
}
static inline bool value_is_const(const Graph *g, int v) { return v >= 0 && (g->values[v].flags & VALUE_IS_CONST); }
/* Adds an anonymous constant value that takes ownership of t->data; returns its id or -1. */
int graph_add_const(Graph *g, const char *base_name, Tensor *t);
/* Node index of the only consumer of value v, or -1 when v has another use, is a graph
 * output or is captured by a subgraph. */
int single_consumer(const Graph *g, const Uses *u, int v);
/* True when n is a live node of op in the default domain (false for NULL). */
bool node_is(const Node *n, const char *op);
/* The other operand of n, a two-input, one-output node of op one of whose operands is v;
 * -1 when n is not such a node. */
int other_operand(const Node *n, const char *op, int v);
/* The value of v when it is a one-element float constant. */
bool scalar_const(const Graph *g, int v, float *out);
/* Appends what to n->fused ("Add+Relu"), for crun info. */
void note_fused(Node *n, const char *what);

#endif
