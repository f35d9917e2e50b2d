/* test_arena.c - the arena planner: no two buffers alive at the same step overlap (checked
 * exhaustively), on random buffer sets and on plans of random graphs that are also run
 * and checked against a direct evaluation. */
#include <stdio.h>
#include <stdlib.h>

#include "platforms/xnnpack/region.h"
#include "runtime/arena.h"
#include "runtime/model.h"
#include "runtime/plan.h"
#include "onnx_builder.h"
#include "testutil.h"

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

static bool overlap(size_t a0, size_t a1, size_t b0, size_t b1) { return a0 < b1 && b0 < a1; }

TEST(random_buffers_never_overlap_while_alive)
{
    unsigned seed = 1;
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + (int)(rnd(&seed) % 60), steps = 1 + (int)(rnd(&seed) % 40);
        ArenaBuf b[64];
        for (int i = 0; i < n; i++) {
            int first = (int)(rnd(&seed) % (unsigned)steps);
            int len = (int)(rnd(&seed) % 8);
            /* Sizes from a few bytes to ~1 MB, some zero, many equal. */
            size_t size = rnd(&seed) % 5 == 0 ? 4096 : (size_t)(rnd(&seed) % (1u << (rnd(&seed) % 20)));
            b[i] = (ArenaBuf){size, first, first + len, 0};
        }
        size_t total = arena_assign(b, n);
        size_t lower = arena_lower_bound(b, n);
        CHECK(total != SIZE_MAX && total >= lower);
        for (int i = 0; i < n; i++) {
            CHECK(b[i].offset % 64 == 0 && b[i].offset + b[i].size <= total);
            for (int j = i + 1; j < n; j++) {
                bool alive_together = b[i].first <= b[j].last && b[j].first <= b[i].last;
                CHECK_MSG(!alive_together || !b[i].size || !b[j].size ||
                              !overlap(b[i].offset, b[i].offset + b[i].size, b[j].offset, b[j].offset + b[j].size),
                          "trial %d: buffers %d and %d overlap", trial, i, j);
            }
        }
    }
}

TEST(lower_bound_is_reached_for_a_chain)
{
    /* A chain of equal buffers each alive for two steps needs exactly two slots. */
    ArenaBuf b[10];
    for (int i = 0; i < 10; i++)
        b[i] = (ArenaBuf){1000, i, i + 1, 0};
    size_t total = arena_assign(b, 10);
    CHECK(total == 2 * 1024);
    CHECK(arena_lower_bound(b, 10) == 2 * 1024);
}

/* ---- random graphs ---- */

enum { OPS_ADD, OPS_MUL, OPS_RELU, OPS_SIGMOID, OPS_CONCAT_SLICE, OPS_RESHAPE, OPS_COUNT };

typedef struct RandomGraph {
    int n_vals;
    long len[64];     /* element count of each value */
    float *data[64];  /* expected values, computed directly */
} RandomGraph;

static void name_of(char *buf, int v) { snprintf(buf, 16, "v%d", v); }

