/* trainer.h - the companion trainer: a small network of layers (described by a text
 * spec), reverse-mode gradients layer by layer, optimizers, quantization-aware training
 * whose fake quantization is quant/'s arithmetic, and export to ONNX.
 *
 * A Net holds its layers in topological order; each layer reads one or two earlier
 * layers' outputs. Activations are NCHW float buffers sized for the batch; every layer
 * has an output buffer and a gradient buffer of the same size, except aliases of their
 * input's (a BatchNorm folded into its conv or a Dropout dropped for QAT, and a ReLU
 * computed inside the integer layer before it). Work on a batch splits over the worker
 * pool in fixed chunks, so results do not depend on the thread count. */
#ifndef CRUN_TRAINER_TRAINER_H
#define CRUN_TRAINER_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core.h"

struct ThreadPool;

typedef enum LayerKind {
    LAYER_INPUT,
    LAYER_CONV,
    LAYER_LINEAR,
    LAYER_BN,
    LAYER_ACT,
    LAYER_MAXPOOL,
    LAYER_AVGPOOL,
    LAYER_GAP,
    LAYER_FLATTEN,
    LAYER_DROPOUT,
    LAYER_ADD,
    LAYER_CONCAT,
    LAYER_IDENTITY, /* a BatchNorm folded into its conv, a Dropout dropped for QAT */
} LayerKind;

typedef enum TrainAct { TACT_RELU, TACT_RELU6, TACT_LEAKY, TACT_SIGMOID, TACT_TANH, TACT_GELU } TrainAct;

/* Per-sample shape (a vector is c x 1 x 1). */
typedef struct TShape {
    int c, h, w;
} TShape;

static inline int64_t tshape_size(TShape s) { return (int64_t)s.c * s.h * s.w; }

/* A learnable tensor with its gradient and the optimizer's moments. */
typedef struct Param {
    float *w, *g, *m, *v;
    int64_t n;
} Param;

/* Fake quantization of one tensor: a range observer (exponential moving average of the
 * batch min and max) and the parameters it gives. */
typedef struct Observer {
    char name[32]; /* the exported tensor it quantizes */
    float lo, hi;
    bool seen, frozen;
    float scale;
    int32_t zp;
} Observer;

/* QAT state of a layer. */
typedef struct LayerQuant {
    int out_obs;       /* observer of the output's quantization (-1: float) */
    bool integer;      /* conv/linear run as the runtime's integer kernel */
    int in_obs;        /* the input's observer (integer layers) */
    float lo, hi;      /* the fused activation's clamp, in real units (-inf..inf: none) */
    float *w_scale;    /* per output channel */
    float *wq;         /* the weights' quantized values (as floats) */
    float *w_fq;       /* and dequantized (the weights the backward pass uses) */
    int32_t *bias_q;   /* int32 bias at x_scale * w_scale */
    float *xq;         /* the input's quantized values minus zero point, [batch x in] */
    float *yi;         /* a slice's exact integer sums (as floats) */
    int32_t *acc;      /* the exact int32 sums (slices added) */
    float *mask;       /* where the gradient passes the quantizer (1) or not (0) */
    bool quantize;     /* a non-integer layer whose output is fake-quantized */
} LayerQuant;

typedef struct Layer {
    LayerKind kind;
    char name[32];
    int in[2], n_in;
    TShape out;
    /* conv: cout, kernel, stride, pad, groups; linear: cout; pools: k, stride, pad */
    int cout, k, stride, pad, groups;
    TrainAct act;
    float alpha; /* LeakyReLU slope; dropout probability */
    bool bias_on;
    Param weight, bias; /* BatchNorm: gamma, beta */
    float *run_mean, *run_var, momentum, eps;
    float *y, *dy;
    bool own_y;       /* y and dy are this layer's (not aliases) */
    float *save;      /* BatchNorm: x-hat; dropout: mask */
    float *stat;      /* BatchNorm: batch mean and 1/std per channel */
    int32_t *argmax;  /* MaxPool */
    bool need_dx;     /* whether any input wants a gradient */
    bool dy_set;      /* during backward: dy holds a value (else it is to be written) */
    LayerQuant q;
} Layer;

typedef enum TrainLoss { LOSS_CE, LOSS_MSE } TrainLoss;

typedef struct Net {
    char *spec;        /* the text it was parsed from */
    Layer *layers;
    int n;
    int batch;         /* the buffers' capacity in samples */
    int cur;           /* samples in the current batch */
    bool training;
    bool bn_frozen;    /* BatchNorm uses its running statistics while training */
    bool calibrating;  /* observers take min/max over batches run in eval mode (PTQ) */
    bool qat;
    Observer *obs;
    int n_obs;
    uint64_t seed, step;
    struct ThreadPool *pool;
    int threads;
    uint8_t *scratch;  /* per thread: im2col columns and GEMM workspace */
    size_t scratch_per;
    float *wpart;      /* per chunk: partial weight gradients of a conv */
    size_t wpart_per;
} Net;

/* Most layers a spec may have, so a net has at most TRAIN_MAX_PARAMS parameters (a
 * weight and a bias per layer) and callers can list them in fixed arrays. */
