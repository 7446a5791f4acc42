/* SPDX-License-Identifier: MIT */
/* The x-tun-routes / x-tun-conf6 prefix lists and single prefixes, on arbitrary header values: what
 * parses must format to text that parses to the same prefixes, and the relations must agree with each
 * other. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

#define INPUT_MAX (64 * 1024)

static void check_single(const char *s) {
        TapotunPrefix host, net, again;
        char f[64];
        int r;

        r = wire_prefix_parse(s, /* network= */ false, &host);
        if (r < 0) {
                fuzz_check(r == -EINVAL);
                fuzz_check(wire_prefix_parse(s, /* network= */ true, &net) == -EINVAL);
                return;
        }

        wire_prefix_format(&host, f, sizeof(f));
        fuzz_check(wire_prefix_parse(f, false, &again) == 0);
        fuzz_check(wire_prefix_equal(&host, &again));
        fuzz_check(wire_prefix_contains(&host, &host));
        fuzz_check(wire_prefix_overlaps(&host, &host));

        /* A network is a host prefix whose host bits are zero. */
        r = wire_prefix_parse(s, /* network= */ true, &net);
        if (r == 0) {
                fuzz_check(wire_prefix_equal(&host, &net));
                fuzz_check(wire_prefix_parse(f, true, &again) == 0);
        } else
                fuzz_check(r == -EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        TapotunPrefix *p = NULL, *q = NULL;
        char *s, *f = NULL, *g = NULL;
        size_t n, m;
        int r;

        if (size > INPUT_MAX)
                return 0;
        s = malloc(size + 1);
        fuzz_check(s);
        memcpy(s, data, size);
        s[size] = '\0';

        check_single(s);

        r = wire_prefixes_parse(s, &p, &n);
        if (r < 0) {
                fuzz_check(r == -EBADMSG);
                free(s);
                return 0;
        }

        fuzz_check(n <= 1024);
        f = wire_prefixes_format(p, n);
        fuzz_check(f);
        fuzz_check(wire_prefixes_parse(f, &q, &m) == 0);
        fuzz_check(m == n);
        for (size_t i = 0; i < n; i++) {
                fuzz_check(wire_prefix_equal(&p[i], &q[i]));
                fuzz_check(wire_prefix_contains(&p[i], &q[i]));
                if (i > 0)
                        fuzz_check(wire_prefix_overlaps(&p[i - 1], &p[i]) ==
                                   wire_prefix_overlaps(&p[i], &p[i - 1]));
        }
        g = wire_prefixes_format(q, m);
        fuzz_check(g);
        fuzz_check(strcmp(f, g) == 0);

        free(g);
        free(f);
        free(q);
        free(p);
        free(s);
        return 0;
}
