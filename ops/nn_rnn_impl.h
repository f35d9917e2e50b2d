/* nn_rnn_impl.h - the RNN / GRU / LSTM time loop, written once for a real type.
 *
 * Included by rnn.c once per instantiation with
 *   RNN_T    the element type the loop computes in (float or double),
 *   RNN_SFX  a suffix naming the instantiation,
 * after defining `static void RNN_NAME(mm)(const RnnRun *r, const RNN_NAME(Bufs) *b, int which, int d,
 * int64_t M, const RNN_T *a, int64_t lda, RNN_T *c, int64_t ldc, const RNN_T *bias)` is declared
 * here and defined by the includer: C[M x N] = A[M x K] . Wm^T (+ bias per column), where the
 * weight Wm (N x K, row-major, as ONNX stores W and R) is chosen by `which` and direction d.
 * Activations are evaluated in double (rnn_act) whatever RNN_T is. */

#define RNN_CAT2(a, b) a##_##b
#define RNN_CAT(a, b) RNN_CAT2(a, b)
#define RNN_NAME(x) RNN_CAT(x, RNN_SFX)

/* Typed views of the inputs, outputs and scratch. Optional ones are NULL. */
typedef struct RNN_NAME(Bufs) {
    const RNN_T *x, *w, *r, *bias, *p, *h0, *c0;
    RNN_T *y, *yh, *yc;
    RNN_T *xw;           /* [T*B][G*H] input projections (+ biases) in X's row order */
    RNN_T *hr;           /* [B][G*H] recurrent projections of one step */
    RNN_T *h, *c;        /* [B][H] state */
    RNN_T *tmp;          /* [B][H] GRU: the operand of the hidden gate's recurrent product */
    RNN_T *hrh;          /* [B][H] GRU: that product */
    RNN_T *bsum;         /* [G*H] Wb + Rb (GRU: Rb of the hidden gate kept apart) */
    const int64_t *lens; /* [B] */
} RNN_NAME(Bufs);

static void RNN_NAME(mm)(const RnnRun *r, const RNN_NAME(Bufs) * b, int which, int d, int64_t M, const RNN_T *a,
                         int64_t lda, RNN_T *c, int64_t ldc, const RNN_T *bias);

static inline double RNN_NAME(clip)(const RnnParams *p, double v)
{
    if (p->has_clip)
        v = v < -p->clip ? -p->clip : v > p->clip ? p->clip : v;
    return v;
}

/* One LSTM or plain RNN cell update for batch row bb (gates in ONNX order i, o, f, c). */
static void RNN_NAME(cell)(const RnnRun *r, const RNN_NAME(Bufs) * b, int d, const RNN_T *xw, int64_t bb)
{
    const RnnParams *p = r->p;
    const RnnAct *act = p->acts[d];
    int64_t H = r->H;
    const RNN_T *hr = b->hr + bb * r->G * H;
    RNN_T *h = b->h + bb * H, *c = b->c + bb * H;
    if (p->kind == RNN_KIND_RNN) {
        for (int64_t j = 0; j < H; j++)
            h[j] = (RNN_T)rnn_act(&act[0], RNN_NAME(clip)(p, (double)xw[j] + hr[j]));
        return;
    }
    const RNN_T *pi = b->p ? b->p + d * 3 * H : NULL;
    for (int64_t j = 0; j < H; j++) {
        double cp = c[j];
        double ig = rnn_act(&act[0], RNN_NAME(clip)(p, (double)xw[j] + hr[j] + (pi ? pi[j] * cp : 0.0)));
        double fg = p->input_forget ? 1.0 - ig
                                    : rnn_act(&act[0], RNN_NAME(clip)(p, (double)xw[2 * H + j] + hr[2 * H + j] +
                                                                             (pi ? pi[2 * H + j] * cp : 0.0)));
        double cg = rnn_act(&act[1], RNN_NAME(clip)(p, (double)xw[3 * H + j] + hr[3 * H + j]));
        double cn = fg * cp + ig * cg;
        double og = rnn_act(&act[0], RNN_NAME(clip)(p, (double)xw[H + j] + hr[H + j] + (pi ? pi[H + j] * cn : 0.0)));
        c[j] = (RNN_T)cn;
        h[j] = (RNN_T)(og * rnn_act(&act[2], cn));
    }
}

/* Time step t of batch row bb for each active row, or -1 when the row's sequence ended. */
static inline int64_t RNN_NAME(step_time)(const RnnRun *r, const RNN_NAME(Bufs) * b, bool reverse, int64_t s,
                                          int64_t bb)
{
    int64_t len = b->lens[bb];
    if (s >= len)
        return -1;
    return reverse ? len - 1 - s : s;
}

