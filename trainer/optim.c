/* optim.c - see optim.h. */
#include "trainer/optim.h"

#include <math.h>

void optim_init(Optim *o)
{
    *o = (Optim){.kind = OPTIM_SGD, .lr = 0.01f, .momentum = 0.9f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                 .sched = SCHED_CONST, .step_epochs = 1, .gamma = 0.1f};
}

float optim_lr(const Optim *o, int epoch, double progress)
{
    switch (o->sched) {
    case SCHED_STEP: return o->lr * powf(o->gamma, (float)(epoch / (o->step_epochs > 0 ? o->step_epochs : 1)));
    case SCHED_COSINE: return (float)(o->lr * 0.5 * (1.0 + cos(3.14159265358979 * progress)));
    default: return o->lr;
    }
}

static void sgd(const Optim *o, Param *p, float lr)
{
    for (int64_t i = 0; i < p->n; i++) {
        float g = p->g[i] + o->weight_decay * p->w[i];
        p->m[i] = o->momentum * p->m[i] + g;
        p->w[i] -= lr * p->m[i];
    }
}

static void adam(const Optim *o, Param *p, float lr)
{
    float c1 = 1.0f - powf(o->beta1, (float)o->t), c2 = 1.0f - powf(o->beta2, (float)o->t);
    bool decoupled = o->kind == OPTIM_ADAMW;
    for (int64_t i = 0; i < p->n; i++) {
        float g = p->g[i] + (decoupled ? 0.0f : o->weight_decay * p->w[i]);
        p->m[i] = o->beta1 * p->m[i] + (1 - o->beta1) * g;
        p->v[i] = o->beta2 * p->v[i] + (1 - o->beta2) * g * g;
        if (decoupled)
            p->w[i] -= lr * o->weight_decay * p->w[i];
        p->w[i] -= lr * (p->m[i] / c1) / (sqrtf(p->v[i] / c2) + o->eps);
    }
}

void optim_step(Optim *o, Param *const *p, int n, float lr)
{
    o->t++;
    for (int i = 0; i < n; i++) {
        if (o->kind == OPTIM_SGD)
            sgd(o, p[i], lr);
        else
            adam(o, p[i], lr);
    }
}
