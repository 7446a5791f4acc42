/* SPDX-License-Identifier: MIT */
/* The configuration validator on arbitrary documents: it either accepts a document, and then every
 * interface it returns is complete, or it refuses it with at least one message, each naming the label
 * and ending in text; it never crashes or leaks. */
#include <string.h>

#include "conf.h"
#include "fuzz.h"

/* Configuration files are small; larger inputs only slow the fuzzer down. */
#define INPUT_MAX 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        if (size > INPUT_MAX)
                return 0;

        r = config_parse((const char *) data, size, "fuzz.json", &c, &errors);
        if (r == 0) {
                fuzz_check(c);
                fuzz_check(!errors);
                fuzz_check(c->n_ifaces > 0);
                for (size_t i = 0; i < c->n_ifaces; i++) {
                        const TapotunIfaceConfig *f = &c->ifaces[i];

                        fuzz_check(f->name[0] != '\0' && strlen(f->name) <= 15);
                        fuzz_check(config_find(c, f->name) != NULL);
                        if (f->mode == TAPOTUN_MODE_SERVER)
                                fuzz_check(f->port > 0 && f->mtu >= 68);
                        else
                                fuzz_check(f->mode == TAPOTUN_MODE_CLIENT && f->server && f->token);
                }
        } else {
                fuzz_check(r == -EINVAL);
                fuzz_check(!c);
                fuzz_check(errors && errors[0]);
                for (char **e = errors; *e; e++)
                        fuzz_check(strncmp(*e, "fuzz.json", 9) == 0 && strlen(*e) > 12);
        }
        return 0;
}
