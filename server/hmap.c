/* Open-addressing hash table with SipHash keys; see hmap.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/hmap.h"

static uint64_t hash_key(const struct hmap *m, const void *key, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    crypto_shorthash(out, key, len, m->seed);
    memcpy(&h, out, sizeof(h));
    return h;
}

static int same_key(const struct hmap *m, const void *item, const void *key,
                    size_t len)
{
    size_t ilen;
    const void *ikey = m->key(item, &ilen);

    return ilen == len && memcmp(ikey, key, len) == 0;
}

void hmap_init(struct hmap *m, hmap_key_fn key)
{
    memset(m, 0, sizeof(*m));
    m->key = key;
    randombytes_buf(m->seed, sizeof(m->seed));
}

void hmap_cleanup(struct hmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

void *hmap_get(const struct hmap *m, const void *key, size_t len)
{
    size_t mask, i;

    if (m->count == 0)
        return NULL;
    mask = m->cap - 1;
    for (i = hash_key(m, key, len) & mask; m->slots[i]; i = (i + 1) & mask) {
        if (same_key(m, m->slots[i], key, len))
            return m->slots[i];
    }
    return NULL;
}

static void place(struct hmap *m, void *item)
{
    size_t len, mask = m->cap - 1, i;
    const void *key = m->key(item, &len);

    for (i = hash_key(m, key, len) & mask; m->slots[i]; i = (i + 1) & mask)
        ;
    m->slots[i] = item;
}

static int grow(struct hmap *m)
{
    size_t old_cap = m->cap, new_cap = old_cap ? old_cap * 2 : 16;
    void **old = m->slots;

    m->slots = calloc(new_cap, sizeof(*m->slots));
    if (m->slots == NULL) {
        m->slots = old;
        return -ENOMEM;
    }
    m->cap = new_cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i])
            place(m, old[i]);
    }
    free(old);
    return 0;
}

int hmap_put(struct hmap *m, void *item)
{
    int r;

    if ((m->count + 1) * 4 > m->cap * 3 && (r = grow(m)) != 0)
        return r;
    place(m, item);
    m->count++;
    return 0;
}

void *hmap_del(struct hmap *m, const void *key, size_t len)
{
    size_t mask, i, j;
    void *found;

    if (m->count == 0)
        return NULL;
    mask = m->cap - 1;
    for (i = hash_key(m, key, len) & mask; m->slots[i]; i = (i + 1) & mask) {
        if (same_key(m, m->slots[i], key, len))
            break;
    }
    if ((found = m->slots[i]) == NULL)
        return NULL;
    /* Backward shift: move later items of the run into the hole. */
    for (j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
        size_t klen;
        const void *k = m->key(m->slots[j], &klen);
        size_t home = hash_key(m, k, klen) & mask;

        /* Item at j may move to i if its home is not in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = NULL;
    m->count--;
    return found;
}

void *hmap_next(const struct hmap *m, size_t *pos)
{
    while (*pos < m->cap) {
        void *it = m->slots[(*pos)++];
        if (it)
            return it;
    }
    return NULL;
}
