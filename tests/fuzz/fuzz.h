/* SPDX-License-Identifier: MIT */
/* Shared by the fuzz targets and their replay driver. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant, checked in every build type (assert() would vanish with NDEBUG). */
#define fuzz_check(expr)                                                                        \
        do {                                                                                    \
                if (!(expr)) {                                                                  \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,   \
                                #expr);                                                         \
                        abort();                                                                \
                }                                                                               \
        } while (0)
