/* Implementation of base/sysinfo.h. Every check reads one small kernel file (sysfs or procfs)
 * under the sysroot and turns it into one line; kernel files are tiny, so each read is capped
 * and anything larger, empty, or not text is reported as malformed rather than trusted. */
#include "base/sysinfo.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cpu.h"
#include "base/log.h"

#define PATH_GOVERNOR_DIR "/sys/devices/system/cpu"
#define PATH_CPU_ONLINE "/sys/devices/system/cpu/online"
#define PATH_NUMA "/proc/sys/kernel/numa_balancing"
#define PATH_SWAPPINESS "/proc/sys/vm/swappiness"
#define PATH_THP "/sys/kernel/mm/transparent_hugepage/enabled"
#define PATH_MEMINFO "/proc/meminfo"
#define PATH_CGROUP_MAX "/sys/fs/cgroup/memory.max"

#define WANT_GOVERNOR "performance"
#define WANT_SWAPPINESS 10 /* SGLang's guide; lower values swap even less, so they pass too */

/* ---- small file helpers ---- */

static int join_path(char *out, size_t cap, const char *sysroot, const char *path) {
    int n = snprintf(out, cap, "%s%s", sysroot ? sysroot : "", path);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Reads a whole small file into buf (NUL-terminated). Returns its length, or -1 with errno set
 * (EFBIG when it does not fit: kernel knobs are a few bytes, so that means a wrong file). */
static long read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    for (;;) {
        if (n == cap - 1) {
            char extra;
            ssize_t r = read(fd, &extra, 1);
            close(fd);
            if (r > 0) {
                errno = EFBIG;
                return -1;
            }
            break;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) {
            close(fd);
            break;
        }
        n += (size_t)r;
    }
    buf[n] = 0;
    return (long)n;
}

