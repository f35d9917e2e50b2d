/* cli_bench.c - `crun bench MODEL`: load time, first run, latency distribution, memory. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "platforms/peak.h"
#include "tools/cli.h"

static const char usage[] =
    "usage: crun bench MODEL [--threads N] [--max-memory SIZE] [--warmup N] [--runs N] [--input NAME=FILE]...\n"
    "                        [--dim SYM=VALUE]... [--backend native|xnnpack|auto] [--json]\n"
    "Measures load time, session creation (planning: load + session = ready to run), first-run\n"
    "time (session creation + first run), median / p90 / min latency of --runs timed runs after\n"
    "--warmup untimed ones, peak RSS and arena bytes. --json prints one JSON object with keys\n"
    "load_ms, session_ms, ready_ms, first_run_ms, median_ms, p90_ms, min_ms, peak_rss_kb,\n"
    "arena_bytes (and threads, runs, gflop, gflops, peak_gflops, peak_pct, isa: the measured FMA peak of\n"
    "the cores used and the share of it the model achieved).\n";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *v, int n, double p)
{
    int k = (int)(p * n + 0.999999) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

int cmd_bench(int argc, char **argv)
{
    CliOptions o;
    int rc = cli_parse(argc, argv, 1, &o, usage);
    if (rc >= 0)
        return rc;
    CliSession cs;
    rc = cli_session_open(&o, &cs);
    double *times = malloc((size_t)o.runs * sizeof *times);
    if (rc < 0 && !times)
        rc = cli_fail(EXIT_RUN_FAILED, "out of memory");
    double first_ms = 0;
    for (int i = -1 - o.warmup; i < o.runs && rc < 0; i++) {
        double t0 = cli_now();
        crun_status st = crun_session_run(cs.session);
        double ms = (cli_now() - t0) * 1e3;
        if (st != CRUN_OK)
            rc = cli_fail(cli_exit_code(st, true), "%s", crun_last_error());
        else if (i == -1 - o.warmup)
            first_ms = cs.plan_ms + ms;
        else if (i >= 0)
            times[i] = ms;
    }
    if (rc >= 0) {
        free(times);
        cli_session_close(&cs);
        return rc;
    }
    qsort(times, (size_t)o.runs, sizeof *times, cmp_double);
    double median = percentile(times, o.runs, 0.5), p90 = percentile(times, o.runs, 0.9), mn = times[0];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    crun_memory_info mi;
    crun_session_memory_info(cs.session, &mi);
    int64_t flops = 0;
    for (int i = 0; i < crun_session_step_count(cs.session); i++) {
        crun_step_info si;
        crun_session_step_info(cs.session, i, &si);
        flops += si.flops;
    }
    double gflops = median > 0 ? (double)flops / (median * 1e6) : 0;
    int threads = crun_session_threads(cs.session);
    Isa peak_isa;
    double peak = fma_peak_gflops(&peak_isa); /* per core */
    double peak_pct = peak > 0 ? 100.0 * gflops / (peak * threads) : 0;
    if (o.json) {
        printf("{\"model\": \"%s\", \"threads\": %d, \"runs\": %d, \"load_ms\": %.3f, \"session_ms\": %.3f, "
               "\"ready_ms\": %.3f, \"first_run_ms\": %.3f, "
               "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, \"peak_rss_kb\": %ld, \"arena_bytes\": %zu, "
               "\"gflop\": %.4f, \"gflops\": %.2f, \"peak_gflops\": %.1f, \"peak_pct\": %.1f, \"isa\": \"%s\"}\n",
               o.model, threads, o.runs, cs.load_ms, cs.plan_ms, cs.load_ms + cs.plan_ms, first_ms, median, p90, mn, ru.ru_maxrss, mi.arena_bytes,
               (double)flops * 1e-9, gflops, peak * threads, peak_pct, isa_name(peak_isa));
    } else {
        printf("model: %s (%d threads, %d runs after %d warm-up)\n", o.model, threads, o.runs, o.warmup);
        printf("load: %.2f ms, session: %.2f ms (ready in %.2f ms), first run: %.2f ms\n", cs.load_ms, cs.plan_ms,
               cs.load_ms + cs.plan_ms, first_ms);
        printf("latency: median %.3f ms, p90 %.3f ms, min %.3f ms\n", median, p90, mn);
        printf("compute: %.3f GFLOP per run, %.2f GFLOP/s at the median, %.0f%% of the %s FMA peak (%.1f GFLOP/s "
               "per core, measured)\n",
               (double)flops * 1e-9, gflops, peak_pct, isa_name(peak_isa), peak);
        printf("memory: peak RSS %ld kB, arena %zu bytes\n", ru.ru_maxrss, mi.arena_bytes);
    }
    free(times);
    cli_session_close(&cs);
    return EXIT_OK;
}
