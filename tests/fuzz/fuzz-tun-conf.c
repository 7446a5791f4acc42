/* SPDX-License-Identifier: MIT */
/* The x-tun-conf and x-tun-offload header codecs and the Base64 beneath them, on arbitrary header
 * values: whatever decodes must encode back to the same text (the decoder accepts one spelling per
 * value), and arbitrary bytes must survive Base64 both ways. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

/* Header values are bounded by the HTTP layer long before this. */
#define INPUT_MAX 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char s[INPUT_MAX + 1], e[4 * ((INPUT_MAX + 2) / 3) + 1], o[64];
        uint8_t b[INPUT_MAX];
        TunConf c;
        uint32_t bits;
        ssize_t n;

        if (size > INPUT_MAX)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        if (wire_tun_conf_decode(s, &c) == 0) {
                char t[WIRE_TUN_CONF_STRLEN + 1];

                fuzz_check(c.mtu >= 68 && c.prefixlen <= 32);
                wire_tun_conf_encode(&c, t);
                fuzz_check(strcmp(t, s) == 0);
        }

        n = wire_base64_decode(s, b, sizeof(b));
        if (n >= 0) {
                fuzz_check((size_t) n <= sizeof(b));
                wire_base64_encode(b, (size_t) n, e);
                fuzz_check(strcmp(e, s) == 0);
        } else
                fuzz_check(n == -EBADMSG);

        wire_base64_encode(data, size, e);
        fuzz_check(strlen(e) == 4 * ((size + 2) / 3));
        n = wire_base64_decode(e, b, size);
        fuzz_check(n == (ssize_t) size);
        fuzz_check(memcmp(b, data, size) == 0);

        bits = wire_offload_parse(s);
        fuzz_check((bits & ~WIRE_OFFLOAD_ALL) == 0);
        wire_offload_format(bits, o, sizeof(o));
        fuzz_check(wire_offload_parse(o) == bits);

        return 0;
}