static int write_small(const char *path, const char *text, char *err, int len) {
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, (size_t)len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(text), done = 0;
    while (done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, (size_t)len, "cannot write %s: %s", path,
                     w < 0 ? strerror(errno) : "short write");
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    if (close(fd) != 0) {
        snprintf(err, (size_t)len, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Strips surrounding whitespace in place; returns the start. */
static char *trim(char *s, long n) {
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    while (*s && isspace((unsigned char)*s)) s++;
    return s;
}

/* A printable, short copy of untrusted file contents for a message. */
static void quote_value(char *dst, size_t cap, const char *src, long n) {
    size_t o = 0;
    for (long i = 0; i < n && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        if (i == 24) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[o] = 0;
}

/* A whole-string decimal integer within [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static void set_line(sysinfo_line *l, sysinfo_check_id id, const char *name) {
    memset(l, 0, sizeof *l);
    l->id = id;
    l->status = SYSINFO_OK;
    snprintf(l->name, sizeof l->name, "%s", name);
}

static void human_bytes(char *buf, size_t cap, unsigned long long bytes) {
    snprintf(buf, cap, "%.1f GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
}

/* ---- CPU frequency governor ---- */

static int is_cpu_dir(const char *name) {
    if (strncmp(name, "cpu", 3) != 0 || !name[3]) return 0;
    for (const char *p = name + 3; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    return 1;
}

static int is_governor_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    return 1;
}

static int governor_path(char *out, size_t cap, const char *dir, const char *cpu) {
    int n = snprintf(out, cap, "%s/%s/cpufreq/scaling_governor", dir, cpu);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Reads one CPU's governor into gov as a displayable word; returns 0, or -1 if it has none. */
static int read_governor(const char *dir, const char *cpu, char *gov, size_t cap) {
    char path[4096], buf[256];
    if (governor_path(path, sizeof path, dir, cpu) != 0) return -1;
    long len = read_small(path, buf, sizeof buf);
    if (len < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return -1;
        snprintf(gov, cap, "(unreadable: %s)", strerror(errno));
        return 0;
    }
    char *word = trim(buf, len);
    if (!*word)
        snprintf(gov, cap, "(empty)");
    else if (!is_governor_name(word) || strlen(word) >= cap)
        snprintf(gov, cap, "(malformed)");
    else
        snprintf(gov, cap, "%s", word);
    return 0;
}

static void check_governor(const char *sysroot, sysinfo_line *l) {
    set_line(l, SYSINFO_GOVERNOR, "cpu governor");
    snprintf(l->fix, sizeof l->fix,
             "echo performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor");
    char dir[4096];
    DIR *d = join_path(dir, sizeof dir, sysroot, PATH_GOVERNOR_DIR) == 0 ? opendir(dir) : NULL;
    /* Distinct governors with their CPU counts; a few kinds at most in practice. */
    enum { KINDS = 4 };
    char kinds[KINDS][48];
    int counts[KINDS] = {0}, nkinds = 0, ncpu = 0, nother = 0, nbad = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!is_cpu_dir(e->d_name)) continue;
        char gov[48];
        if (read_governor(dir, e->d_name, gov, sizeof gov) != 0) continue;
        ncpu++;
        if (strcmp(gov, WANT_GOVERNOR) != 0) nbad++;
        int k = 0;
        while (k < nkinds && strcmp(kinds[k], gov) != 0) k++;
        if (k == nkinds && nkinds < KINDS) snprintf(kinds[nkinds++], sizeof kinds[0], "%s", gov);
        if (k < nkinds)
            counts[k]++;
        else
            nother++;
    }
    if (d) closedir(d);
    if (ncpu == 0) {
        l->status = SYSINFO_NA;
        l->fix[0] = 0;
        snprintf(l->value, sizeof l->value, "no cpufreq on this machine");
        return;
    }
    l->status = nbad ? SYSINFO_WARN : SYSINFO_OK;
    if (!nbad) l->fix[0] = 0;
    size_t o = 0;
    for (int k = 0; k < nkinds && o < sizeof l->value; k++)
        o += (size_t)snprintf(l->value + o, sizeof l->value - o, "%s%s on %d cpu%s", k ? ", " : "",
                              kinds[k], counts[k], counts[k] == 1 ? "" : "s");
    if (nother && o < sizeof l->value)
        snprintf(l->value + o, sizeof l->value - o, ", others on %d cpus", nother);
}

static int fix_governor(const char *sysroot, const sysinfo_line *l, char *did, int len) {
    char dir[4096];
    if (join_path(dir, sizeof dir, sysroot, PATH_GOVERNOR_DIR) != 0) {
        snprintf(did, (size_t)len, "path too long under %s", sysroot);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(did, (size_t)len, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    int changed = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!is_cpu_dir(e->d_name)) continue;
        char gov[48], path[4096];
        if (read_governor(dir, e->d_name, gov, sizeof gov) != 0) continue;
        if (!strcmp(gov, WANT_GOVERNOR)) continue;
        if (governor_path(path, sizeof path, dir, e->d_name) != 0) continue;
        rc = write_small(path, WANT_GOVERNOR "\n", did, len);
        if (rc == 0) changed++;
    }
    closedir(d);
    if (rc != 0) return -1;
    snprintf(did, (size_t)len, "%s: %s -> " WANT_GOVERNOR " (%d cpu%s changed)", l->name, l->value,
             changed, changed == 1 ? "" : "s");
    return 0;
}

/* ---- integer sysctls ---- */

/* Reads an integer knob. Returns 1 with *v set, 0 when absent (N/A written), -1 when malformed
 * or unreadable (WARN or N/A written). */
static int read_knob(const char *sysroot, const char *rel, sysinfo_line *l, long *v) {
    char path[4096], buf[64];
    if (join_path(path, sizeof path, sysroot, rel) != 0) {
        l->status = SYSINFO_NA;
        snprintf(l->value, sizeof l->value, "path too long under sysroot");
        return -1;
    }
    long n = read_small(path, buf, sizeof buf);
    if (n < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        l->status = SYSINFO_NA;
        snprintf(l->value, sizeof l->value, "absent (no %s)", rel);
        return 0;
    }
    if (n < 0 && errno != EFBIG) {
        l->status = SYSINFO_NA;
        snprintf(l->value, sizeof l->value, "cannot read %s: %s", rel, strerror(errno));
        return -1;
    }
    char *s = n < 0 ? buf : trim(buf, n);
    if (n >= 0 && parse_long(s, 0, 1000000, v) == 0) return 1;
    /* Malformed: say so, but keep the fix, since writing the wanted value repairs it. */
    l->status = SYSINFO_WARN;
    if (n < 0)
        snprintf(l->value, sizeof l->value, "malformed %s (too large)", rel);
    else if (!*s)
        snprintf(l->value, sizeof l->value, "malformed %s (empty)", rel);
    else {
        char q[32];
        quote_value(q, sizeof q, s, (long)strlen(s));
        snprintf(l->value, sizeof l->value, "malformed %s ('%s' is not a number)", rel, q);
    }
    return -1;
}

static void check_numa(const char *sysroot, sysinfo_line *l) {
    set_line(l, SYSINFO_NUMA_BALANCING, "kernel.numa_balancing");
    long v;
    int r = read_knob(sysroot, PATH_NUMA, l, &v);
    if (r == 1) {
        snprintf(l->value, sizeof l->value, "%ld", v);
        l->status = v == 0 ? SYSINFO_OK : SYSINFO_WARN;
    }
    if (l->status == SYSINFO_WARN)
        snprintf(l->fix, sizeof l->fix, "sysctl -w kernel.numa_balancing=0");
}

static void check_swappiness(const char *sysroot, sysinfo_line *l) {
    set_line(l, SYSINFO_SWAPPINESS, "vm.swappiness");
    long v;
    int r = read_knob(sysroot, PATH_SWAPPINESS, l, &v);
    if (r == 1) {
        snprintf(l->value, sizeof l->value, "%ld", v);
        l->status = v <= WANT_SWAPPINESS ? SYSINFO_OK : SYSINFO_WARN;
    }
    if (l->status == SYSINFO_WARN) snprintf(l->fix, sizeof l->fix, "sysctl -w vm.swappiness=10");
}

static int fix_file(const char *sysroot, const char *rel, const char *text, const char *shown,
                    const sysinfo_line *l, char *did, int len) {
    char path[4096];
    if (join_path(path, sizeof path, sysroot, rel) != 0) {
        snprintf(did, (size_t)len, "path too long under %s", sysroot);
        return -1;
    }
    if (write_small(path, text, did, len) != 0) return -1;
    snprintf(did, (size_t)len, "%s: %s -> %s", l->name, l->value, shown);
    return 0;
}

/* ---- transparent huge pages ---- */

static int thp_mode_known(const char *m) {
    return !strcmp(m, "always") || !strcmp(m, "madvise") || !strcmp(m, "never");
}

static void check_thp(const char *sysroot, sysinfo_line *l) {
    set_line(l, SYSINFO_THP, "transparent hugepages");
    char path[4096], buf[256];
    long n = join_path(path, sizeof path, sysroot, PATH_THP) == 0
                 ? read_small(path, buf, sizeof buf)
                 : -1;
    if (n < 0) {
        l->status = SYSINFO_NA;
        if (errno == ENOENT || errno == ENOTDIR)
            snprintf(l->value, sizeof l->value, "absent (kernel without transparent hugepages)");
        else
            snprintf(l->value, sizeof l->value, "cannot read %s: %s", PATH_THP, strerror(errno));
        return;
    }
    /* The kernel lists every mode and brackets the active one: "always [madvise] never". A file
     * holding one bare mode (what a write leaves in a fake tree) is read as that mode. */
    char mode[32] = "";
    char *s = trim(buf, n), *open_b = strchr(s, '['),
         *close_b = open_b ? strchr(open_b, ']') : NULL;
    if (open_b && close_b && (size_t)(close_b - open_b - 1) < sizeof mode) {
        memcpy(mode, open_b + 1, (size_t)(close_b - open_b - 1));
        mode[close_b - open_b - 1] = 0;
    } else if (!open_b && strlen(s) < sizeof mode) {
        snprintf(mode, sizeof mode, "%s", s);
    }
    if (!thp_mode_known(mode)) {
        char q[32];
        quote_value(q, sizeof q, s, (long)strlen(s));
        l->status = SYSINFO_WARN;
        snprintf(l->value, sizeof l->value, "malformed %s ('%s' has no known [mode])", PATH_THP, q);
    } else {
        snprintf(l->value, sizeof l->value, "%s", mode);
        l->status = strcmp(mode, "never") ? SYSINFO_OK : SYSINFO_WARN;
    }
    if (l->status == SYSINFO_WARN) snprintf(l->fix, sizeof l->fix, "echo madvise > " PATH_THP);
}

/* ---- what the machine offers (information lines) ---- */

static void check_cpu_features(sysinfo_line *l) {
    set_line(l, SYSINFO_CPU_FEATURES, "cpu features");
    char feats[160];
    cpu_describe(feats, sizeof feats);
    snprintf(l->value, sizeof l->value, "%s (kernels use %s)", feats,
             cpu_isa_name(cpu_get()->level));
}

/* Counts the CPUs in a kernel cpu list such as "0-3,8,10-11"; -1 when malformed. */
static long count_cpu_list(const char *s) {
    long total = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s || a < 0) return -1;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            if (end == s + 1 || b < a) return -1;
            s = end;
        }
        if (b - a > 1000000) return -1;
        total += b - a + 1;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return total > 0 ? total : -1;
}

static void check_cores(const char *sysroot, sysinfo_line *l) {
    set_line(l, SYSINFO_CORES, "cpus available");
    int avail = cpu_count_available();
    char path[4096], buf[512];
    long n = join_path(path, sizeof path, sysroot, PATH_CPU_ONLINE) == 0
                 ? read_small(path, buf, sizeof buf)
                 : -1;
    long online = n >= 0 ? count_cpu_list(trim(buf, n)) : -1;
    if (online > 0)
        snprintf(l->value, sizeof l->value, "%d to this process (%ld online)", avail, online);
    else
        snprintf(l->value, sizeof l->value, "%d to this process", avail);
}

/* Finds "Key:   123 kB" in meminfo text; returns bytes, or -1. */
static long long meminfo_field(const char *text, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = text; *p;) {
        if (strncmp(p, key, klen) != 0 || p[klen] != ':') {
            const char *nl = strchr(p, '\n');
            if (!nl) break;
            p = nl + 1;
            continue;
        }
        char *end;
        errno = 0;
        long long kb = strtoll(p + klen + 1, &end, 10);
        if (errno || end == p + klen + 1 || kb < 0 || kb > (1LL << 50)) return -1;
        while (*end == ' ') end++;
        if (strncmp(end, "kB", 2) != 0) return -1;
        return kb * 1024;
    }
    return -1;
}

