/* Host checks for serving: the settings SGLang's deployment guide tunes (CPU frequency governor
 * `performance`, kernel NUMA balancing off, vm.swappiness 10, transparent huge pages not
 * `never`) plus what the machine offers (CPU features, cores, memory, cgroup limit).
 * `sglc check_system` prints them and can fix them; the server logs the WARN lines at start-up.
 *
 * Every /proc and /sys path is taken under `sysroot` (NULL or "" = the real root), so tests run
 * on a fake tree; CPU features and the affinity count come from cpuid and sched_getaffinity, so
 * they always describe the real machine. Checks only read; sysinfo_fix writes, and only the
 * files of the one line it is given. Nothing here checks privileges: callers decide who may
 * fix. No global state: calls are thread-safe once cpu_get() has run (start-up). Bad file
 * contents (empty, garbage, huge) give a WARN or N/A line with a message, never a crash. */
#ifndef SGLC_BASE_SYSINFO_H
#define SGLC_BASE_SYSINFO_H

typedef enum { SYSINFO_OK = 0, SYSINFO_WARN = 1, SYSINFO_NA = 2 } sysinfo_status;

/* Which check a line comes from; sysinfo_fix dispatches on it. */
typedef enum {
    SYSINFO_GOVERNOR,
    SYSINFO_NUMA_BALANCING,
    SYSINFO_SWAPPINESS,
    SYSINFO_THP,
    SYSINFO_CPU_FEATURES,
    SYSINFO_CORES,
    SYSINFO_MEMORY,
    SYSINFO_CGROUP_MEMORY,
    SYSINFO_NUM_CHECKS
} sysinfo_check_id;

typedef struct {
    sysinfo_check_id id;
    sysinfo_status status;
    char name[40];   /* "vm.swappiness" */
    char value[240]; /* the current value, or why there is none */
    char fix[160];   /* shell command that fixes a WARN on a real host; "" when none */
} sysinfo_line;

/* Runs every check and fills up to `max` lines, in a fixed order. Returns the number filled
 * (SYSINFO_NUM_CHECKS when max allows). */
int sysinfo_check(const char *sysroot, sysinfo_line *lines, int max);

/* Applies the fix of one WARN line by writing the files under sysroot. On success returns 0 and
 * puts what changed in `did` ("vm.swappiness: 60 -> 10"); on failure returns -1 and puts the
 * reason there (file and errno text). Lines without a fix return -1. */
int sysinfo_fix(const char *sysroot, const sysinfo_line *line, char *did, int len);

/* "OK", "WARN" or "N/A". */
const char *sysinfo_status_name(sysinfo_status status);

/* One line as check_system prints it: `WARN  vm.swappiness: 60 -> fix: sysctl -w ...`. */
void sysinfo_format(const sysinfo_line *line, char *buf, int len);

/* Runs the checks on the real host and logs each WARN line (log_warn); returns their count. */
int sysinfo_log_warnings(void);

#endif
