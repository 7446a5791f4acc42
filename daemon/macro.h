/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libintl.h>

#define _(s) gettext(s)
#define N_(s) (s)

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _pure_ __attribute__((pure))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define USEC_PER_MSEC 1000ull
#define USEC_PER_SEC 1000000ull

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* Frees *p and returns NULL, for "p = mfree(p)". */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

#define _cleanup_free_ _cleanup_(freep)

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

#define streq(a, b) (strcmp((a), (b)) == 0)

/* Defines NAME##p(NAME **p) calling the NULL-safe destructor FUNC. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                 \
        static inline void func##p(type *p) {                   \
                if (*p)                                         \
                        *p = func(*p);                          \
        }

#define TAKE_PTR(p)                             \
        ({                                      \
                typeof(p) _t = (p);             \
                (p) = NULL;                     \
                _t;                             \
        })

#define TAKE_FD(fd)                             \
        ({                                      \
                int _t = (fd);                  \
                (fd) = -EBADF;                  \
                _t;                             \
        })

static inline uint16_t unaligned_read_le16(const void *p) {
        const uint8_t *b = p;
        return (uint16_t) (b[0] | (b[1] << 8));
}

static inline void unaligned_write_le16(void *p, uint16_t v) {
        uint8_t *b = p;
        b[0] = v & 0xff;
        b[1] = v >> 8;
}

/* qsort() that accepts an empty (possibly NULL) array, which plain qsort() does not. */
static inline void qsort_safe(void *base, size_t n, size_t size, int (*compar)(const void *, const void *)) {
        if (n > 1)
                qsort(base, n, size, compar);
}

/* Enum <-> string tables shared by the config, the bus and the CLI. */
#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                   \
        const char *name##_to_string(type i) {                                   \
                if ((size_t) i >= ELEMENTSOF(name##_table))                      \
                        return NULL;                                             \
                return name##_table[i];                                          \
        }                                                                        \
        type name##_from_string(const char *s) {                                 \
                if (!s)                                                          \
                        return (type) -EINVAL;                                   \
                for (size_t _i = 0; _i < ELEMENTSOF(name##_table); _i++)         \
                        if (name##_table[_i] && streq(name##_table[_i], s))      \
                                return (type) _i;                                \
                return (type) -EINVAL;                                           \
        }