static void check_memory(const char *sysroot, sysinfo_line *l) {
    set_line(l, SYSINFO_MEMORY, "memory");
    char path[4096], buf[16384];
    long n = join_path(path, sizeof path, sysroot, PATH_MEMINFO) == 0
                 ? read_small(path, buf, sizeof buf)
                 : -1;
    if (n < 0) {
        l->status = SYSINFO_NA;
        snprintf(l->value, sizeof l->value, "cannot read %s: %s", PATH_MEMINFO, strerror(errno));
        return;
    }
    long long total = meminfo_field(buf, "MemTotal"), avail = meminfo_field(buf, "MemAvailable");
    if (total < 0) {
        l->status = SYSINFO_NA;
        snprintf(l->value, sizeof l->value, "no readable MemTotal in %s", PATH_MEMINFO);
        return;
    }
    char t[32], a[32];
    human_bytes(t, sizeof t, (unsigned long long)total);
    if (avail >= 0) {
        human_bytes(a, sizeof a, (unsigned long long)avail);
        snprintf(l->value, sizeof l->value, "%s total, %s available", t, a);
    } else {
        snprintf(l->value, sizeof l->value, "%s total", t);
    }
}

static void check_cgroup(const char *sysroot, sysinfo_line *l) {
    set_line(l, SYSINFO_CGROUP_MEMORY, "cgroup memory limit");
    char path[4096], buf[64];
    long n = join_path(path, sizeof path, sysroot, PATH_CGROUP_MAX) == 0
                 ? read_small(path, buf, sizeof buf)
                 : -1;
    if (n < 0) {
        l->status = SYSINFO_NA;
        if (errno == ENOENT || errno == ENOTDIR)
            snprintf(l->value, sizeof l->value, "none found (no %s)", PATH_CGROUP_MAX);
        else
            snprintf(l->value, sizeof l->value, "cannot read %s: %s", PATH_CGROUP_MAX,
                     strerror(errno));
        return;
    }
    char *s = trim(buf, n);
    long long bytes = -1;
    if (isdigit((unsigned char)*s)) {
        char *end;
        errno = 0;
        bytes = strtoll(s, &end, 10);
        if (errno || *end) bytes = -1;
    }
    if (!strcmp(s, "max")) {
        snprintf(l->value, sizeof l->value, "none (max)");
    } else if (bytes >= 0) {
        human_bytes(l->value, sizeof l->value, (unsigned long long)bytes);
    } else {
        char q[32];
        quote_value(q, sizeof q, s, (long)strlen(s));
        l->status = SYSINFO_NA;
        snprintf(l->value, sizeof l->value, "malformed %s ('%s')", PATH_CGROUP_MAX, q);
    }
}

