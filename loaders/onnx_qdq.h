/* onnx_qdq.h - rewriting an ONNX model into a standard QDQ model (the post-training
 * quantizer's output): which tensors to quantize, a copy of the model that exposes them
 * for calibration, and the model with QuantizeLinear/DequantizeLinear pairs on the
 * activations and int8 weights (per channel or per tensor, symmetric) plus int32 biases
 * under DequantizeLinear. Works on the protobuf message, so everything it does not touch
 * (opsets, metadata, other ops) is kept as it was. */
#ifndef CRUN_LOADERS_ONNX_QDQ_H
#define CRUN_LOADERS_ONNX_QDQ_H

#include "runtime/core.h"

/* An op whose weights become int8: Conv, MatMul or Gemm with a float initializer. */
typedef struct QdqOp {
    char *w, *b;     /* initializer names (b NULL when the op has none) */
    int x_target;    /* the target of its activation input */
    int w_axis;      /* the output-channel axis of the weights */
} QdqOp;

/* A tensor that gets a QuantizeLinear/DequantizeLinear pair. */
typedef struct QdqTarget {
    char *name;
    int tie; /* -1, or the target whose range this one copies (MaxPool, Flatten, Reshape: always a root, never a tie itself) */
} QdqTarget;

typedef struct QdqPlan {
    void *proto; /* the unpacked model */
    int opset;
    int n_targets, n_ops;
    QdqTarget *targets;
    QdqOp *ops;
    char **nodes; /* the nodes that compute in int8 (ops and quantized Add/GlobalAveragePool) */
    int n_nodes;
} QdqPlan;

/* Index of the target named name, or -1. */
int qdq_target_index(const QdqPlan *p, const char *name);

/* Finds the targets in the model bytes; nodes named in exclude stay float. */
crun_status qdq_plan_make(const void *data, size_t size, const char *const *exclude, int n_exclude, QdqPlan *p,
                          Diag *d);
void qdq_plan_free(QdqPlan *p);

/* The model with every target also a graph output (malloc'd bytes). */
crun_status qdq_calibration_model(const QdqPlan *p, uint8_t **bytes, size_t *size, Diag *d);

/* Rewrites p's model with range[i] = {lo, hi} for target i and writes it to path. Per
 * channel needs opset 13; older models get per-tensor weights. */
crun_status qdq_write(QdqPlan *p, const float (*range)[2], bool per_channel, const char *path, Diag *d);

#endif
