/* eval.h - evaluating one node outside a plan: used to fold constants at load and at
 * plan time, so folded values come from the very kernels a run would use. */
#ifndef CRUN_EVAL_H
#define CRUN_EVAL_H

#include "ops/registry.h"

/* Infers out[]'s shapes from in[] (NULL entries are omitted inputs/outputs), allocates
 * each out[i].data (free with tensor_data_free) and runs the node's kernel on one
 * thread; *done says it did. When the work is too heavy for load time (see
 * node_fold_is_cheap) it returns CRUN_OK with only the shapes inferred and *done false.
 * On failure no output data is left allocated. */
crun_status node_eval(const Node *n, const Tensor *const *in, int n_in, Tensor *const *out, int n_out, bool *done,
                      Diag *d);

/* Whether folding n (whose outputs in[]/out[] shapes are known) at load or plan time is
 * cheap enough: a model must not make loading take unbounded time or memory. Heavier
 * constant work is left to the run. */
bool node_fold_is_cheap(const Node *n, const Tensor *const *in, Tensor *const *out, int n_out);

/* Whether n has outputs and every one is an empty tensor: then its kernel has nothing to
 * write and is skipped (a kernel may still loop over the outer dims of an empty output). */
bool node_outputs_empty(const Node *n, Tensor *const *out, int n_out);

/* Runs op->infer for a node (the shared part of eval and planning). */
crun_status node_infer(const Node *n, const Tensor *const *in, int n_in, Tensor *const *out, int n_out,
                       bool *needs_data, Diag *d);

#endif
