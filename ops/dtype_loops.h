/* dtype_loops.h - X-macros that stamp out one typed loop per element type.
 *
 * Each list entry is X(suffix, T, C, U, LD, ST): storage type T, compute type C, the
 * unsigned type U that signed arithmetic wraps through (C leaves signed overflow
 * undefined, ONNX wants two's complement), and load/store conversions (half types
 * compute in float). */
#ifndef CRUN_OPS_DTYPE_LOOPS_H
#define CRUN_OPS_DTYPE_LOOPS_H

#include "quant/fp16.h"

#define LD_ID(x) (x)
#define ST_ID(x) (x)

#define FOR_FLOAT_TYPES(X, ...) \
    X(f32, float, float, unsigned, LD_ID, ST_ID, __VA_ARGS__) \
    X(f64, double, double, unsigned, LD_ID, ST_ID, __VA_ARGS__) \
    X(f16, uint16_t, float, unsigned, fp16_to_f32, f32_to_fp16, __VA_ARGS__) \
    X(bf16, uint16_t, float, unsigned, bf16_to_f32, f32_to_bf16, __VA_ARGS__)

#define FOR_SIGNED_TYPES(X, ...) \
    X(i8, int8_t, int8_t, unsigned, LD_ID, ST_ID, __VA_ARGS__) \
    X(i16, int16_t, int16_t, unsigned, LD_ID, ST_ID, __VA_ARGS__) \
    X(i32, int32_t, int32_t, uint32_t, LD_ID, ST_ID, __VA_ARGS__) \
    X(i64, int64_t, int64_t, uint64_t, LD_ID, ST_ID, __VA_ARGS__)

#define FOR_UNSIGNED_TYPES(X, ...) \
    X(u8, uint8_t, uint8_t, unsigned, LD_ID, ST_ID, __VA_ARGS__) \
    X(u16, uint16_t, uint16_t, unsigned, LD_ID, ST_ID, __VA_ARGS__) \
    X(u32, uint32_t, uint32_t, uint32_t, LD_ID, ST_ID, __VA_ARGS__) \
    X(u64, uint64_t, uint64_t, uint64_t, LD_ID, ST_ID, __VA_ARGS__)

#define FOR_INT_TYPES(X, ...) FOR_SIGNED_TYPES(X, __VA_ARGS__) FOR_UNSIGNED_TYPES(X, __VA_ARGS__)
#define FOR_NUMERIC_TYPES(X, ...) FOR_FLOAT_TYPES(X, __VA_ARGS__) FOR_INT_TYPES(X, __VA_ARGS__)

/* dtype enum value of each suffix, for building tables indexed by crun_dtype. */
#define DT_f32 CRUN_DTYPE_FLOAT
#define DT_f64 CRUN_DTYPE_DOUBLE
#define DT_f16 CRUN_DTYPE_FLOAT16
#define DT_bf16 CRUN_DTYPE_BFLOAT16
#define DT_i8 CRUN_DTYPE_INT8
#define DT_i16 CRUN_DTYPE_INT16
#define DT_i32 CRUN_DTYPE_INT32
#define DT_i64 CRUN_DTYPE_INT64
#define DT_u8 CRUN_DTYPE_UINT8
#define DT_u16 CRUN_DTYPE_UINT16
#define DT_u32 CRUN_DTYPE_UINT32
#define DT_u64 CRUN_DTYPE_UINT64
#define DT_bool CRUN_DTYPE_BOOL

/* Number of slots in tables indexed by crun_dtype. */
#define DTYPE_SLOTS 17

#endif
