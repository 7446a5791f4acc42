/* SPDX-License-Identifier: MIT */
/* Runs a fuzz target on every file of the directories (or on the files) named on the command line, so
 * the seed corpus and the crash regressions in it are checked by any compiler, without libFuzzer. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Far above any corpus file; a larger one is a mistake, not an input. */
#define REPLAY_FILE_MAX (16u * 1024u * 1024u)

static int replay_file(const char *path) {
        uint8_t *buf;
        struct stat st;
        size_t n;
        FILE *f;

        f = fopen(path, "re");
        if (!f) {
                int r = -errno;

                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        if (fstat(fileno(f), &st) < 0 || st.st_size > (off_t) REPLAY_FILE_MAX) {
                fprintf(stderr, "%s: cannot stat or larger than %u bytes\n", path, REPLAY_FILE_MAX);
                fclose(f);
                return -EFBIG;
        }

        /* One spare byte so an empty file still gets a valid pointer. */
        buf = malloc((size_t) st.st_size + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, (size_t) st.st_size, f);
        fclose(f);
        if (n != (size_t) st.st_size) {
                fprintf(stderr, "%s: short read\n", path);
                free(buf);
                return -EIO;
        }

        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        return 0;
}

static int replay_dir(const char *dir, unsigned *count) {
        struct dirent **entries;
        int n, r = 0;

        n = scandir(dir, &entries, NULL, alphasort);
        if (n < 0) {
                r = -errno;
                fprintf(stderr, "%s: %s\n", dir, strerror(-r));
                return r;
        }

        for (int i = 0; i < n; i++) {
                char path[4096];

                if (entries[i]->d_name[0] != '.' && r == 0) {
                        (void) snprintf(path, sizeof(path), "%s/%s", dir, entries[i]->d_name);
                        r = replay_file(path);
                        if (r == 0)
                                (*count)++;
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
                return EXIT_FAILURE;
        }

        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        return EXIT_FAILURE;
                }
                if (S_ISDIR(st.st_mode))
                        r = replay_dir(argv[i], &count);
                else {
                        r = replay_file(argv[i]);
                        if (r == 0)
                                count++;
                }
                if (r < 0)
                        return EXIT_FAILURE;
        }

        /* A missing corpus would make this test pass without checking anything. */
        if (count == 0) {
                fprintf(stderr, "no inputs found\n");
                return EXIT_FAILURE;
        }

        printf("%u inputs replayed without failure\n", count);
        return EXIT_SUCCESS;
}
