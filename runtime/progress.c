/* progress.c - see progress.h. */
#include "runtime/progress.h"

#include <stdio.h>
#include <unistd.h>

void progress_start(Progress *p, bool on, const char *label, int64_t total)
{
    *p = (Progress){on && isatty(2), label, total > 0 ? total : 1, -1};
}

void progress_update(Progress *p, int64_t done, const char *note)
{
    if (!p->on)
        return;
    int pct = (int)(done * 100 / p->total);
    if (pct == p->last_pct && done != p->total)
        return; /* redraw only when the bar moves */
    p->last_pct = pct;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld %s", p->label, bar, pct, (long long)done, (long long)p->total,
            note ? note : "");
    fflush(stderr);
}

void progress_end(Progress *p)
{
    if (p->on)
        fprintf(stderr, "\n");
}
