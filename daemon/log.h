/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/* Log lines go to the journal, with structured fields, when stderr is connected to it (JOURNAL_STREAM),
 * to stderr otherwise. */
void log_open(void);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Logs FORMAT at LEVEL (a syslog priority). When ERROR is non-zero, %m expands to its text and the call
 * returns -abs(ERROR), so "log and return" is one statement; otherwise it returns 0. KEY/VALUE, when not
 * NULL, name the object the message is about: the journal gets KEY=VALUE (TAPOTUN_TUNNEL, TAPOTUN_PEER,
 * TAPOTUN_PLUGIN) and stderr gets a "VALUE: " prefix. */
int log_internal(int level, int error, const char *key, const char *value, const char *format, ...)
        _printf_(5, 6);
int log_internalv(int level, int error, const char *key, const char *value, const char *format, va_list ap)
        _printf_(5, 0);

#define log_full_errno(level, error, ...) log_internal((level), (error), NULL, NULL, __VA_ARGS__)

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_NOTICE, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)

/* Messages about one tunnel interface or one peer. */
#define log_tunnel_full_errno(name, level, error, ...)                                           \
        log_internal((level), (error), "TAPOTUN_TUNNEL", (name), __VA_ARGS__)
#define log_peer_full_errno(name, level, error, ...)                                             \
        log_internal((level), (error), "TAPOTUN_PEER", (name), __VA_ARGS__)
