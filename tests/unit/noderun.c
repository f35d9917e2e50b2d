/* noderun.c - see noderun.h. */
#include "noderun.h"

#include <stdlib.h>

void node_model(Run *r, int opset, const char *op, const Arg *args, int n_args, const char *outs)
{
    memset(r, 0, sizeof *r);
    r->b = ob_new(opset);
    r->args = args;
    r->n_args = n_args;
    char ins[256] = "";
    for (int i = 0; i < n_args; i++) {
        const Arg *a = &args[i];
        if (i)
            strcat(ins, ",");
        if (!a->name)
            continue;
        strcat(ins, a->name);
        if (a->constant)
            ob_initializer(r->b, ob_tensor(r->b, a->name, a->dtype, a->rank, a->dims, a->data));
        else
            ob_input(r->b, a->name, a->dtype, a->rank, a->dims, NULL);
    }
    outs = outs ? outs : "y";
    r->node = ob_node(r->b, op, ins, outs);
    char buf[128];
    snprintf(buf, sizeof buf, "%s", outs);
    for (char *s = buf, *e; s; s = e) {
        e = strchr(s, ',');
        if (e)
            *e++ = 0;
        if (*s && r->n_out < NODERUN_MAX_OUT) {
            ob_output(r->b, s);
            r->n_out++;
        }
    }
}

crun_status run_threads(Run *r, int threads)
{
    size_t size;
    uint8_t *buf = ob_pack(r->b, &size);
    crun_status st = crun_model_load_memory(buf, size, &r->m);
    free(buf);
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = threads;
    if (st == CRUN_OK)
        st = crun_session_create(r->m, &o, &r->s);
    for (int i = 0, k = 0; st == CRUN_OK && i < r->n_args; i++) {
        const Arg *a = &r->args[i];
        if (a->name && !a->constant)
            st = crun_session_set_input(r->s, k++, a->dtype, a->rank, a->dims, a->data);
    }
    if (st == CRUN_OK)
        st = crun_session_run(r->s);
    for (int k = 0; st == CRUN_OK && k < r->n_out; k++)
        st = crun_session_get_output(r->s, k, &r->y[k]);
    return st;
}

crun_status run(Run *r) { return run_threads(r, 2); }

void run_free(Run *r)
{
    crun_session_free(r->s);
    crun_model_free(r->m);
    ob_free(r->b);
}

bool shape_is(const crun_tensor *t, int rank, const int64_t *dims)
{
    if (t->rank != rank)
        return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != dims[i])
            return false;
    return true;
}
