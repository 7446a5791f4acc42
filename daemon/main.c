/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <locale.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "bus-names.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"

static void help(void) {
        printf("%s [OPTIONS...] CONFIG\n\n"
               "Carries IP traffic over HTTP(S) between TUN interfaces.\n\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n"
               "  -d --debug              Log debug messages\n"
               "     --bus-address=ADDR   Serve the D-Bus interface on this bus instead of the system\n"
               "                          bus (default: $" TAPOTUN_BUS_ADDRESS_ENV ")\n"
               "     --instance=NAME      Own org.tapotun1.NAME on the bus (default: the CONFIG file\n"
               "                          name without \".json\")\n",
               program_invocation_short_name);
}

static int run(int argc, char *argv[]) {
        enum {
                ARG_BUS_ADDRESS = 0x100,
                ARG_INSTANCE,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "debug", no_argument, NULL, 'd' },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "instance", required_argument, NULL, ARG_INSTANCE },
                {},
        };
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *bus_address = NULL, *instance = NULL;
        struct rlimit nofile;
        int c, r;

        while ((c = getopt_long(argc, argv, "hd", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("tapotund %s\n", PACKAGE_VERSION);
                        return 0;
                case 'd':
                        log_set_max_level(LOG_DEBUG);
                        break;
                case ARG_BUS_ADDRESS:
                        bus_address = optarg;
                        break;
                case ARG_INSTANCE:
                        instance = optarg;
                        break;
                default:
                        return -EINVAL;
                }

        if (optind + 1 != argc)
                return log_error_errno(EINVAL, "Expected exactly one argument, the configuration file; "
                                       "see --help.");

        /* Each client holds two connections (more behind a proxy): the usual soft limit of 1024 would
         * stop a server near 500 clients. Nothing here uses select(), so take what the hard limit allows,
         * as systemd's own daemons do. */
        if (getrlimit(RLIMIT_NOFILE, &nofile) >= 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &nofile);
        }

        /* Peer queues grow in bursts and are trimmed once drained (queue_trim()): with glibc's moving
         * threshold a ring freed once would make the next ones come from the heap, which seldom shrinks.
         * A fixed threshold keeps big rings in their own mappings, so trimming returns them. */
        (void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);

        r = manager_new(&m);
        if (r < 0)
                return r;
        r = manager_bus_set_options(m, bus_address, instance);
        if (r < 0)
                return r;
        r = manager_load_config(m, argv[optind]);
        if (r < 0)
                return r;
        r = manager_start(m);
        if (r < 0)
                return r;
        return manager_run(m);
}

int main(int argc, char *argv[]) {
        int r;

        setlocale(LC_ALL, "");
        log_open();

        r = run(argc, argv);
        if (r < 0)
                (void) sd_notifyf(false, "ERRNO=%i", -r);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
