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
crun_status xnn_form_regions(Plan *p, Diag *d);

#endif
