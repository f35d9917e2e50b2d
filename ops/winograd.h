/* winograd.h - Conv's Winograd F(4x4, 3x3) kernel (conv_winograd.c), for conv.c's table. */
#ifndef CRUN_OPS_WINOGRAD_H
#define CRUN_OPS_WINOGRAD_H

#include "ops/registry.h"

/* 2-D float32, constant weights, 3x3, stride 1, dilation 1, one group, big enough. */
bool winograd_applies(const PrepCtx *c);
crun_status winograd_prepare(PrepCtx *c);
crun_status winograd_run(KernelCtx *k);

#endif
