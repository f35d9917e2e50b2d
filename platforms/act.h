/* act.h - vectorised activations (platforms/simd/act.inc, built per ISA). */
#ifndef CRUN_PLATFORMS_ACT_H
#define CRUN_PLATFORMS_ACT_H

#include "platforms/cpu.h"
#include "runtime/graph.h"

/* y[i] = act(x[i]) for i < n; y may be x. */
typedef void (*ActVecFn)(const Activation *a, float *y, const float *x, int64_t n);

/* The best vector version this CPU allows (under the CRUN_ISA limit), NULL for none: then
 * the scalar functions of ops/activation.h are the ones to use. */
ActVecFn act_vec_best(void);
/* The vector version built for isa (NULL if none is built for it). */
ActVecFn act_vec_for(Isa isa);

#endif
