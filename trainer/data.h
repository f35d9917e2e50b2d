/* data.h - training data: Fashion-MNIST's IDX files (gzip'd or not) and .npy arrays,
 * shuffled into mini-batches with optional augmentation. */
#ifndef CRUN_TRAINER_DATA_H
#define CRUN_TRAINER_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "trainer/trainer.h"

typedef struct Dataset {
    int64_t n;
    TShape shape;      /* per sample */
    float *x;          /* n x shape, floats (IDX bytes scaled to [0, 1]) */
    int32_t *labels;   /* class per sample (classification), or NULL */
    float *targets;    /* n x k_targets (regression), or NULL */
    int k_targets;
    int classes;       /* 1 + the largest label */
} Dataset;

/* dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. */
crun_status data_load_idx_dir(const char *dir, bool train, Dataset *ds, Diag *d);
/* x.npy: [n, C, H, W], [n, H, W] or [n, F] of float32 or uint8 (scaled to [0, 1]); y.npy:
 * n integer labels, or [n, k] float32 targets. */
crun_status data_load_npy(const char *x_path, const char *y_path, Dataset *ds, Diag *d);
void data_free(Dataset *ds);

/* Augmentation of training batches. */
typedef struct Augment {
    bool flip;  /* mirror left-right with probability 1/2 */
    int shift;  /* translate by up to shift pixels each way (zero fill) */
} Augment;

/* A permutation of [0, n) for epoch (Fisher-Yates from seed and epoch). */
void data_shuffle(int64_t *order, int64_t n, uint64_t seed, int epoch);
/* Copies samples order[0..count) into x (and their labels/targets), augmented when aug is
 * not NULL (its random choices from seed and the sample's position). */
void data_batch(const Dataset *ds, const int64_t *order, int count, const Augment *aug, uint64_t seed, float *x,
                int32_t *labels, float *targets);

#endif