#define TRAIN_MAX_LAYERS 256
#define TRAIN_MAX_PARAMS (2 * TRAIN_MAX_LAYERS)

/* Chunks a batch is split into (a fixed number, so sums are grouped the same way for
 * every thread count). */
#define TRAIN_CHUNKS 8

/* ---- the spec: one layer per line ----
 *   input C [H W] | conv COUT K [stride=S] [pad=P|same] [groups=G] [bias=0] | linear N
 *   bn | relu | relu6 | leakyrelu [A] | sigmoid | tanh | gelu | maxpool K [stride=S] [pad=P]
 *   avgpool K [stride=S] [pad=P] | gap | flatten | dropout P | add NAME | concat NAME
 * Any line may carry name=NAME; add and concat read the previous layer and NAME.
 * '#' starts a comment. */
crun_status net_parse(const char *text, Net *net, Diag *d);
/* Allocates the buffers for batch samples and initialises weights (He for layers before
 * a ReLU-family activation, Xavier otherwise) from seed; threads 0 is one per core. */
crun_status net_build(Net *net, int batch, uint64_t seed, int threads, Diag *d);
void net_free(Net *net);
/* Parameters in a fixed order (weights then biases, layer by layer); out has room for
 * TRAIN_MAX_PARAMS. */
int net_params(Net *net, Param **out, int max);
int64_t net_param_count(Net *net);

/* Forward over the first cur samples of x (NCHW floats), returns the last layer's output. */
const float *net_forward(Net *net, const float *x, int cur);
/* Backward from dlogits (the loss gradient of the last output); fills every Param.g. */
void net_backward(Net *net, const float *dlogits);

/* Loss of the last forward's output against labels (CE: int class per sample; MSE:
 * target floats); writes its gradient to grad (cur x outputs); returns the mean loss and
 * adds correct predictions to *correct (CE only). */
float loss_eval(TrainLoss kind, const float *out, int cur, int k, const int32_t *labels, const float *targets,
                float *grad, int64_t *correct);

/* ---- layers (layers.c): forward and backward of one layer ---- */
void layer_forward(Net *net, Layer *l);
void layer_backward(Net *net, Layer *l);
/* The samples [s0, s1) of chunk t of the current batch. */
void layer_chunk_range(const Net *net, int64_t t, int *s0, int *s1);
/* The layer whose buffers hold l's output (l itself unless it is an alias). */
Layer *layer_owner(Net *net, Layer *l);
/* Convolution of x (layer l's input layout) with weights w over input channels
 * [ch0, ch0 + nch) of each group (w keeps the whole layer's row stride) into y. */
void conv_run(Net *net, Layer *l, const float *x, const float *w, int ch0, int nch, const float *bias, float *y);
/* Linear over input features [k0, k1) into y. */
void linear_run(Net *net, Layer *l, const float *x, const float *w, int64_t k0, int64_t k1, const float *bias,
                float *y);
/* The buffer a layer writes its input's gradient to, and whether it must add to it. */
float *layer_grad_in(Net *net, Layer *l, int i, bool *add);

/* ---- QAT (qat.c) ---- */
/* Prepares a trained net for quantization: folds every BatchNorm that follows a conv or
 * linear into it and drops Dropout (off in QAT, absent from the export); weights false
 * changes only the structure, for a checkpoint whose weights are folded already. */
void qat_fold(Net *net, bool weights);
/* Whether the net can be trained or calibrated in int8 (a clear error when not). */
crun_status qat_check(const Net *net, Diag *d);
/* Turns fake quantization on: observers at the tensors the QDQ export quantizes. */
crun_status qat_enable(Net *net, Diag *d);
void qat_freeze(Net *net);
/* Forgets the observed ranges (a new calibration or QAT phase). */
void qat_reset_observers(Net *net);
/* Forward of an integer conv/linear layer in QAT (quantized input, int32 accumulation,
 * requantized output: the runtime's QLinearConv/QLinearMatMul arithmetic). */
void qat_forward_integer(Net *net, Layer *l);
/* Fake-quantizes layer l's output in place when it is a quantization point. */
void qat_output(Net *net, Layer *l);
/* The output clamp mask for backward: gradients pass where the real value was inside
 * the quantized range. */
void qat_backward_mask(Net *net, Layer *l);

struct QdqPlan;
/* The observed range of each of the QDQ plan's targets; false if one has no observer. */
bool qat_ranges(const Net *net, const struct QdqPlan *p, float (*range)[2]);

/* ---- export (export.c) ---- */
/* The name of layer i's output in the exported model ("input" for the input; a folded
 * BatchNorm or a dropout has its input's). */
const char *net_tensor_name(const Net *net, int i);
/* Writes the float model (input "input" [N, C, H, W], output "output"). */
crun_status net_export_onnx(const Net *net, const char *path, Diag *d);
/* The float model's bytes (malloc'd). */
crun_status net_onnx_bytes(const Net *net, uint8_t **bytes, size_t *size, Diag *d);
/* The QDQ planner's targets for the float export (what an int8 export quantizes). */
crun_status net_qdq_plan(const Net *net, struct QdqPlan *p, Diag *d);
/* Writes the QDQ model with the QAT observers' ranges. */
crun_status net_export_qdq(const Net *net, const char *path, Diag *d);

#endif
