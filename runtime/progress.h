/* progress.h - a one-line progress bar on stderr for long work (calibration, training),
 * drawn only when stderr is a terminal, so logs and pipes stay clean. */
#ifndef CRUN_RUNTIME_PROGRESS_H
#define CRUN_RUNTIME_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct Progress {
    bool on;
    const char *label;
    int64_t total;
    int last_pct;
} Progress;

/* on: the caller wants a bar (still none unless stderr is a terminal). */
void progress_start(Progress *p, bool on, const char *label, int64_t total);
/* done of total finished; note is shown after the bar (NULL for none). */
void progress_update(Progress *p, int64_t done, const char *note);
/* Ends the line. */
void progress_end(Progress *p);

#endif
