/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "prefix-table.h"

/* A key packs "slot used", the family and the prefix length, so that 0 means an empty slot. */
#define KEY_USED 0x8000u
#define KEY_V6 0x0100u
#define KEY(v6, len) ((uint16_t) (KEY_USED | ((v6) ? KEY_V6 : 0u) | (len)))
#define KEY_LEN(k) ((unsigned) ((k) & 0xffu))
#define KEY_IS_V6(k) (((k) & KEY_V6) != 0)

#define MAX_LEN(v6) ((v6) ? 128u : 32u)

struct PrefixTable {
        PrefixEntry *slots;
        size_t mask;    /* slot count - 1; the count is a power of two at least twice the entries */
        size_t n_entries;
        uint32_t *owners;
        /* Prefix lengths in use per family (0: IPv4, 1: IPv6), longest first. */
        uint8_t lens[2][129];
        uint8_t n_lens[2];
};

static uint64_t read_be32(const uint8_t *b) {
        return (uint64_t) b[0] << 24 | (uint64_t) b[1] << 16 | (uint64_t) b[2] << 8 | b[3];
}

static uint64_t read_be64(const uint8_t *b) {
        return read_be32(b) << 32 | read_be32(b + 4);
}

PrefixAddr prefix_addr_from_bytes(bool v6, const uint8_t *bytes) {
        if (v6)
                return (PrefixAddr) { .hi = read_be64(bytes), .lo = read_be64(bytes + 8) };
        return (PrefixAddr) { .lo = read_be32(bytes) };
}

static PrefixAddr addr_mask(PrefixAddr a, bool v6, unsigned len) {
        /* Shifts stay below 64: a zero-length mask is handled on its own. */
        if (!v6) {
                a.lo &= len == 0 ? 0 : (UINT64_C(0xffffffff) << (32 - len)) & UINT64_C(0xffffffff);
                a.hi = 0;
        } else if (len <= 64) {
                a.hi &= len == 0 ? 0 : UINT64_MAX << (64 - len);
                a.lo = 0;
        } else
                a.lo &= UINT64_MAX << (128 - len);
        return a;
}

/* splitmix64's finaliser: keys come from the configuration, so a good mix is all we need. */
static uint64_t mix64(uint64_t x) {
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        x ^= x >> 31;
        return x;
}

static size_t key_hash(PrefixAddr a, uint16_t key) {
        return (size_t) mix64(a.hi ^ mix64(a.lo ^ ((uint64_t) key << 48)));
}

int prefix_item_init(const TapotunPrefix *p, bool host, uint32_t owner, PrefixItem *ret) {
        bool v6;
        unsigned len;

        if (p->family != AF_INET && p->family != AF_INET6)
                return -EAFNOSUPPORT;
        v6 = p->family == AF_INET6;
        if (p->prefixlen > MAX_LEN(v6))
                return -EINVAL;
        len = host ? MAX_LEN(v6) : p->prefixlen;

        *ret = (PrefixItem) {
                .addr = addr_mask(prefix_addr_from_bytes(v6, p->addr.bytes), v6, len),
                .key = KEY(v6, len),
                .owner = owner,
        };
        return 0;
}

static int item_compare(const void *a, const void *b) {
        const PrefixItem *x = a, *y = b;

        if (x->key != y->key)
                return x->key < y->key ? -1 : 1;
        if (x->addr.hi != y->addr.hi)
                return x->addr.hi < y->addr.hi ? -1 : 1;
        if (x->addr.lo != y->addr.lo)
                return x->addr.lo < y->addr.lo ? -1 : 1;
        if (x->owner != y->owner)
                return x->owner < y->owner ? -1 : 1;
        return 0;
}

static bool item_same_prefix(const PrefixItem *x, const PrefixItem *y) {
        return x->key == y->key && x->addr.hi == y->addr.hi && x->addr.lo == y->addr.lo;
}

static const PrefixEntry *table_find(const PrefixTable *t, PrefixAddr a, uint16_t key) {
        /* The table is at most half full, so every probe sequence ends at an empty slot. */
        for (size_t i = key_hash(a, key) & t->mask;; i = (i + 1) & t->mask) {
                const PrefixEntry *e = &t->slots[i];

                if (e->key == 0)
                        return NULL;
                if (e->key == key && e->addr.hi == a.hi && e->addr.lo == a.lo)
                        return e;
        }
}

static PrefixEntry *table_slot_for(PrefixTable *t, PrefixAddr a, uint16_t key) {
        size_t i = key_hash(a, key) & t->mask;

        while (t->slots[i].key != 0)
                i = (i + 1) & t->mask;
        return &t->slots[i];
}

int prefix_table_new(PrefixItem *items, size_t n_items, PrefixTable **ret) {
        bool used[2][129] = {};
        size_t n_entries = 0, n_slots = 16, n_owners = 0;
        PrefixTable *t;

        /* Owner lists are indexed with uint32_t. */
        if (n_items > UINT32_MAX / 2)
                return -E2BIG;

        if (n_items > 0)
                qsort(items, n_items, sizeof(PrefixItem), item_compare);
        for (size_t i = 0; i < n_items; i++)
                if (i == 0 || !item_same_prefix(&items[i - 1], &items[i]))
                        n_entries++;
        while (n_slots < 2 * n_entries)
                n_slots <<= 1;

        t = calloc(1, sizeof(PrefixTable));
        if (!t)
                return -ENOMEM;
        t->slots = calloc(n_slots, sizeof(PrefixEntry));
        t->owners = calloc(n_items > 0 ? n_items : 1, sizeof(uint32_t));
        if (!t->slots || !t->owners) {
                prefix_table_free(t);
                return -ENOMEM;
        }
        t->mask = n_slots - 1;
        t->n_entries = n_entries;

        for (size_t i = 0; i < n_items;) {
                const PrefixItem *first = &items[i];
                PrefixEntry *e = table_slot_for(t, first->addr, first->key);

                e->addr = first->addr;
                e->key = first->key;
                e->owners = &t->owners[n_owners];
                for (; i < n_items && item_same_prefix(first, &items[i]); i++)
                        if (e->n_owners == 0 || e->owners[e->n_owners - 1] != items[i].owner)
                                t->owners[n_owners + e->n_owners++] = items[i].owner;
                n_owners += e->n_owners;
                used[KEY_IS_V6(first->key)][KEY_LEN(first->key)] = true;
        }

        for (unsigned f = 0; f < 2; f++)
                for (unsigned len = MAX_LEN(f) + 1; len-- > 0;)
                        if (used[f][len])
                                t->lens[f][t->n_lens[f]++] = (uint8_t) len;

        *ret = t;
        return 0;
}

PrefixTable *prefix_table_free(PrefixTable *t) {
        if (!t)
                return NULL;
        free(t->slots);
        free(t->owners);
        free(t);
        return NULL;
}

size_t prefix_table_size(const PrefixTable *t) {
        return t->n_entries;
}

const PrefixEntry *prefix_table_next(const PrefixTable *t, bool v6, PrefixAddr addr, unsigned *cursor) {
        while (*cursor < t->n_lens[v6]) {
                unsigned len = t->lens[v6][(*cursor)++];
                const PrefixEntry *e = table_find(t, addr_mask(addr, v6, len), KEY(v6, len));

                if (e)
                        return e;
        }
        return NULL;
}