/* Builds a random DAG on 1-D float tensors; each new value reads one or two earlier ones. */
static OnnxBuilder *random_graph(unsigned *seed, RandomGraph *rg, const float *x, long n)
{
    OnnxBuilder *b = ob_new(13);
    int64_t dn[1] = {n};
    ob_input(b, "v0", CRUN_DTYPE_FLOAT, 1, dn, NULL);
    rg->n_vals = 1;
    rg->len[0] = n;
    rg->data[0] = malloc((size_t)n * 4);
    memcpy(rg->data[0], x, (size_t)n * 4);
    int nodes = 3 + (int)(rnd(seed) % 40);
    for (int k = 0; k < nodes; k++) {
        int a = (int)(rnd(seed) % (unsigned)rg->n_vals), c = (int)(rnd(seed) % (unsigned)rg->n_vals);
        int op = (int)(rnd(seed) % OPS_COUNT), v = rg->n_vals;
        if ((op == OPS_ADD || op == OPS_MUL) && rg->len[a] != rg->len[c])
            op = OPS_RELU;
        char na[16], nc[16], nv[16], tmp[32], ins[40];
        name_of(na, a);
        name_of(nc, c);
        name_of(nv, v);
        long len = rg->len[a];
        float *out = malloc((size_t)len * 4);
        const float *pa = rg->data[a], *pc = rg->data[c];
        switch (op) {
        case OPS_ADD:
        case OPS_MUL:
            snprintf(ins, sizeof ins, "%s,%s", na, nc);
            ob_node(b, op == OPS_ADD ? "Add" : "Mul", ins, nv);
            for (long i = 0; i < len; i++)
                out[i] = op == OPS_ADD ? pa[i] + pc[i] : pa[i] * pc[i];
            break;
        case OPS_RELU:
        case OPS_SIGMOID:
            ob_node(b, op == OPS_RELU ? "Relu" : "Sigmoid", na, nv);
            for (long i = 0; i < len; i++)
                out[i] = op == OPS_RELU ? (pa[i] > 0 ? pa[i] : 0) : 1.0f / (1.0f + expf(-pa[i]));
            break;
        case OPS_CONCAT_SLICE: {
            /* Concat a with itself (a bigger temporary), then take its second half back. */
            snprintf(tmp, sizeof tmp, "cat%d", v);
            snprintf(ins, sizeof ins, "%s,%s", na, na);
            ob_attr_int(b, ob_node(b, "Concat", ins, tmp), "axis", 0);
            char s[16], e[16], sl[64];
            snprintf(s, sizeof s, "s%d", v);
            snprintf(e, sizeof e, "e%d", v);
            int64_t one[1] = {1}, sv[1] = {len}, ev[1] = {2 * len};
            ob_init_i64(b, s, 1, one, sv);
            ob_init_i64(b, e, 1, one, ev);
            snprintf(sl, sizeof sl, "%s,%s,%s", tmp, s, e);
            ob_node(b, "Slice", sl, nv);
            memcpy(out, pa, (size_t)len * 4);
            break;
        }
        default: {
            char s[16], sl[40];
            snprintf(s, sizeof s, "r%d", v);
            int64_t one[1] = {1}, shp[1] = {-1};
            ob_init_i64(b, s, 1, one, shp);
            snprintf(sl, sizeof sl, "%s,%s", na, s);
            ob_node(b, "Reshape", sl, nv);
            memcpy(out, pa, (size_t)len * 4);
        }
        }
        rg->len[v] = len;
        rg->data[v] = out;
        rg->n_vals++;
        if (rnd(seed) % 5 == 0 || k == nodes - 1)
            ob_output(b, nv);
    }
    return b;
}

/* Every pair of arena values with different storage, alive at the same step, and every
 * step's scratch against the values alive at that step, must not overlap. */
static bool plan_is_sound(const Plan *p, char *why, size_t size)
{
    const Graph *g = p->g;
    for (int u = 0; u < g->n_values; u++) {
        const PlanValue *a = &p->vals[u];
        if (a->store != STORE_ARENA || !a->bytes)
            continue;
        for (int v = u + 1; v < g->n_values; v++) {
            const PlanValue *b = &p->vals[v];
            if (b->store != STORE_ARENA || !b->bytes || a->root == b->root)
                continue;
            const PlanValue *ra = &p->vals[a->root], *rb = &p->vals[b->root];
            bool together = ra->first <= rb->last && rb->first <= ra->last;
            if (together && overlap(a->offset, a->offset + a->bytes, b->offset, b->offset + b->bytes)) {
                snprintf(why, size, "values %s and %s overlap", g->values[u].name, g->values[v].name);
                return false;
            }
        }
        for (int s = 0; s < p->n_steps; s++) {
            const PlanStep *st = &p->steps[s];
            const PlanValue *r = &p->vals[a->root];
            if (st->ws_bytes && r->first <= s && s <= r->last &&
                overlap(a->offset, a->offset + a->bytes, st->ws_offset, st->ws_offset + st->ws_bytes)) {
                snprintf(why, size, "value %s overlaps the scratch of step %d", g->values[u].name, s);
                return false;
            }
        }
    }
    if (p->arena_bytes < p->lower_bound) {
        snprintf(why, size, "arena below the lower bound");
        return false;
    }
    return true;
}

