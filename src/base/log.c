/* Implementation of base/log.h: formats the whole line first so concurrent threads never
 * interleave inside a line. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static log_level current_level = LOG_INFO;

void log_set_level(log_level level) { current_level = level; }
log_level log_get_level(void) { return current_level; }

int log_parse_level(const char *name) {
    if (!strcasecmp(name, "debug")) return LOG_DEBUG;
    if (!strcasecmp(name, "info")) return LOG_INFO;
    if (!strcasecmp(name, "warning") || !strcasecmp(name, "warn")) return LOG_WARN;
    if (!strcasecmp(name, "error") || !strcasecmp(name, "critical")) return LOG_ERROR;
    return -1;
}

void log_msg(log_level level, const char *fmt, ...) {
    if (level < current_level) return;
    static const char *tags[] = {"DEBUG ", "", "WARNING ", "ERROR "};
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    int n = (int)strftime(line, sizeof line, "[%Y-%m-%d %H:%M:%S] ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s", tags[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
