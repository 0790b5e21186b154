/* Logging for every module: one line per event on stderr, with a level and a timestamp in the
 * style SGLang prints ("[2025-01-01 12:00:00] message"). The level is process-wide and set once
 * from --log-level; calls are thread-safe (one fprintf per line). */
#ifndef SGLC_BASE_LOG_H
#define SGLC_BASE_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

void log_set_level(log_level level);
log_level log_get_level(void);
/* Parses "debug", "info", "warning"/"warn", "error", "critical"; returns -1 when unknown. */
int log_parse_level(const char *name);
void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
