/* cli_plan_svg.c - `crun info --plan-svg FILE`: the memory plan as a picture. Steps run
 * left to right, arena offsets top to bottom; each intermediate tensor is a box from the
 * step that writes it to its last reader, as tall as its bytes, coloured by op, with a
 * tooltip. The step where the most bytes are alive is marked: that is where the peak is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

#define SVG_W 1000.0
#define SVG_H 600.0
#define MARGIN_L 70.0
#define MARGIN_T 40.0
#define MARGIN_B 40.0

/* Text with &, <, > and quotes escaped for XML. */
static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20)
                fputc(*s, f);
        }
    }
}

/* A stable hue per op type. */
static unsigned op_hue(const char *op)
{
    uint32_t h = 2166136261u;
    for (; *op; op++)
        h = (h ^ (unsigned char)*op) * 16777619u;
    return h % 360;
}

/* The step at which the summed bytes of alive arena tensors peak, and that sum. */
static int peak_step(const crun_step_info *si, int n, int64_t *peak)
{
    int best = 0;
    *peak = 0;
    for (int t = 0; t <= n; t++) {
        int64_t alive = 0;
        for (int i = 0; i < n; i++)
            if (si[i].arena_offset >= 0 && si[i].live_first <= t && t <= si[i].live_last)
                alive += si[i].size_bytes;
        if (alive > *peak) {
            *peak = alive;
            best = t;
        }
    }
    return best;
}

int write_plan_svg(const crun_session *s, const char *model, const char *path)
{
    int n = crun_session_step_count(s);
    crun_step_info *si = calloc((size_t)n + 1, sizeof *si);
    if (!si)
        return cli_fail(EXIT_RUN_FAILED, "out of memory");
    for (int i = 0; i < n; i++)
        crun_session_step_info(s, i, &si[i]);
    crun_memory_info mi;
    crun_session_memory_info(s, &mi);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(si);
        return cli_fail(EXIT_BAD_INPUT, "cannot write '%s'", path);
    }
    double plot_w = SVG_W - MARGIN_L - 20, plot_h = SVG_H - MARGIN_T - MARGIN_B;
    double step_w = plot_w / (n + 1), arena = mi.arena_bytes ? (double)mi.arena_bytes : 1.0;
    int64_t peak;
    int at = peak_step(si, n, &peak);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
               "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(f, "<text x=\"%.0f\" y=\"20\">", MARGIN_L);
    xml_text(f, model);
    fprintf(f, ": arena %zu bytes (lower bound %zu), %d steps; peak %lld bytes alive at step %d</text>\n",
            mi.arena_bytes, mi.lower_bound_bytes, n, (long long)peak, at);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
            MARGIN_L, MARGIN_T, plot_w, plot_h);
    fprintf(f, "<text x=\"5\" y=\"%.1f\">offset 0</text><text x=\"5\" y=\"%.1f\">%zu</text>\n", MARGIN_T + 10,
            MARGIN_T + plot_h, mi.arena_bytes);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">step 0</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">step %d</text>\n",
            MARGIN_L, SVG_H - 15, MARGIN_L + plot_w, SVG_H - 15, n);
    for (int i = 0; i < n; i++) {
        if (si[i].arena_offset < 0 || si[i].size_bytes <= 0)
            continue;
        double x = MARGIN_L + si[i].live_first * step_w, w = (si[i].live_last - si[i].live_first + 1) * step_w;
        double y = MARGIN_T + (double)si[i].arena_offset / arena * plot_h;
        double h = (double)si[i].size_bytes / arena * plot_h;
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"hsl(%u,60%%,60%%)\" "
                   "stroke=\"#333\" stroke-width=\"0.3\"><title>",
                x, y, w, h < 0.5 ? 0.5 : h, op_hue(si[i].op_type));
        xml_text(f, si[i].node_name);
        fputs(" (", f);
        xml_text(f, si[i].op_type);
        fprintf(f, "): %lld bytes at %lld, steps %d-%d</title></rect>\n", (long long)si[i].size_bytes,
                (long long)si[i].arena_offset, si[i].live_first, si[i].live_last);
    }
    double px = MARGIN_L + (at + 0.5) * step_w;
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"red\" stroke-dasharray=\"4 3\">"
               "<title>peak: %lld bytes alive</title></line>\n</svg>\n",
            px, MARGIN_T, px, MARGIN_T + plot_h, (long long)peak);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    free(si);
    return ok ? -1 : cli_fail(EXIT_BAD_INPUT, "cannot write '%s'", path);
}
