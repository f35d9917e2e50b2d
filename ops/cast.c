/* cast.c - Cast between every numeric type and bool (strings come with the string ops).
 *
 * Integers convert through int64/uint64 (wrapping like C casts), floats through double;
 * float to integer truncates toward zero and saturates (NaN gives 0), where C would
 * leave the out-of-range case undefined. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/broadcast.h"
#include "ops/dtype_loops.h"
#include "runtime/sequence.h"

typedef struct CastParams {
    int64_t to;
} CastParams;

static inline uint64_t double_to_u64_wrap(double v)
{
    if (v != v)
        return 0;
    if (v >= 0)
        return v >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v;
    return (uint64_t)double_to_i64_sat(v);
}

/* Every type: suffix, storage T, class (F float, S signed, U unsigned, B bool), load. */
#define CAST_TYPES_A(X, ...) \
    X(f32, float, F, (double), __VA_ARGS__) \
    X(f64, double, F, (double), __VA_ARGS__) \
    X(f16, uint16_t, F, (double)fp16_to_f32, __VA_ARGS__) \
    X(bf16, uint16_t, F, (double)bf16_to_f32, __VA_ARGS__) \
    X(i8, int8_t, S, (int64_t), __VA_ARGS__) \
    X(i16, int16_t, S, (int64_t), __VA_ARGS__) \
    X(i32, int32_t, S, (int64_t), __VA_ARGS__) \
    X(i64, int64_t, S, (int64_t), __VA_ARGS__) \
    X(u8, uint8_t, U, (uint64_t), __VA_ARGS__) \
    X(u16, uint16_t, U, (uint64_t), __VA_ARGS__) \
    X(u32, uint32_t, U, (uint64_t), __VA_ARGS__) \
    X(u64, uint64_t, U, (uint64_t), __VA_ARGS__) \
    X(bool, uint8_t, B, (uint64_t), __VA_ARGS__)
/* The same list again: a macro cannot expand itself, and pairs need two levels. */
#define CAST_TYPES_B(X, ...) \
    X(f32, float, F, (double), __VA_ARGS__) \
    X(f64, double, F, (double), __VA_ARGS__) \
    X(f16, uint16_t, F, (double)fp16_to_f32, __VA_ARGS__) \
    X(bf16, uint16_t, F, (double)bf16_to_f32, __VA_ARGS__) \
    X(i8, int8_t, S, (int64_t), __VA_ARGS__) \
    X(i16, int16_t, S, (int64_t), __VA_ARGS__) \
    X(i32, int32_t, S, (int64_t), __VA_ARGS__) \
    X(i64, int64_t, S, (int64_t), __VA_ARGS__) \
    X(u8, uint8_t, U, (uint64_t), __VA_ARGS__) \
    X(u16, uint16_t, U, (uint64_t), __VA_ARGS__) \
    X(u32, uint32_t, U, (uint64_t), __VA_ARGS__) \
    X(u64, uint64_t, U, (uint64_t), __VA_ARGS__) \
    X(bool, uint8_t, B, (uint64_t), __VA_ARGS__)

/* Store a loaded value w (of the source class) into destination type T of class DC. */
#define STORE_f32(w, SC) ((float)(w))
#define STORE_f64(w, SC) ((double)(w))
#define STORE_f16(w, SC) f32_to_fp16((float)(w))
#define STORE_bf16(w, SC) f32_to_bf16((float)(w))
#define TO_INT_F(T, w) ((T)double_to_i64_sat((double)(w)))
#define TO_INT_S(T, w) ((T)(w))
#define TO_INT_U(T, w) ((T)(w))
#define TO_INT_B(T, w) ((T)(w))
#define TO_UINT_F(T, w) ((T)double_to_u64_wrap((double)(w)))
#define TO_UINT_S(T, w) ((T)(uint64_t)(w))
#define TO_UINT_U(T, w) ((T)(w))
#define TO_UINT_B(T, w) ((T)(w))
#define STORE_i8(w, SC) TO_INT_##SC(int8_t, w)
#define STORE_i16(w, SC) TO_INT_##SC(int16_t, w)
#define STORE_i32(w, SC) TO_INT_##SC(int32_t, w)
#define STORE_i64(w, SC) TO_INT_##SC(int64_t, w)
#define STORE_u8(w, SC) TO_UINT_##SC(uint8_t, w)
#define STORE_u16(w, SC) TO_UINT_##SC(uint16_t, w)
#define STORE_u32(w, SC) TO_UINT_##SC(uint32_t, w)
#define STORE_u64(w, SC) TO_UINT_##SC(uint64_t, w)
#define STORE_bool(w, SC) ((uint8_t)((w) != 0))

#define DEF_CAST_PAIR(dsfx, DT, DC, DLD, ssfx, ST, SC, SLD) \
    static void cast_##ssfx##_##dsfx(void *out, const void *const *in, const int64_t *s, int64_t n, \
                                     const void *arg) \
    { \
        const ST *a = in[0]; \
        DT *o = out; \
        (void)arg; \
        for (int64_t i = 0; i < n; i++) \
            o[i] = STORE_##dsfx(SLD(a[i]), SC); \
    }
#define DEF_CAST_FROM(ssfx, ST, SC, SLD, ...) CAST_TYPES_B(DEF_CAST_PAIR, ssfx, ST, SC, SLD)
CAST_TYPES_A(DEF_CAST_FROM)

