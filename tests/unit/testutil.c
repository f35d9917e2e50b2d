/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdlib.h>

#include "ops/registry.h"

bool kernels_select(int isa)
{
    isa_set_limit(ISA_COUNT); /* to ask what the CPU has, not what the last limit allows */
    if (isa >= 0 && !isa_allowed((Isa)isa))
        return false;
    kernels_use_reference(isa < 0);
    isa_set_limit(isa < 0 ? ISA_COUNT : (Isa)isa);
    return true;
}

void kernels_select_done(void)
{
    kernels_use_reference(false);
    isa_set_limit(ISA_COUNT);
}

crun_session *run_inputs(const crun_model *m, int threads, int n, const TIn *in)
{
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = threads;
    crun_session *s = NULL;
    if (crun_session_create(m, &o, &s) != CRUN_OK) {
        fprintf(stderr, "  session: %s\n", crun_last_error());
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (crun_session_set_input(s, i, in[i].dtype, in[i].rank, in[i].dims, in[i].data) != CRUN_OK) {
            fprintf(stderr, "  set_input %d: %s\n", i, crun_last_error());
            crun_session_free(s);
            return NULL;
        }
    if (crun_session_run(s) != CRUN_OK) {
        fprintf(stderr, "  run: %s\n", crun_last_error());
        crun_session_free(s);
        return NULL;
    }
    return s;
}

long run_f32(OnnxBuilder *b, const TIn *in, int n_in, float *out, long max, crun_tensor *shape)
{
    crun_model *m = ob_load(b);
    if (!m) {
        fprintf(stderr, "  load: %s\n", crun_last_error());
        return -1;
    }
    crun_session *s = run_inputs(m, 2, n_in, in);
    long n = -1;
    crun_tensor t;
    if (s && crun_session_get_output(s, 0, &t) == CRUN_OK) {
        n = (long)(t.size_bytes / crun_dtype_size(t.dtype));
        if (out)
            memcpy(out, t.data, (size_t)(n < max ? n : max) * crun_dtype_size(t.dtype));
        if (shape)
            *shape = t;
    }
    crun_session_free(s);
    crun_model_free(m);
    return n;
}

/* Loads b's model, binds in[], runs with `threads` threads and copies output k (for k <
 * n_get) into dst[k] (at most max_bytes each) and its shape into shape[k] (may be NULL).
 * Returns the first failing status (load, plan, bind or run). */
crun_status run_get(OnnxBuilder *b, int threads, const TIn *in, int n_in, int n_get, void *const *dst,
                           size_t max_bytes, crun_tensor *shape)
{
    size_t size;
    uint8_t *buf = ob_pack(b, &size);
    crun_model *m = NULL;
    crun_status st = crun_model_load_memory(buf, size, &m);
    free(buf);
    if (st != CRUN_OK)
        return st;
    crun_session_options o;
    crun_session_options_init(&o);
    o.threads = threads;
    crun_session *s = NULL;
    st = crun_session_create(m, &o, &s);
    for (int i = 0; st == CRUN_OK && i < n_in; i++)
        st = crun_session_set_input(s, i, in[i].dtype, in[i].rank, in[i].dims, in[i].data);
    if (st == CRUN_OK)
        st = crun_session_run(s);
    for (int k = 0; st == CRUN_OK && k < n_get; k++) {
        crun_tensor t;
        st = crun_session_get_output(s, k, &t);
        if (st != CRUN_OK)
            break;
        if (dst[k])
            memcpy(dst[k], t.data, t.size_bytes < max_bytes ? t.size_bytes : max_bytes);
        if (shape)
            shape[k] = t;
    }
    crun_session_free(s);
    crun_model_free(m);
    return st;
}
