/* SPDX-License-Identifier: MIT */
/* A longest-prefix-match table for IPv4 and IPv6: one open-addressing hash of every prefix, probed once
 * per prefix length in use, longest first. Each prefix carries the sorted, distinct list of owners
 * (client indices) that configured it. Built once, read-only afterwards; lookups never allocate. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tapotun/plugin.h>

/* An address as host-order words: IPv4 in the low 32 bits of lo (hi = 0), IPv6 as hi:lo. */
typedef struct PrefixAddr {
        uint64_t hi;
        uint64_t lo;
} PrefixAddr;

/* One prefix to insert; OWNER is whatever the caller wants returned (a client index). */
typedef struct PrefixItem {
        PrefixAddr addr;
        uint16_t key; /* family and prefix length, as prefix_item_init() sets it */
        uint32_t owner;
} PrefixItem;

typedef struct PrefixEntry {
        PrefixAddr addr;        /* masked to the prefix length */
        const uint32_t *owners; /* ascending, distinct */
        uint32_t n_owners;
        uint16_t key;           /* 0 for an empty slot */
} PrefixEntry;

typedef struct PrefixTable PrefixTable;

PrefixAddr prefix_addr_from_bytes(bool v6, const uint8_t *bytes);

/* Fills *RET from P with OWNER. HOST takes P's address as a single address, whatever its prefix length
 * (a client's or the server's own address); otherwise the host bits are cleared. -EAFNOSUPPORT for an
 * unset or unknown family, -EINVAL for a prefix length beyond the family's. */
int prefix_item_init(const TapotunPrefix *p, bool host, uint32_t owner, PrefixItem *ret);

/* Builds a table from ITEMS (sorted in place; any number of duplicates). */
int prefix_table_new(PrefixItem *items, size_t n_items, PrefixTable **ret);
PrefixTable *prefix_table_free(PrefixTable *t);

size_t prefix_table_size(const PrefixTable *t);

/* The matches for ADDR, longest prefix first: start with *CURSOR = 0 and call until NULL. */
const PrefixEntry *prefix_table_next(const PrefixTable *t, bool v6, PrefixAddr addr, unsigned *cursor);
