/* spatial.h - output size and padding of a sliding window along one spatial axis, the
 * rule Conv and the pooling ops share (ONNX Conv / MaxPool / AveragePool specs). */
#ifndef CRUN_OPS_SPATIAL_H
#define CRUN_OPS_SPATIAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

/* Parses an auto_pad value; -1 when unknown. */
static inline int auto_pad_parse(const char *s)
{
    if (!s[0] || strcmp(s, "NOTSET") == 0)
        return PAD_NOTSET;
    if (strcmp(s, "SAME_UPPER") == 0)
        return PAD_SAME_UPPER;
    if (strcmp(s, "SAME_LOWER") == 0)
        return PAD_SAME_LOWER;
    if (strcmp(s, "VALID") == 0)
        return PAD_VALID;
    return -1;
}

/* in: input size, k: kernel size, s: stride, d: dilation, pads_b/pads_e: explicit pads
 * (used with PAD_NOTSET). Sets *pb, *pe and returns the output size (may be <= 0 when the
 * window does not fit). ceil_mode rounds the window count up, dropping a last window
 * that would start inside the end padding (as PyTorch and ONNX Runtime do). */
static inline int64_t spatial_out(int64_t in, int64_t k, int64_t s, int64_t d, int auto_pad, int64_t pads_b,
                                  int64_t pads_e, bool ceil_mode, int64_t *pb, int64_t *pe)
{
    int64_t ek = (k - 1) * d + 1;
    if (auto_pad == PAD_SAME_UPPER || auto_pad == PAD_SAME_LOWER) {
        int64_t out = (in + s - 1) / s;
        int64_t total = (out - 1) * s + ek - in;
        if (total < 0)
            total = 0;
        *pb = auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
        *pe = total - *pb;
        return out;
    }
    *pb = auto_pad == PAD_VALID ? 0 : pads_b;
    *pe = auto_pad == PAD_VALID ? 0 : pads_e;
    int64_t span = in + *pb + *pe - ek;
    if (span < 0)
        return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + *pb)
        out--;
    return out;
}

#endif
