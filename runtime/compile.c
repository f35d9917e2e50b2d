/* compile.c - crun_compile_file: an ONNX model planned once and written as a .crun file
 * (loaders/crun_file.h), and what a loaded compiled model tells about itself. */
#include <stdlib.h>
#include <string.h>

#include "loaders/crun_file.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/packcache.h"

void crun_compile_options_init(crun_compile_options *o) { memset(o, 0, sizeof *o); }

/* Gives every symbolic dim of the main graph's inputs its value (default 1), so the file
 * holds one fixed plan. A value for a symbol no input has is refused: it is a typo. */
static crun_status fix_dims(Graph *g, const crun_compile_options *o, Diag *d)
{
    for (size_t k = 0; k < o->n_dims; k++) {
        bool used = false;
        for (int i = 0; i < g->n_syms; i++)
            used |= o->dims[k].name && !strcmp(g->syms[i], o->dims[k].name);
        if (!used)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "--dim %s: the model has no such symbolic dim",
                             o->dims[k].name ? o->dims[k].name : "(null)");
        if (o->dims[k].value < 0)
            return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "--dim %s: negative value", o->dims[k].name);
    }
    for (int i = 0; i < g->n_inputs; i++) {
        Value *v = &g->values[g->inputs[i].value];
        for (int a = 0; a < v->rank; a++) {
            if (v->sym[a] < 0)
                continue;
            int64_t value = v->dims[a] >= 0 ? v->dims[a] : 1;
            for (size_t k = 0; k < o->n_dims; k++)
                if (o->dims[k].name && !strcmp(g->syms[v->sym[a]], o->dims[k].name))
                    value = o->dims[k].value;
            v->dims[a] = value;
            v->sym[a] = -1;
        }
    }
    return CRUN_OK;
}

static void fill_info(crun_compile_info *info, size_t arena, size_t workspace, size_t file, size_t packed, int threads,
                      Isa isa)
{
    if (!info)
        return;
    *info = (crun_compile_info){.arena_bytes = arena, .workspace_bytes = workspace, .file_bytes = file,
                                .packed_bytes = packed, .threads = threads, .isa = isa_name(isa)};
}

/* The exact buffer a static session of the compiled file needs (crun_static_open): opened
 * in ever larger trial buffers, then run twice on zero inputs; 0 when a run fails or the
 * second run needed more than the first (a model that allocates while running). */
static size_t measure_workspace(const void *image, size_t bytes, size_t arena)
{
    for (size_t guess = arena * 2 + bytes / 4 + ((size_t)1 << 20); guess <= SIZE_MAX / 4; guess *= 2) {
        void *buf = mem_alloc_aligned(guess);
        crun_model *m = NULL;
        crun_session *s = NULL;
        crun_status st = buf ? crun_static_open(image, bytes, buf, guess, &m, &s) : CRUN_ERR_OUT_OF_MEMORY;
        size_t need = 0;
        if (st == CRUN_OK && crun_session_run(s) == CRUN_OK) {
            size_t once = session_workspace_used(s);
            if (crun_session_run(s) == CRUN_OK && session_workspace_used(s) == once)
                need = once;
        }
        crun_session_free(s);
        crun_model_free(m);
        mem_free(buf);
        if (st != CRUN_ERR_OUT_OF_MEMORY || !buf)
            return need;
    }
    return 0;
}

/* Plans m and writes it. A failure of the executor is already in crun_last_error (*told
 * set); others are in d. */
static crun_status plan_and_write(crun_model *m, const crun_compile_options *o, const char *out_path,
                                  crun_compile_info *info, Diag *d, bool *told)
{
    crun_status st = fix_dims(m->graph, o, d);
    if (st != CRUN_OK)
        return st;
    Executor *e = NULL;
    ExecOptions eo = {.n_threads = o->threads > 0 ? o->threads : 1};
    st = exec_create(m->graph, m->source, &eo, &e);
    if (st == CRUN_OK)
        st = exec_plan(e);
    *told = st != CRUN_OK;
    if (st == CRUN_OK)
        st = crunfile_write(m, exec_current_plan(e), isa_best(), 0, out_path, d);
    exec_free(e);
    if (st != CRUN_OK)
        return st;
    /* Read back once: the figures a reader will see, and the trial of static mode whose
     * workspace then goes into the header. */
    crun_model *back = NULL;
    st = crun_model_load_file(out_path, &back);
    *told = st != CRUN_OK;
    size_t need = st == CRUN_OK ? measure_workspace(back->image, back->image_bytes, back->compiled_arena) : 0;
    if (st == CRUN_OK && info)
        crun_model_compiled_info(back, info);
    crun_model_free(back);
    if (st == CRUN_OK)
        st = crunfile_set_workspace(out_path, need, d);
    if (st == CRUN_OK && info)
        info->workspace_bytes = need;
    return st;
}

crun_status crun_compile_file(const char *model_path, const char *out_path, const crun_compile_options *options,
                              crun_compile_info *info)
{
    if (!model_path || !out_path)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_compile_file: a path is NULL");
    crun_compile_options defaults;
    crun_compile_options_init(&defaults);
    const crun_compile_options *o = options ? options : &defaults;
    Isa isa = ISA_COUNT;
    if (o->isa && !isa_parse(o->isa, &isa))
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "unknown instruction set '%s'", o->isa);
    if (o->isa && !isa_allowed(isa))
        return error_set(CRUN_ERR_UNSUPPORTED, "--isa %s: this CPU lacks it (kernels are chosen and packed here)",
                         o->isa);
    crun_model *m = NULL;
    crun_status st = crun_model_load_file(model_path, &m);
    if (st != CRUN_OK)
        return st;
    if (m->compiled) {
        crun_model_free(m);
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "%s: already a compiled model", model_path);
    }
    /* Kernels are chosen under the ISA asked for, on this thread only. */
    Isa old_limit = isa_set_thread_limit(o->isa ? isa : isa_get_thread_limit());
    Diag d = {0};
    bool told = false;
    st = plan_and_write(m, o, out_path, info, &d, &told);
    isa_set_thread_limit(old_limit);
    crun_model_free(m);
    if (st != CRUN_OK && !told) {
        diag_prefix(&d, "%s", model_path);
        diag_publish(&d);
    }
    return st;
}

crun_status crun_model_verify(const crun_model *m)
{
    if (!m)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_verify: model is NULL");
    Diag d = {0};
    crun_status st = m->compiled ? crunfile_verify_weights(m->image, m->image_bytes, &d) : CRUN_OK;
    if (st != CRUN_OK) {
        diag_prefix(&d, "%s", m->source);
        diag_publish(&d);
    }
    return st;
}

crun_status crun_model_compiled_info(const crun_model *m, crun_compile_info *info)
{
    if (!m || !info || !m->compiled)
        return error_set(CRUN_ERR_INVALID_ARGUMENT, "crun_model_compiled_info: not a compiled model");
    fill_info(info, m->compiled_arena, m->compiled_workspace, m->image_bytes, packcache_bytes(m->graph->packs),
              m->compiled_threads, (Isa)m->compiled_isa);
    return CRUN_OK;
}
