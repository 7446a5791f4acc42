/* SPDX-License-Identifier: MIT */
/* tapotunctl's printer layer: every read verb gets JSON from the daemons' Describe() and hands it here, to
 * be dumped as it is (--json) or shown to a human as aligned columns with human units. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef struct Table Table;

/* Columns are aligned by their display width (UTF-8 aware); the last one is not padded. */
int table_new(size_t n_columns, Table **ret);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);
/* Numbers read better right-aligned. */
void table_align_right(Table *t, size_t column);
/* Between columns; default two spaces. */
void table_set_separator(Table *t, const char *separator);
/* Appends a cell; rows fill from left to right. NULL and "" show as "-". */
int table_add(Table *t, const char *cell);
void table_print(const Table *t, const char *indent);

/* Terminal columns that S takes in the current locale. */
size_t display_width(const char *s);

#define FORMAT_BYTES_MAX 32
/* "512 B", "1.5 KiB", "3.2 MiB", ... */
const char *format_bytes(uint64_t n, char buf[static FORMAT_BYTES_MAX]);
#define FORMAT_TIME_MAX 96
/* How long ago CLOCK_REALTIME microsecond USEC was: "3min 2s ago"; NULL when USEC is 0 (never). */
const char *format_ago(uint64_t usec, char buf[static FORMAT_TIME_MAX]);
/* "2024-05-01 12:00:00 CEST (3min 2s ago)"; NULL when USEC is 0. */
const char *format_timestamp(uint64_t usec, char buf[static FORMAT_TIME_MAX]);

/* The printers. Each takes the JSON it prints, from Describe() of a daemon ("instance" is the daemon's
 * instance name), and writes to stdout. */
void print_json(json_t *j);
/* `list`: an array of Describe() objects. */
void print_instances(json_t *instances);
/* `status`: one Describe() object. */
void print_status(json_t *describe);
/* `peers`: an array of peer objects, each with "instance" added; WITH_INSTANCE adds that column. */
void print_peers(json_t *peers, bool with_instance);
/* `show`: one peer object with "instance" added. */
void print_peer(json_t *peer);
