/* eval.h - evaluating one node outside a plan: used to fold constants at load and at
 * plan time, so folded values come from the very kernels a run would use. */
#ifndef CRUN_EVAL_H
#define CRUN_EVAL_H

#include "ops/registry.h"

/* Infers out[]'s shapes from in[] (NULL entries are omitted inputs/outputs), allocates
 * each out[i].data (free with tensor_data_free) and runs the node's kernel on one
 * thread. On failure no output data is left allocated. */
crun_status node_eval(const Node *n, const Tensor *const *in, int n_in, Tensor *const *out, int n_out, Diag *d);

/* Runs op->infer for a node (the shared part of eval and planning). */
crun_status node_infer(const Node *n, const Tensor *const *in, int n_in, Tensor *const *out, int n_out,
                       bool *needs_data, Diag *d);

#endif