#define CAST_ENTRY(dsfx, DT, DC, DLD, ssfx) [DT_##dsfx] = cast_##ssfx##_##dsfx,
#define CAST_ROW(ssfx, ST, SC, SLD, ...) [DT_##ssfx] = {CAST_TYPES_B(CAST_ENTRY, ssfx)},
static const BcastLoop cast_loops[DTYPE_SLOTS][DTYPE_SLOTS] = {CAST_TYPES_A(CAST_ROW)};

static crun_status parse_cast(Node *n, Diag *d)
{
    CastParams *p = params_alloc(n, sizeof *p, d);
    if (!p)
        return d->status;
    if (!node_attr(n, "to"))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "attribute 'to' is required");
    crun_status st = attr_get_int(n, "to", 0, &p->to, d);
    if (st == CRUN_OK && !dtype_is_valid((int)p->to))
        return node_fail(n, d, CRUN_ERR_INVALID_MODEL, "'to' is not a valid type (%lld)", (long long)p->to);
    return st;
}

static crun_status cast_infer(InferCtx *c)
{
    const CastParams *p = c->params;
    /* CastLike takes the target type from its second input. */
    crun_dtype to = c->n_in > 1 && c->in[1] ? c->in[1]->dtype : (crun_dtype)p->to;
    out_set(c->out[0], to, c->in[0]->rank, c->in[0]->dims);
    return CRUN_OK;
}

static crun_status parse_castlike(Node *n, Diag *d) { return params_alloc(n, sizeof(CastParams), d) ? CRUN_OK : d->status; }

static bool cast_applies(const PrepCtx *c, const void *kdata)
{
    return cast_loops[c->in[0]->dtype][c->out[0]->dtype] != NULL;
}

/* ---- to and from strings, with NumPy's spelling (the conformance data comes from it) ---- */

static bool is_string_cast(const PrepCtx *c, const void *kdata)
{
    crun_dtype a = c->in[0]->dtype, b = c->out[0]->dtype;
    return (a == CRUN_DTYPE_STRING) != (b == CRUN_DTYPE_STRING) || (a == CRUN_DTYPE_STRING && b == a);
}

/* Shortest decimal that reads back as the same value (as numpy prints floats), with ".0"
 * for whole numbers. */
static int format_float(char *buf, size_t size, double v, bool is_float32)
{
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (is_float32 ? (float)back == (float)v : back == v)
            break;
    }
    if (v == v && !strpbrk(buf, ".ein"))
        n += snprintf(buf + n, size - (size_t)n, ".0");
    return n;
}

static crun_status to_string_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        char buf[64];
        int len;
        if (x->dtype == CRUN_DTYPE_STRING) {
            const char *s = ((char *const *)x->data)[i];
            if (tensor_set_string(y, i, s, strlen(s)) != CRUN_OK)
                return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
            continue;
        }
        if (x->dtype == CRUN_DTYPE_BOOL)
            len = snprintf(buf, sizeof buf, "%s", ((const uint8_t *)x->data)[i] ? "True" : "False");
        else if (dtype_is_float(x->dtype))
            len = format_float(buf, sizeof buf, tensor_get_double(x, i), x->dtype != CRUN_DTYPE_DOUBLE);
        else if (x->dtype == CRUN_DTYPE_UINT64)
            len = snprintf(buf, sizeof buf, "%llu", (unsigned long long)((const uint64_t *)x->data)[i]);
        else
            len = snprintf(buf, sizeof buf, "%lld", (long long)tensor_get_int(x, i));
        if (tensor_set_string(y, i, buf, (size_t)len) != CRUN_OK)
            return node_fail(k->node, k->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return CRUN_OK;
}

static crun_status from_string_run(KernelCtx *k)
{
    const Tensor *x = k->in[0];
    Tensor *y = k->out[0];
    int64_t n = tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        const char *s = ((char *const *)x->data)[i];
        char *end;
        if (dtype_is_float(y->dtype)) {
            tensor_set_double(y, i, strtod(s, &end));
        } else if (y->dtype == CRUN_DTYPE_BOOL) {
            bool t = !strcmp(s, "True") || !strcmp(s, "true") || strtod(s, &end) != 0;
            tensor_set_int(y, i, t);
            end = (char *)s + strlen(s);
        } else {
            tensor_set_int(y, i, strtoll(s, &end, 10));
        }
        if (end == s && *s)
            return node_fail(k->node, k->d, CRUN_ERR_RUNTIME, "'%s' is not a number", s);
    }
    return CRUN_OK;
}

static crun_status string_cast_run(KernelCtx *k)
{
    return k->out[0]->dtype == CRUN_DTYPE_STRING ? to_string_run(k) : from_string_run(k);
}

static crun_status cast_run(KernelCtx *k)
{
    BcastLoop loop = cast_loops[k->in[0]->dtype][k->out[0]->dtype];
    BcastPlan bp;
    bcast_plan(&bp, k->out[0], k->in, 1);
    bcast_run(&bp, k->out[0], k->in, loop, NULL, k->pool);
    return CRUN_OK;
}

static int64_t cast_flops(const Node *n, const Tensor *const *in, const Tensor *const *out) { return 0; }

static const KernelVariant cast_kernels[] = {{"cast_ref", ISA_SCALAR, cast_applies, NULL, cast_run, NULL},
                                             {"cast_string", ISA_SCALAR, is_string_cast, NULL, string_cast_run, NULL},
                                             {0}};
const OpDesc op_Cast = {"", "Cast", 1, 1, 1, 1, 0, parse_cast, cast_infer, cast_flops, cast_kernels};
const OpDesc op_CastLike = {"", "CastLike", 2, 2, 1, 1, 0, parse_castlike, cast_infer, cast_flops, cast_kernels};
