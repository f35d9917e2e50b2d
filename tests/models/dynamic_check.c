/* dynamic_check.c - runs one model in ONE session over a list of cases whose input shapes
 * change (batch sizes, sequence lengths, image sizes), twice, and checks:
 *   - every output matches the case's expected .npy (rtol 1e-4, atol 1e-5 x magnitude);
 *   - the session re-plans exactly when the input shapes differ from the previous case's;
 *   - memory does not grow: the third pass ends with the arena, crun's counted bytes and
 *     the resident memory of the second (the first sizes what keeps its largest size).
 *   dynamic_check MODEL CASEDIR...   (a case dir holds in_<input>.npy and out_<output>.npy) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crun.h"
#include "loaders/tensor_file.h"
#include "ops/registry.h"

/* AddressSanitizer keeps freed blocks in quarantine, so resident memory is no measure
 * there; crun's own count of its bytes still is. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static long resident_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    if (f)
        fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static bool load(const char *dir, const char *prefix, const char *name, Tensor *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s.npy", dir, prefix, name);
    Diag d = {0};
    if (tensor_file_read(path, t, NULL, &d) != CRUN_OK) {
        fprintf(stderr, "%s\n", d.msg);
        return false;
    }
    return true;
}

/* Runs one case; *shape_key gets a digest of its input shapes. */
static bool run_case(crun_session *s, const crun_model *m, const char *dir, uint64_t *shape_key)
{
    int n_in = crun_model_input_count(m), n_out = crun_model_output_count(m);
    Tensor in[16] = {{0}};
    bool ok = n_in <= 16;
    *shape_key = 1469598103934665603ull;
    for (int i = 0; ok && i < n_in; i++) {
        crun_tensor_info info;
        crun_model_input_info(m, i, &info);
        ok = load(dir, "in_", info.name, &in[i]) &&
             crun_session_set_input(s, i, in[i].dtype, in[i].rank, in[i].dims, in[i].data) == CRUN_OK;
        for (int k = 0; k < in[i].rank; k++)
            *shape_key = (*shape_key ^ (uint64_t)in[i].dims[k]) * 1099511628211ull;
    }
    if (ok && crun_session_run(s) != CRUN_OK) {
        fprintf(stderr, "%s: %s\n", dir, crun_last_error());
        ok = false;
    }
    for (int o = 0; ok && o < n_out; o++) {
        crun_tensor got;
        crun_tensor_info info;
        crun_model_output_info(m, o, &info);
        Tensor want;
        ok = crun_session_get_output(s, o, &got) == CRUN_OK && load(dir, "out_", info.name, &want);
        if (!ok)
            break;
        Tensor g = {.dtype = got.dtype, .rank = got.rank, .data = (void *)got.data};
        memcpy(g.dims, got.dims, sizeof g.dims);
        double scale = 0;
        int64_t n = tensor_numel(&want);
        for (int64_t i = 0; i < n; i++)
            scale = fmax(scale, fabs(tensor_get_double(&want, i)));
        ok = shape_equal(g.dims, g.rank, want.dims, want.rank);
        for (int64_t i = 0; ok && i < n; i++) {
            double a = tensor_get_double(&g, i), b = tensor_get_double(&want, i);
            if (fabs(a - b) > 1e-5 * fmax(1, scale) + 1e-4 * fabs(b)) {
                fprintf(stderr, "%s: output %s element %lld is %g, expected %g\n", dir, info.name, (long long)i, a, b);
                ok = false;
            }
        }
        if (!shape_equal(g.dims, g.rank, want.dims, want.rank))
            fprintf(stderr, "%s: output %s has the wrong shape\n", dir, info.name);
        tensor_file_free(&want);
    }
    for (int i = 0; i < n_in; i++)
        tensor_file_free(&in[i]);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL CASEDIR...\n", argv[0]);
        return 2;
    }
    crun_model *m = NULL;
    crun_session *s = NULL;
    if (crun_model_load_file(argv[1], &m) != CRUN_OK || crun_session_create(m, NULL, &s) != CRUN_OK) {
        fprintf(stderr, "%s\n", crun_last_error());
        return 2;
    }
    long rss[3] = {0, 0, 0};
    size_t arena[3] = {0, 0, 0}, counted[3] = {0, 0, 0};
    uint64_t prev = 0;
    int64_t expect_plans = crun_session_plan_count(s);
    bool planned_defaults = expect_plans > 0, ok = true;
    for (int pass = 0; pass < 3 && ok; pass++) {
        for (int c = 2; c < argc && ok; c++) {
            uint64_t key;
            ok = run_case(s, m, argv[c], &key);
            /* A new plan exactly when the shapes differ from the last run's (the plan made
             * at creation for default dims counts as the "last" before the first case). */
            if (key != prev && !(pass == 0 && c == 2 && !planned_defaults))
                expect_plans++;
            if (pass == 0 && c == 2 && !planned_defaults)
                expect_plans++;
            prev = key;
            if (ok && crun_session_plan_count(s) != expect_plans) {
                fprintf(stderr, "%s: %lld plans built, expected %lld\n", argv[c],
                        (long long)crun_session_plan_count(s), (long long)expect_plans);
                ok = false;
            }
        }
        crun_memory_info mi;
        crun_session_memory_info(s, &mi);
        arena[pass] = mi.arena_bytes;
        rss[pass] = resident_kb();
        counted[pass] = crun_memory_in_use();
    }
    /* The first pass sizes every buffer that keeps its largest size (outputs of dynamic
     * steps); from then on a pass must end where the previous one did, give or take the
     * alignment slack of a few blocks (it depends on the addresses malloc returns). */
    if (ok && counted[2] > counted[1] + 4096) {
        fprintf(stderr, "crun's counted memory grew from %zu to %zu bytes on the third pass\n", counted[1],
                counted[2]);
        ok = false;
    }
    /* Under an emulator (cross builds set CRUN_TEST_EMULATED) resident memory is the
     * emulator's, translation caches included. */
    bool rss_means_ours = !UNDER_ASAN && !getenv("CRUN_TEST_EMULATED");
    if (ok && rss_means_ours && rss[2] > rss[1] + 1024) {
        fprintf(stderr, "resident memory grew from %ld kB to %ld kB on the third pass\n", rss[1], rss[2]);
        ok = false;
    }
    printf("%s: %d cases x 3 passes, %lld plans, arena %zu -> %zu bytes, counted %zu -> %zu bytes, RSS %ld -> %ld kB: "
           "%s\n", argv[1], argc - 2, (long long)crun_session_plan_count(s), arena[1], arena[2], counted[1], counted[2],
           rss[1], rss[2], ok ? "ok" : "FAILED");
    crun_session_free(s);
    crun_model_free(m);
    return ok ? 0 : 1;
}
