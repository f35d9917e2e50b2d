/* onnx_functions.c - model-local functions (ModelProto.functions): every call of one is
 * replaced by the function's body, with its inputs, outputs and internal names renamed
 * and attributes referenced by name (ref_attr_name) taken from the call. Native ops win:
 * a function named like an op crun implements is not expanded. */
#include "loaders/onnx_functions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"

#define MAX_DEPTH 16

typedef struct Expander {
    const Onnx__ModelProto *mp;
    NodeList *out;
    Diag *d;
    int calls;
} Expander;

static const char *nz(const char *s) { return s ? s : ""; }

static void *ex_alloc(Expander *x, size_t size)
{
    NodeList *l = x->out;
    void **a = realloc(l->allocs, (l->n_allocs + 1) * sizeof *a);
    void *p = calloc(1, size ? size : 1);
    if (!a || !p) {
        free(p);
        if (a)
            l->allocs = a;
        return NULL;
    }
    l->allocs = a;
    l->allocs[l->n_allocs++] = p;
    return p;
}

static char *ex_str(Expander *x, const char *prefix, const char *name)
{
    size_t n = strlen(prefix) + strlen(name) + 2;
    char *s = ex_alloc(x, n);
    if (s)
        snprintf(s, n, "%s%s%s", prefix, *prefix ? "/" : "", name);
    return s;
}

static const Onnx__FunctionProto *find_function(const Onnx__ModelProto *mp, const Onnx__NodeProto *np)
{
    if (op_lookup(nz(np->domain), nz(np->op_type)))
        return NULL;
    for (size_t i = 0; i < mp->n_functions; i++) {
        const Onnx__FunctionProto *f = mp->functions[i];
        if (f && !strcmp(nz(f->name), nz(np->op_type)) && !strcmp(nz(f->domain), nz(np->domain)))
            return f;
    }
    return NULL;
}

static bool append(Expander *x, Onnx__NodeProto *np)
{
    NodeList *l = x->out;
    Onnx__NodeProto **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return false;
    l->v = v;
    l->v[l->n++] = np;
    return true;
}

/* The caller's name for a function-body name: a formal input or output maps to the call's,
 * anything else gets the call's prefix so two calls never clash. */
static char *map_name(Expander *x, const Onnx__FunctionProto *f, const Onnx__NodeProto *call, const char *prefix,
                    const char *name)
{
    if (!name[0])
        return (char *)"";
    for (size_t i = 0; i < f->n_input; i++)
        if (!strcmp(nz(f->input[i]), name))
            return i < call->n_input ? call->input[i] : (char *)"";
    for (size_t i = 0; i < f->n_output; i++)
        if (!strcmp(nz(f->output[i]), name))
            return i < call->n_output ? call->output[i] : (char *)"";
    return ex_str(x, prefix, name);
}

static crun_status expand(Expander *x, const Onnx__NodeProto *call, const Onnx__FunctionProto *f, int depth);

static crun_status expand_node(Expander *x, const Onnx__NodeProto *call, const Onnx__FunctionProto *f,
                               const Onnx__NodeProto *b, const char *prefix, int depth)
{
    Onnx__NodeProto *nb = ex_alloc(x, sizeof *nb);
    char **ins = ex_alloc(x, (b->n_input + 1) * sizeof *ins);
    char **outs = ex_alloc(x, (b->n_output + 1) * sizeof *outs);
    Onnx__AttributeProto **attrs = ex_alloc(x, (b->n_attribute + 1) * sizeof *attrs);
    if (!nb || !ins || !outs || !attrs)
        return diag_fail(x->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory expanding functions");
    *nb = *b;
    nb->name = ex_str(x, prefix, nz(b->name));
    for (size_t i = 0; i < b->n_input; i++)
        ins[i] = map_name(x, f, call, prefix, nz(b->input[i]));
    for (size_t i = 0; i < b->n_output; i++)
        outs[i] = map_name(x, f, call, prefix, nz(b->output[i]));
    nb->input = ins;
    nb->output = outs;
    size_t na = 0;
    for (size_t i = 0; i < b->n_attribute; i++) {
        const Onnx__AttributeProto *a = b->attribute[i];
        if (!a || !a->ref_attr_name || !a->ref_attr_name[0]) {
            attrs[na++] = (Onnx__AttributeProto *)a;
            continue;
        }
        for (size_t k = 0; k < call->n_attribute; k++)
            if (call->attribute[k] && !strcmp(nz(call->attribute[k]->name), a->ref_attr_name)) {
                Onnx__AttributeProto *c = ex_alloc(x, sizeof *c);
                if (!c)
                    return diag_fail(x->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory expanding functions");
                *c = *call->attribute[k];
                c->name = a->name;
                attrs[na++] = c;
            }
    }
    nb->attribute = attrs;
    nb->n_attribute = na;
    const Onnx__FunctionProto *inner = find_function(x->mp, nb);
    if (inner)
        return expand(x, nb, inner, depth + 1);
    return append(x, nb) ? CRUN_OK : diag_fail(x->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory expanding functions");
}

static crun_status expand(Expander *x, const Onnx__NodeProto *call, const Onnx__FunctionProto *f, int depth)
{
    if (depth > MAX_DEPTH)
        return diag_fail(x->d, CRUN_ERR_UNSUPPORTED, "function '%s' calls functions deeper than %d levels",
                         nz(f->name), MAX_DEPTH);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s#%d", nz(f->name), x->calls++);
    char *p = ex_str(x, "", prefix);
    if (!p)
        return diag_fail(x->d, CRUN_ERR_OUT_OF_MEMORY, "out of memory expanding functions");
    for (size_t i = 0; i < f->n_node; i++) {
        if (!f->node[i])
            return diag_fail(x->d, CRUN_ERR_INVALID_MODEL, "function '%s' has an empty node", nz(f->name));
        crun_status st = expand_node(x, call, f, f->node[i], p, depth);
        if (st != CRUN_OK)
            return st;
    }
    return CRUN_OK;
}

crun_status onnx_expand_functions(const Onnx__ModelProto *mp, Onnx__NodeProto **nodes, size_t n, NodeList *out,
                                  Diag *d)
{
    memset(out, 0, sizeof *out);
    if (!mp || !mp->n_functions) { /* the usual case: the graph's own list, borrowed */
        out->v = out->borrowed = nodes;
        out->n = n;
        return CRUN_OK;
    }
    Expander x = {.mp = mp, .out = out, .d = d};
    for (size_t i = 0; i < n; i++) {
        const Onnx__FunctionProto *f = nodes[i] ? find_function(mp, nodes[i]) : NULL;
        crun_status st = f ? expand(&x, nodes[i], f, 0) : append(&x, nodes[i]) ? CRUN_OK
                                                        : diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
        if (st != CRUN_OK)
            return st;
    }
    return CRUN_OK;
}

void node_list_free(NodeList *l)
{
    for (size_t i = 0; i < l->n_allocs; i++)
        free(l->allocs[i]);
    free(l->allocs);
    if (l->v != l->borrowed)
        free(l->v);
    memset(l, 0, sizeof *l);
}
