/* train.h - a whole training run as `crun train` does it: float epochs, then optional
 * post-training quantization (calibrated observers) and quantization-aware epochs, the
 * exports, and a check that crun running the exported int8 model gives what the
 * trainer's fake-quantized forward pass gave. */
#ifndef CRUN_TRAINER_TRAIN_H
#define CRUN_TRAINER_TRAIN_H

#include "trainer/data.h"
#include "trainer/optim.h"

typedef struct TrainConfig {
    const char *spec_text;  /* the model description (see trainer.h) */
    const char *idx_dir;    /* IDX data (Fashion-MNIST layout), or NULL with the npy paths */
    const char *train_x, *train_y, *test_x, *test_y;
    int64_t train_limit, test_limit; /* use only the first samples (0: all) */
    int epochs, batch, threads;
    uint64_t seed;
    Optim optim;
    TrainLoss loss;
    Augment augment;
    int bn_freeze_epoch;    /* from this float epoch on BatchNorm uses running statistics (-1: never) */
    int qat_epochs;
    float qat_lr;           /* a restart of the rate for QAT, annealed to 0 by cosine; 0: the QAT epochs
                             * continue a cosine or step schedule, or take a tenth of a constant rate */
    float qat_freeze;       /* fraction of the QAT steps after which observers freeze */
    int ptq_batches;        /* calibration batches for the PTQ comparison (0: none) */
    const char *export_float, *export_int8, *export_ptq;
    const char *checkpoint, *resume;
    bool check;             /* run the int8 export through crun and compare */
    bool progress;          /* a bar per epoch on a terminal */
} TrainConfig;

void train_config_init(TrainConfig *c);

/* What the run measured. */
typedef struct TrainResult {
    double fp32_acc, ptq_acc, qat_acc; /* test accuracy (-1: not measured) */
    double samples_per_s;              /* training steps of the float epochs */
    int64_t agree, compared;           /* same class from crun and the trainer */
    int64_t max_step;                  /* largest logit difference in output steps */
    double test_loss;                  /* after the last epoch (-1: no test set) */
} TrainResult;

crun_status train_run(const TrainConfig *c, TrainResult *r, Diag *d);

#endif
