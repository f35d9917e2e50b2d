/* strmap.c - open-addressing hash map (FNV-1a, linear probing, no deletion). */
#include "runtime/strmap.h"

#include "runtime/core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static StrMapSlot *find_slot(StrMapSlot *slots, size_t cap, const char *key)
{
    size_t i = (size_t)hash_str(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static bool grow(StrMap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    StrMapSlot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            *find_slot(slots, cap, m->slots[i].key) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return true;
}

bool strmap_put(StrMap *m, const char *key, int value)
{
    if ((m->count + 1) * 2 > m->cap && !grow(m))
        return false;
    StrMapSlot *s = find_slot(m->slots, m->cap, key);
    if (!s->key)
        m->count++;
    s->key = key;
    s->value = value;
    return true;
}

int strmap_get(const StrMap *m, const char *key)
{
    if (!m->cap)
        return -1;
    const StrMapSlot *s = find_slot(m->slots, m->cap, key);
    return s->key ? s->value : -1;
}

void strmap_free(StrMap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
