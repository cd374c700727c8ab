/*
 * arena.h — bump allocation inside one block reserved per context.
 *
 * The block is sized once for the worst case (max batch x max length), and
 * reset after each forward pass, so the hot path never calls malloc. The
 * block may live in device memory: the arena only does pointer arithmetic.
 */
#ifndef EMBER_CORE_ARENA_H
#define EMBER_CORE_ARENA_H

#include <stddef.h>

typedef struct ember_arena {
    char *base;
    size_t size;
    size_t used;
    size_t high_water; /* most ever used: checks the worst-case estimate */
} ember_arena;

/* 64-byte aligned; NULL when the block is exhausted (a sizing bug). */
static inline void *ember_arena_alloc(ember_arena *a, size_t bytes) {
    size_t start = (a->used + 63) & ~(size_t)63;
    if (start > a->size || bytes > a->size - start)
        return NULL;
    a->used = start + bytes;
    if (a->used > a->high_water)
        a->high_water = a->used;
    return a->base + start;
}

static inline void ember_arena_reset(ember_arena *a) { a->used = 0; }

/* Bytes a sequence of allocations needs, counting alignment padding. */
static inline size_t ember_arena_need(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

#endif
