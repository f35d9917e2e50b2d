/* peak.h - the FP32 fused multiply-add peak of one core, measured. */
#ifndef CRUN_PLATFORMS_PEAK_H
#define CRUN_PLATFORMS_PEAK_H

#include "platforms/cpu.h"

/* GFLOP/s of one core with the best allowed ISA (set in *isa), measured in ~0.1 s. */
double fma_peak_gflops(Isa *isa);

#endif
