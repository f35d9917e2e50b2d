/* spatial.h - the sliding window shared by Conv and the pooling ops: its attributes
 * (kernel_shape, strides, dilations, pads, auto_pad) and the output size and padding per
 * spatial axis (ONNX Conv / MaxPool / AveragePool specs). 1-D and 2-D windows are held as
 * 3-D ones with leading unit axes. */
#ifndef CRUN_OPS_SPATIAL_H
#define CRUN_OPS_SPATIAL_H

#include "ops/registry.h"
#include "platforms/window.h"

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

/* Largest kernel size, stride, dilation or pad accepted: with spatial dims <= CRUN_MAX_NUMEL
 * (2^40), every window computation stays far from int64 overflow. */
#define SPATIAL_ATTR_MAX ((int64_t)INT32_MAX)

typedef struct WindowAttrs {
    int auto_pad;
    int n_kernel, n_strides, n_dilations, n_pads;
    int64_t kernel[3], strides[3], dilations[3], pads[6];
} WindowAttrs;

typedef struct WindowGeom {
    int nsp; /* spatial axes of the model's tensors (1 to 3) */
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
    int64_t in_vol, out_vol, k_vol;
} WindowGeom;

/* Parses and checks the window attributes (strides and dilations >= 1, pads >= 0, all at
 * most SPATIAL_ATTR_MAX). */
crun_status window_attrs_parse(Node *n, WindowAttrs *w, Diag *d);

/* Output size along one axis; sets the begin and end padding. ceil_mode rounds the window
 * count up, dropping a last window that would start inside the end padding (as PyTorch and
 * ONNX Runtime do). Returns <= 0 when the window does not fit. */
int64_t spatial_out(int64_t in, int64_t k, int64_t s, int64_t d, int auto_pad, int64_t pads_b, int64_t pads_e,
                    bool ceil_mode, int64_t *pb, int64_t *pe);

/* Fills g for nsp spatial input sizes in[] and kernel sizes k[]; returns a message (in buf
 * or static) when the attributes do not fit these shapes, NULL when all is well. */
const char *window_geom(const WindowAttrs *w, int nsp, const int64_t *in, const int64_t *k, bool ceil_mode,
                        WindowGeom *g, char *buf, size_t size);

/* Sets the geometry of wp to g's last two axes for the SIMD window kernels (data pointers
 * left NULL); false when those kernels do not take g (dilation, window or stride too big). */
bool window_plane_init(const WindowGeom *g, WindowPlane *wp);
/* Bytes of scratch (a whole number of aligned blocks) one thread needs for g's planes. */
size_t window_plane_scratch_bytes(const WindowGeom *g);

/* The channel-block kernels (WindowBlock) for g's last two axes: whether they suit it
 * better than the plane kernels (narrow rows, or a stride; windows up to WINDOW_MAX_K),
 * the block's geometry (data pointers NULL), the output rows of one band (the scratch of
 * a band stays near an L2 cache), a band of it, and a thread's scratch bytes. */
bool window_block_suits(const WindowGeom *g);
WindowBlock window_block_init(const WindowGeom *g);
int64_t window_block_band(const WindowBlock *full);
WindowBlock window_block_band_of(const WindowBlock *full, int64_t oy0, int64_t rows);
size_t window_block_scratch_bytes(const WindowGeom *g);

/* The window of a MaxPool/AveragePool/LpPool node (its params parsed) over input x, for
 * backends that translate the node; false when x does not fit it. */
bool pool_window_known(const Node *n, const Tensor *x, WindowGeom *w);

#endif