TEST(random_graphs_plan_soundly_and_compute_right)
{
    unsigned seed = 7;
    for (int trial = 0; trial < 150; trial++) {
        long n = 1 + (long)(rnd(&seed) % 3000);
        float *x = malloc((size_t)n * 4);
        fill_random(x, n, (unsigned)trial, -2, 2);
        RandomGraph rg = {0};
        OnnxBuilder *b = random_graph(&seed, &rg, x, n);
        crun_model *m = ob_load(b);
        Onnx__GraphProto *gp = ob_model(b)->graph;
        CHECK_MSG(m, "trial %d: %s", trial, crun_last_error());
        /* The plan itself, checked pairwise. */
        PlanInput pin = {.dtype = CRUN_DTYPE_FLOAT, .rank = 1, .dims = {n}};
        Plan *p = NULL;
        Diag d = {0};
        CHECK_MSG(plan_build(m->graph, &pin, 2, BACKEND_NATIVE, NULL, &p, &d) == CRUN_OK, "trial %d: %s", trial, d.msg);
        char why[200];
        bool sound = plan_is_sound(p, why, sizeof why);
        plan_free(p);
        CHECK_MSG(sound, "trial %d: %s", trial, why);
        /* And the run, against the direct evaluation. */
        TIn in = {CRUN_DTYPE_FLOAT, 1, {n}, x};
        crun_session *s = run_inputs(m, 1 + trial % 3, 1, &in);
        CHECK(s);
        for (size_t o = 0; o < gp->n_output; o++) {
            int v = atoi(gp->output[o]->name + 1);
            crun_tensor t;
            CHECK_OK(crun_session_get_output(s, (int)o, &t));
            CHECK_MSG(floats_close(t.data, rg.data[v], rg.len[v], 1e-6, 1e-6, why, sizeof why),
                      "trial %d output %s: %s", trial, gp->output[o]->name, why);
        }
        crun_session_free(s);
        crun_model_free(m);
        ob_free(b);
        for (int v = 0; v < rg.n_vals; v++)
            free(rg.data[v]);
        free(x);
    }
}

/* Conv+Relu -> Conv -> Add (with the first output) -> Conv over [1,4,8,8]: four nodes
 * after fusion, three of them heavy. */
static crun_model *conv_chain(void)
{
    OnnxBuilder *b = ob_new(13);
    int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {4, 4, 3, 3}, pads[4] = {1, 1, 1, 1};
    float wv[144];
    ob_input(b, "x", CRUN_DTYPE_FLOAT, 4, xd, NULL);
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "w%d", i);
        fill_random(wv, 144, (unsigned)i + 1, -1, 1);
        ob_init_f32(b, name, 4, wd, wv);
    }
    ob_attr_ints(b, ob_node(b, "Conv", "x,w0", "c0"), "pads", pads, 4);
    ob_node(b, "Relu", "c0", "r0");
    ob_attr_ints(b, ob_node(b, "Conv", "r0,w1", "c1"), "pads", pads, 4);
    ob_node(b, "Add", "c1,r0", "a");
    ob_attr_ints(b, ob_node(b, "Conv", "a,w2", "y"), "pads", pads, 4);
    ob_output(b, "y");
    crun_model *m = ob_load(b);
    ob_free(b);
    return m;
}

TEST(xnnpack_regions_follow_the_node_mask)
{
    crun_model *m = conv_chain();
    CHECK_MSG(m, "%s", crun_last_error());
    PlanInput pin = {.dtype = CRUN_DTYPE_FLOAT, .rank = 4, .dims = {1, 4, 8, 8}};
    Plan *p = NULL;
    Diag d = {0};
    if (!xnn_backend_available()) {
        CHECK(plan_build(m->graph, &pin, 1, BACKEND_XNNPACK, NULL, &p, &d) == CRUN_ERR_UNSUPPORTED && !p);
        crun_model_free(m);
        return;
    }
    CHECK(m->graph->n_nodes == 4);
    bool heavy[4] = {true, true, false, true};
    for (int mask = 0; mask < 8; mask++) {
        /* Allowed: the light Add, and the convolutions whose bit is set. */
        uint8_t allow[4];
        for (int i = 0, bit = 0; i < 4; i++)
            allow[i] = heavy[i] ? (mask >> bit++) & 1 : 1;
        /* Expected: one step per native node, one per run of allowed nodes holding a conv. */
        int steps = 0, regions = 0;
        for (int i = 0; i < 4;) {
            int j = i;
            bool conv = false;
            while (j < 4 && allow[j])
                conv |= heavy[j++];
            if (j == i) {
                steps++, i++;
            } else {
                steps += conv ? 1 : j - i, regions += conv;
                i = j;
            }
        }
        XnnChoice xc = {allow, false};
        CHECK_MSG(plan_build(m->graph, &pin, 1, BACKEND_XNNPACK, &xc, &p, &d) == CRUN_OK, "mask %d: %s", mask, d.msg);
        int got = 0;
        for (int s = 0; s < p->n_steps; s++)
            got += p->steps[s].region_io != NULL;
        char why[200];
        bool sound = plan_is_sound(p, why, sizeof why);
        CHECK_MSG(p->n_steps == steps && got == regions, "mask %d: %d steps, %d regions; expected %d, %d", mask,
                  p->n_steps, got, steps, regions);
        plan_free(p);
        CHECK_MSG(sound, "mask %d: %s", mask, why);
    }
    crun_model_free(m);
}
