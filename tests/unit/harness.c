/* harness.c - the runner behind TEST(): runs every registered test, prints one line
 * each, exits 1 if any failed. A test name given on the command line runs alone. */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>

#define MAX_TESTS 512

typedef struct TestEntry {
    const char *name;
    TestFn fn;
} TestEntry;

static TestEntry tests[MAX_TESTS];
static int n_tests;
static bool current_failed;

void harness_register(const char *name, TestFn fn)
{
    if (n_tests < MAX_TESTS)
        tests[n_tests++] = (TestEntry){name, fn};
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    current_failed = true;
}

bool harness_failed(void) { return current_failed; }

bool floats_close(const float *got, const float *want, long n, double rtol, double atol, char *why, size_t size)
{
    for (long i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(w) ? !isnan(g) : !(fabs(g - w) <= atol + rtol * fabs(w))) {
            snprintf(why, size, "element %ld is %.9g, expected %.9g", i, g, w);
            return false;
        }
    }
    return true;
}

void fill_random(float *x, long n, unsigned seed, float lo, float hi)
{
    unsigned long long s = seed * 2654435761ull + 1;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)((s >> 40) & 0xffffff) / 16777216.0f;
    }
}

int main(int argc, char **argv)
{
    int failed = 0, ran = 0;
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        current_failed = false;
        tests[i].fn();
        ran++;
        printf("%s %s\n", current_failed ? "FAIL" : "ok  ", tests[i].name);
        failed += current_failed;
    }
    printf("%d/%d tests passed\n", ran - failed, ran);
    return failed || ran == 0 ? 1 : 0;
}