/* ---- public ---- */

int sysinfo_check(const char *sysroot, sysinfo_line *lines, int max) {
    sysinfo_line all[SYSINFO_NUM_CHECKS];
    check_governor(sysroot, &all[SYSINFO_GOVERNOR]);
    check_numa(sysroot, &all[SYSINFO_NUMA_BALANCING]);
    check_swappiness(sysroot, &all[SYSINFO_SWAPPINESS]);
    check_thp(sysroot, &all[SYSINFO_THP]);
    check_cpu_features(&all[SYSINFO_CPU_FEATURES]);
    check_cores(sysroot, &all[SYSINFO_CORES]);
    check_memory(sysroot, &all[SYSINFO_MEMORY]);
    check_cgroup(sysroot, &all[SYSINFO_CGROUP_MEMORY]);
    int n = max < SYSINFO_NUM_CHECKS ? (max > 0 ? max : 0) : SYSINFO_NUM_CHECKS;
    memcpy(lines, all, (size_t)n * sizeof all[0]);
    return n;
}

int sysinfo_fix(const char *sysroot, const sysinfo_line *line, char *did, int len) {
    if (line->status != SYSINFO_WARN || !line->fix[0]) {
        snprintf(did, (size_t)len, "%s: nothing to fix", line->name);
        return -1;
    }
    switch (line->id) {
    case SYSINFO_GOVERNOR: return fix_governor(sysroot, line, did, len);
    case SYSINFO_NUMA_BALANCING: return fix_file(sysroot, PATH_NUMA, "0\n", "0", line, did, len);
    case SYSINFO_SWAPPINESS:
        return fix_file(sysroot, PATH_SWAPPINESS, "10\n", "10", line, did, len);
    case SYSINFO_THP: return fix_file(sysroot, PATH_THP, "madvise\n", "madvise", line, did, len);
    default: snprintf(did, (size_t)len, "%s: no fix known", line->name); return -1;
    }
}

const char *sysinfo_status_name(sysinfo_status status) {
    switch (status) {
    case SYSINFO_OK: return "OK";
    case SYSINFO_WARN: return "WARN";
    default: return "N/A";
    }
}

void sysinfo_format(const sysinfo_line *line, char *buf, int len) {
    int n = snprintf(buf, (size_t)len, "%-4s  %s: %s", sysinfo_status_name(line->status),
                     line->name, line->value);
    if (line->status == SYSINFO_WARN && line->fix[0] && n >= 0 && n < len)
        snprintf(buf + n, (size_t)(len - n), " -> fix: %s", line->fix);
}

int sysinfo_log_warnings(void) {
    sysinfo_line lines[SYSINFO_NUM_CHECKS];
    int n = sysinfo_check(NULL, lines, SYSINFO_NUM_CHECKS), warned = 0;
    for (int i = 0; i < n; i++) {
        if (lines[i].status != SYSINFO_WARN) continue;
        log_warn("host: %s is %s; fix: %s (see `sglc check_system`)", lines[i].name, lines[i].value,
                 lines[i].fix);
        warned++;
    }
    return warned;
}
