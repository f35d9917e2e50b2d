/* harness.h - a small test runner: TEST(name) functions register themselves; CHECK
 * macros report file:line and end the test. Each test file is one executable. */
#ifndef CRUN_TEST_HARNESS_H
#define CRUN_TEST_HARNESS_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "crun.h"

typedef void (*TestFn)(void);
void harness_register(const char *name, TestFn fn);
void harness_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool harness_failed(void);

#define TEST(name) \
    static void name(void); \
    __attribute__((constructor)) static void register_##name(void) { harness_register(#name, name); } \
    static void name(void)

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            harness_fail(__FILE__, __LINE__, "%s", #cond); \
            return; \
        } \
    } while (0)
#define CHECK_MSG(cond, ...) \
    do { \
        if (!(cond)) { \
            harness_fail(__FILE__, __LINE__, __VA_ARGS__); \
            return; \
        } \
    } while (0)
#define CHECK_OK(expr) \
    do { \
        crun_status st_ = (expr); \
        if (st_ != CRUN_OK) { \
            harness_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr, crun_status_name(st_), crun_last_error()); \
            return; \
        } \
    } while (0)
#define CHECK_STATUS(expr, want) \
    do { \
        crun_status st_ = (expr); \
        if (st_ != (want)) { \
            harness_fail(__FILE__, __LINE__, "%s -> %s, expected %s (%s)", #expr, crun_status_name(st_), \
                         crun_status_name(want), crun_last_error()); \
            return; \
        } \
    } while (0)
#define CHECK_NEAR(a, b, tol) \
    do { \
        double a_ = (a), b_ = (b); \
        if (!(fabs(a_ - b_) <= (tol))) { \
            harness_fail(__FILE__, __LINE__, "%s = %.9g, expected %.9g (tol %g)", #a, a_, b_, (double)(tol)); \
            return; \
        } \
    } while (0)

/* Compares n floats with |a-b| <= atol + rtol*|b|; reports the first difference. */
bool floats_close(const float *got, const float *want, long n, double rtol, double atol, char *why, size_t size);
#define CHECK_FLOATS(got, want, n, rtol, atol) \
    do { \
        char why_[256]; \
        if (!floats_close((got), (want), (long)(n), (rtol), (atol), why_, sizeof why_)) { \
            harness_fail(__FILE__, __LINE__, "%s vs %s: %s", #got, #want, why_); \
            return; \
        } \
    } while (0)

/* Deterministic uniform floats in [lo, hi). */
void fill_random(float *x, long n, unsigned seed, float lo, float hi);

#endif
