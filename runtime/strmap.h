/* strmap.h - open-addressing hash map from borrowed C strings to int. */
#ifndef CRUN_STRMAP_H
#define CRUN_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct StrMapSlot {
    const char *key; /* borrowed: must outlive the map entry */
    int value;
} StrMapSlot;

typedef struct StrMap {
    StrMapSlot *slots;
    size_t cap, count;
} StrMap;

void strmap_free(StrMap *m);
/* Inserts or overwrites. Returns false on allocation failure. */
bool strmap_put(StrMap *m, const char *key, int value);
/* Value for key, or -1. */
int strmap_get(const StrMap *m, const char *key);

#endif