/* GRU step: gates z, r, then the hidden gate, whose recurrent product needs r first. */
static void RNN_NAME(gru_step)(const RnnRun *r, const RNN_NAME(Bufs) * b, int d, bool reverse, int64_t s)
{
    const RnnParams *p = r->p;
    const RnnAct *act = p->acts[d];
    int64_t H = r->H, GH = 3 * H, B = r->B;
    const RNN_T *rbh = b->bias ? b->bias + d * 2 * GH + GH + 2 * H : NULL;
    RNN_NAME(mm)(r, b, RNN_MM_RZR, d, B, b->h, H, b->hr, GH, NULL);
    for (int64_t bb = 0; bb < B; bb++) {
        int64_t t = RNN_NAME(step_time)(r, b, reverse, s, bb);
        RNN_T *hr = b->hr + bb * GH, *h = b->h + bb * H, *tmp = b->tmp + bb * H;
        if (t < 0) {
            memset(tmp, 0, (size_t)H * sizeof *tmp);
            continue;
        }
        const RNN_T *xw = b->xw + rnn_x_row(r, t, bb) * GH;
        for (int64_t j = 0; j < 2 * H; j++) /* z then r, activated in place */
            hr[j] = (RNN_T)rnn_act(&act[0], RNN_NAME(clip)(p, (double)xw[j] + hr[j]));
        for (int64_t j = 0; j < H; j++)
            tmp[j] = p->linear_before_reset ? h[j] : (RNN_T)((double)hr[H + j] * h[j]);
    }
    RNN_NAME(mm)(r, b, RNN_MM_RH, d, B, b->tmp, H, b->hrh, H, NULL);
    for (int64_t bb = 0; bb < B; bb++) {
        int64_t t = RNN_NAME(step_time)(r, b, reverse, s, bb);
        if (t < 0)
            continue;
        const RNN_T *xw = b->xw + rnn_x_row(r, t, bb) * GH, *hr = b->hr + bb * GH, *hrh = b->hrh + bb * H;
        RNN_T *h = b->h + bb * H;
        for (int64_t j = 0; j < H; j++) {
            double rec = (double)hrh[j] + (rbh ? rbh[j] : 0.0);
            if (p->linear_before_reset)
                rec *= hr[H + j];
            double hh = rnn_act(&act[1], RNN_NAME(clip)(p, (double)xw[2 * H + j] + rec));
            double z = hr[j];
            h[j] = (RNN_T)((1.0 - z) * hh + z * h[j]);
        }
    }
}

static void RNN_NAME(store_step)(const RnnRun *r, const RNN_NAME(Bufs) * b, int d, bool reverse, int64_t s)
{
    if (!b->y)
        return;
    for (int64_t bb = 0; bb < r->B; bb++) {
        int64_t t = RNN_NAME(step_time)(r, b, reverse, s, bb);
        if (t >= 0)
            memcpy(b->y + rnn_y_off(r, t, d, bb), b->h + bb * r->H, (size_t)r->H * sizeof(RNN_T));
    }
}

static void RNN_NAME(direction)(const RnnRun *r, const RNN_NAME(Bufs) * b, int d)
{
    const RnnParams *p = r->p;
    int64_t H = r->H, GH = r->G * H, B = r->B;
    bool reverse = p->direction == RNN_DIR_REVERSE || (p->direction == RNN_DIR_BIDI && d == 1);
    for (int64_t j = 0; j < GH; j++) {
        double v = 0.0;
        if (b->bias) {
            v = b->bias[d * 2 * GH + j];
            if (p->kind != RNN_KIND_GRU || j < 2 * H) /* GRU's Rbh is added in the step */
                v += b->bias[d * 2 * GH + GH + j];
        }
        b->bsum[j] = (RNN_T)v;
    }
    RNN_NAME(mm)(r, b, RNN_MM_W, d, r->T * B, b->x, r->I, b->xw, GH, b->bsum);
    for (int64_t bb = 0; bb < B; bb++) {
        int64_t so = rnn_state_off(r, d, bb);
        for (int64_t j = 0; j < H; j++) {
            b->h[bb * H + j] = b->h0 ? b->h0[so + j] : 0;
            b->c[bb * H + j] = b->c0 ? b->c0[so + j] : 0;
        }
    }
    for (int64_t s = 0; s < r->T; s++) {
        if (p->kind == RNN_KIND_GRU) {
            RNN_NAME(gru_step)(r, b, d, reverse, s);
        } else {
            RNN_NAME(mm)(r, b, RNN_MM_R, d, B, b->h, H, b->hr, GH, NULL);
            for (int64_t bb = 0; bb < B; bb++) {
                int64_t t = RNN_NAME(step_time)(r, b, reverse, s, bb);
                if (t >= 0)
                    RNN_NAME(cell)(r, b, d, b->xw + rnn_x_row(r, t, bb) * GH, bb);
            }
        }
        RNN_NAME(store_step)(r, b, d, reverse, s);
    }
    for (int64_t bb = 0; bb < B; bb++) {
        int64_t so = rnn_state_off(r, d, bb);
        if (b->yh)
            memcpy(b->yh + so, b->h + bb * H, (size_t)H * sizeof(RNN_T));
        if (b->yc)
            memcpy(b->yc + so, b->c + bb * H, (size_t)H * sizeof(RNN_T));
    }
}

/* All directions; Y must be zeroed by the caller (steps past a sequence's end stay 0). */
static void RNN_NAME(compute)(const RnnRun *r, const RNN_NAME(Bufs) * b)
{
    for (int d = 0; d < r->D; d++)
        RNN_NAME(direction)(r, b, d);
}

#undef RNN_NAME
#undef RNN_CAT
#undef RNN_CAT2
