/* optim.h - optimizers (SGD with momentum, Adam, AdamW) and learning-rate schedules. */
#ifndef CRUN_TRAINER_OPTIM_H
#define CRUN_TRAINER_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "trainer/trainer.h"

typedef enum OptimKind { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW } OptimKind;
typedef enum SchedKind { SCHED_CONST, SCHED_STEP, SCHED_COSINE } SchedKind;

typedef struct Optim {
    OptimKind kind;
    float lr, momentum, weight_decay, beta1, beta2, eps;
    int64_t t; /* steps taken (Adam's bias correction) */
    SchedKind sched;
    int step_epochs; /* SCHED_STEP: multiply by gamma every step_epochs epochs */
    float gamma;
} Optim;

/* SGD, lr 0.01, momentum 0.9, no decay, constant rate; Adam's betas 0.9 and 0.999. */
void optim_init(Optim *o);
/* The rate at a step: epoch counts from 0, progress in [0, 1] over the whole run. */
float optim_lr(const Optim *o, int epoch, double progress);
/* One update of every parameter from its gradient at rate lr. SGD follows the usual
 * form v = mu v + (g + wd w), w -= lr v; Adam adds wd w to the gradient; AdamW decays
 * the weights apart from it. */
void optim_step(Optim *o, Param *const *p, int n, float lr);

#endif
