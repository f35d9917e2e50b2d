/* region.h - the XNNPACK backend: runs of planned steps whose nodes XNNPACK supports
 * become one step each (a "region") that runs them as one XNNPACK runtime.
 *
 * Inside a region 4-D tensors are NHWC (XNNPACK's layout); the region's step converts its
 * inputs from crun's NCHW and its outputs back, so nothing else in the plan changes.
 * Values used only inside a region leave the arena (XNNPACK keeps its own). Weights are
 * re-laid out and packed by XNNPACK at plan time. */
#ifndef CRUN_XNNPACK_REGION_H
#define CRUN_XNNPACK_REGION_H

#include "runtime/plan.h"

/* Whether this build has the backend. */
bool xnn_backend_available(void);

/* Replaces each run of steps of p (shapes known, kernels chosen, before lifetimes) that
 * XNNPACK can run, and that holds a convolution or fully connected layer, by one region
 * step; runs XNNPACK refuses stay native. Fails only without memory, or when the build
 * has no XNNPACK (CRUN_ERR_UNSUPPORTED). */
crun_status xnn_form_regions(Plan *p, const XnnChoice *xc, Diag *d);

/* For a plan built with one region per node: times each node's XNNPACK runtime (the best
 * of a few runs, its boundary conversions left out) and sets allow[node] for the nodes
 * XNNPACK should run: the convolutions and fully connected layers it runs faster than
 * native_ms[node] says crun does, and every lighter node it takes (they join regions only
 * beside those). Returns whether any heavy node is allowed. */
bool xnn_choose_nodes(const Plan *single, const double *native_ms, uint8_t *allow);

#endif
