/* checkpoint.h - the training state in one file (spec, weights, optimizer moments,
 * BatchNorm statistics, QAT observers, epochs done), written at the end of each epoch so
 * `crun train --resume` continues where a run stopped. */
#ifndef CRUN_TRAINER_CHECKPOINT_H
#define CRUN_TRAINER_CHECKPOINT_H

#include "trainer/optim.h"
#include "trainer/trainer.h"

typedef struct CheckpointState {
    char *spec;       /* malloc'd */
    int epochs_done;  /* float epochs */
    int qat_done;     /* QAT epochs */
    bool qat;
} CheckpointState;

/* Writes path atomically (a temporary file renamed over it). */
crun_status checkpoint_save(const char *path, const Net *net, const Optim *o, int epochs_done, int qat_done, Diag *d);
/* Reads the spec and counters, to build the net before loading. */
crun_status checkpoint_peek(const char *path, CheckpointState *cs, Diag *d);
/* Loads the state into a net built from cs->spec (folding and enabling QAT first when
 * the checkpoint was taken during QAT). */
crun_status checkpoint_load(const char *path, Net *net, Optim *o, const CheckpointState *cs, Diag *d);

#endif
