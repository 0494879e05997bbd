/*
 * A small open-addressing hash table of pointers, keyed by bytes that each
 * item carries itself (a peer's ID, an IP address, a socket address).
 * Keys come from the network, so the hash is SipHash-2-4 with a random key
 * per table (crypto_shorthash): a peer cannot pick colliding keys.
 * Linear probing with backward-shift deletion; the table doubles at 3/4
 * load.  Not thread-safe: the loop thread owns it.
 */
#ifndef HD_SERVER_HMAP_H
#define HD_SERVER_HMAP_H

#include <stddef.h>
#include <stdint.h>

/* Returns the key of item and its length. */
typedef const void *(*hmap_key_fn)(const void *item, size_t *len);

struct hmap {
    void **slots;
    size_t cap; /* power of two, or 0 before the first insert */
    size_t count;
    hmap_key_fn key;
    uint8_t seed[16];
};

/* Initialise an empty table (no allocation until the first insert). */
void hmap_init(struct hmap *m, hmap_key_fn key);

/* Free the slot array; the items are the caller's. */
void hmap_cleanup(struct hmap *m);

/* The item with this key, or NULL. */
void *hmap_get(const struct hmap *m, const void *key, size_t len);

/*
 * Insert item; an item with the same key must not be present (check with
 * hmap_get first).  Returns 0 or -ENOMEM.
 */
int hmap_put(struct hmap *m, void *item);

/* Remove and return the item with this key, or NULL. */
void *hmap_del(struct hmap *m, const void *key, size_t len);

/*
 * Iterate: for (size_t i = 0; (it = hmap_next(m, &i)) != NULL;).  Removing
 * the item just returned is allowed if the caller then restarts at the
 * same index (hmap_del shifts a later item into the freed slot).
 */
void *hmap_next(const struct hmap *m, size_t *pos);

#endif
