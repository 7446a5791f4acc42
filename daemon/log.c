/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool use_journal = false;

/* Journal only when our stderr is the journal stream systemd set up for us, as systemd does itself. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

void log_open(void) {
        const char *e;

        use_journal = stderr_is_journal();

        e = getenv("TAPOTUN_LOG_LEVEL");
        if (e) {
                static const char *const names[] = { "emerg", "alert", "crit", "err",
                                                     "warning", "notice", "info", "debug" };
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (streq(e, names[i]))
                                max_level = (int) i;
        }
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_internalv(int level, int error, const char *key, const char *value, const char *format, va_list ap) {
        char buf[2048];

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;

        errno = error;
        (void) vsnprintf(buf, sizeof buf, format, ap);

        if (use_journal) {
                char msg[sizeof buf + 8], prio[16], err[24], field[256];
                struct iovec iov[4];
                size_t n = 0;

                snprintf(msg, sizeof msg, "MESSAGE=%s", buf);
                snprintf(prio, sizeof prio, "PRIORITY=%i", level);
                iov[n++] = (struct iovec) { msg, strlen(msg) };
                iov[n++] = (struct iovec) { prio, strlen(prio) };
                if (error) {
                        snprintf(err, sizeof err, "ERRNO=%i", error);
                        iov[n++] = (struct iovec) { err, strlen(err) };
                }
                if (key && value) {
                        snprintf(field, sizeof field, "%s=%s", key, value);
                        iov[n++] = (struct iovec) { field, strlen(field) };
                }
                (void) sd_journal_sendv(iov, (int) n);
        } else if (value)
                (void) fprintf(stderr, "%s: %s\n", value, buf);
        else
                (void) fprintf(stderr, "%s\n", buf);

        return -error;
}

int log_internal(int level, int error, const char *key, const char *value, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, key, value, format, ap);
        va_end(ap);
        return r;
}
