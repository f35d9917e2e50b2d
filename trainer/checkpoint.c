/* checkpoint.c - see checkpoint.h. Layout (little-endian as the host writes it; a
 * checkpoint moves between machines of one byte order): "CRUNCKP1", then u32 fields and
 * arrays in the order checkpoint_save writes them. */
#include "trainer/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders/tensor_file.h"
#include "quant/quant.h"

#define CKPT_MAGIC "CRUNCKP1"

typedef struct Writer {
    FILE *f;
    bool ok;
} Writer;

static void put(Writer *w, const void *p, size_t n)
{
    if (w->ok && n && fwrite(p, 1, n, w->f) != n)
        w->ok = false;
}

static void put_u32(Writer *w, uint32_t v) { put(w, &v, 4); }

static void put_floats(Writer *w, const float *p, int64_t n) { put(w, p, (size_t)n * sizeof *p); }

crun_status checkpoint_save(const char *path, const Net *net, const Optim *o, int epochs_done, int qat_done, Diag *d)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    Writer w = {fopen(tmp, "wb"), true};
    if (!w.f)
        return diag_fail(d, CRUN_ERR_IO, "cannot write %s", tmp);
    size_t spec_len = strlen(net->spec);
    put(&w, CKPT_MAGIC, 8);
    put_u32(&w, (uint32_t)spec_len);
    put(&w, net->spec, spec_len);
    put_u32(&w, (uint32_t)epochs_done);
    put_u32(&w, (uint32_t)qat_done);
    put_u32(&w, net->qat);
    put(&w, &o->t, sizeof o->t);
    Param *p[TRAIN_MAX_PARAMS];
    int np = net_params((Net *)net, p, TRAIN_MAX_PARAMS);
    put_u32(&w, (uint32_t)np);
    for (int i = 0; i < np; i++) {
        put(&w, &p[i]->n, sizeof p[i]->n);
        put_floats(&w, p[i]->w, p[i]->n), put_floats(&w, p[i]->m, p[i]->n), put_floats(&w, p[i]->v, p[i]->n);
    }
    for (int i = 0; i < net->n; i++) /* BatchNorm statistics, layer by layer */
        if (net->layers[i].kind == LAYER_BN)
            put_floats(&w, net->layers[i].run_mean, net->layers[i].out.c),
                put_floats(&w, net->layers[i].run_var, net->layers[i].out.c);
    put_u32(&w, (uint32_t)net->n_obs);
    for (int i = 0; i < net->n_obs; i++) {
        const Observer *ob = &net->obs[i];
        uint8_t flags[2] = {ob->seen, ob->frozen};
        put(&w, &ob->lo, 4), put(&w, &ob->hi, 4), put(&w, flags, 2);
    }
    if (fclose(w.f) != 0)
        w.ok = false;
    if (!w.ok || rename(tmp, path) != 0) {
        remove(tmp);
        return diag_fail(d, CRUN_ERR_IO, "cannot write %s", path);
    }
    return CRUN_OK;
}

typedef struct Reader {
    const uint8_t *p;
    size_t left;
    bool ok;
} Reader;

static void get(Reader *r, void *out, size_t n)
{
    if (!r->ok || r->left < n) {
        r->ok = false;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n, r->left -= n;
}

static uint32_t get_u32(Reader *r)
{
    uint32_t v;
    get(r, &v, 4);
    return v;
}

static crun_status read_header(const char *path, uint8_t **buf, Reader *r, CheckpointState *cs, Diag *d)
{
    size_t size;
    crun_status st = file_read_all(path, (void **)buf, &size, d);
    if (st != CRUN_OK)
        return st;
    *r = (Reader){*buf, size, true};
    char magic[8];
    get(r, magic, 8);
    uint32_t len = get_u32(r);
    if (!r->ok || memcmp(magic, CKPT_MAGIC, 8) || len > r->left)
        return diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: not a crun training checkpoint", path);
    cs->spec = malloc(len + 1);
    if (!cs->spec)
        return diag_fail(d, CRUN_ERR_OUT_OF_MEMORY, "out of memory");
    get(r, cs->spec, len);
    cs->spec[len] = 0;
    cs->epochs_done = (int)get_u32(r);
    cs->qat_done = (int)get_u32(r);
    cs->qat = get_u32(r) != 0;
    return r->ok ? CRUN_OK : diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: truncated checkpoint", path);
}

crun_status checkpoint_peek(const char *path, CheckpointState *cs, Diag *d)
{
    uint8_t *buf = NULL;
    Reader r;
    memset(cs, 0, sizeof *cs);
    crun_status st = read_header(path, &buf, &r, cs, d);
    free(buf);
    return st;
}

static bool load_arrays(Reader *r, Net *net, Optim *o)
{
    get(r, &o->t, sizeof o->t);
    Param *p[TRAIN_MAX_PARAMS];
    int np = net_params(net, p, TRAIN_MAX_PARAMS);
    if (get_u32(r) != (uint32_t)np)
        return false;
    for (int i = 0; i < np && r->ok; i++) {
        int64_t n;
        get(r, &n, sizeof n);
        if (n != p[i]->n)
            return false;
        get(r, p[i]->w, (size_t)n * 4), get(r, p[i]->m, (size_t)n * 4), get(r, p[i]->v, (size_t)n * 4);
    }
    for (int i = 0; i < net->n; i++) {
        Layer *l = &net->layers[i];
        if (l->kind == LAYER_BN)
            get(r, l->run_mean, (size_t)l->out.c * 4), get(r, l->run_var, (size_t)l->out.c * 4);
    }
    if (get_u32(r) != (uint32_t)net->n_obs)
        return false;
    for (int i = 0; i < net->n_obs; i++) {
        Observer *ob = &net->obs[i];
        uint8_t flags[2];
        get(r, &ob->lo, 4), get(r, &ob->hi, 4), get(r, flags, 2);
        ob->seen = flags[0], ob->frozen = flags[1];
        quant_act_params(ob->lo, ob->hi, &ob->scale, &ob->zp);
    }
    return r->ok && r->left == 0;
}

crun_status checkpoint_load(const char *path, Net *net, Optim *o, const CheckpointState *cs, Diag *d)
{
    if (cs->qat) {
        qat_fold(net, false);
        crun_status st = qat_enable(net, d);
        if (st != CRUN_OK)
            return st;
    }
    uint8_t *buf = NULL;
    Reader r;
    CheckpointState again = {0};
    crun_status st = read_header(path, &buf, &r, &again, d);
    free(again.spec);
    if (st == CRUN_OK && !load_arrays(&r, net, o))
        st = diag_fail(d, CRUN_ERR_INVALID_ARGUMENT, "%s: the checkpoint does not match its spec", path);
    free(buf);
    return st;
}
