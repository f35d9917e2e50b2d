/* onnx_functions.h - expanding calls of model-local functions into their bodies. */
#ifndef CRUN_LOADERS_ONNX_FUNCTIONS_H
#define CRUN_LOADERS_ONNX_FUNCTIONS_H

#include "onnx.pb-c.h"
#include "runtime/core.h"

/* A graph's node list after expansion: v may be the graph's own array (borrowed) or a new
 * one whose extra nodes live in allocs; free with node_list_free. */
typedef struct NodeList {
    Onnx__NodeProto **v;
    size_t n;
    Onnx__NodeProto **borrowed;
    void **allocs;
    size_t n_allocs;
} NodeList;

/* Replaces every call of a function of mp in nodes[0..n) by the function's body. */
crun_status onnx_expand_functions(const Onnx__ModelProto *mp, Onnx__NodeProto **nodes, size_t n, NodeList *out,
                                  Diag *d);
void node_list_free(NodeList *l);

#endif
