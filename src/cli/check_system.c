/* `sglc check_system [--fix] [--sysroot DIR]`: prints the host settings SGLang's deployment guide
 * tunes (CPU governor, NUMA balancing, swappiness, huge pages) and what the machine offers, one
 * line each, and with --fix (root only) writes the recommended values. The checks themselves are
 * base/sysinfo, which the server also runs at start-up. Exit: 0 all OK or N/A, 1 a WARN remains
 * (or --fix without root), 2 bad usage. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sysinfo.h"
#include "cli/args.h"
#include "cli/cli.h"

static void usage(const arg_spec *specs, int n) {
    args_usage("check_system", "[--fix] [--sysroot DIR]", specs, n);
    printf("\nChecks the host settings that matter for serving: CPU frequency governor\n"
           "(performance), kernel.numa_balancing (0), vm.swappiness (10 or less), transparent\n"
           "huge pages (always or madvise); and shows CPU features, cores, memory and the\n"
           "cgroup memory limit. Each line reads `OK|WARN|N/A  name: value [-> fix: command]`.\n"
           "exit status: 0 all OK or N/A, 1 a WARN remains, 2 bad usage\n");
}

/* Prints every line; returns how many are WARN. */
static int print_lines(const sysinfo_line *lines, int n, int only_warn) {
    int warns = 0;
    for (int i = 0; i < n; i++) {
        if (lines[i].status == SYSINFO_WARN) warns++;
        if (only_warn && lines[i].status != SYSINFO_WARN) continue;
        char buf[512];
        sysinfo_format(&lines[i], buf, sizeof buf);
        printf("%s\n", buf);
    }
    return warns;
}

int cli_check_system(int argc, char **argv) {
    bool fix = false;
    const char *sysroot = NULL;
    arg_spec specs[] = {
        {"--fix", ARG_BOOL, &fix, "write the recommended value for every WARN (needs root)", false},
        {"--sysroot", ARG_STR, &sysroot, "read and write /proc and /sys under DIR (for tests)",
         false},
    };
    int nspecs = (int)(sizeof specs / sizeof specs[0]), npos;
    int rc = args_parse("check_system", specs, nspecs, argc, argv, NULL, 0, &npos);
    if (rc == 1) {
        usage(specs, nspecs);
        return 0;
    }
    if (rc) return rc;
    struct stat st;
    if (sysroot && (!*sysroot || stat(sysroot, &st) != 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "sglc check_system: --sysroot '%s' is not a directory\n", sysroot);
        return 2;
    }
    if (fix && geteuid() != 0) {
        fprintf(stderr, "sglc check_system: --fix needs root (it writes /proc/sys and /sys); "
                        "nothing was changed. Run it as root, or apply the fix commands shown.\n");
        return 1;
    }

    sysinfo_line lines[SYSINFO_NUM_CHECKS];
    int n = sysinfo_check(sysroot, lines, SYSINFO_NUM_CHECKS);
    int warns = print_lines(lines, n, 0);
    if (!warns) return 0;
    if (!fix) {
        printf("%d setting%s to tune; `sglc check_system --fix` (as root) applies the fixes\n",
               warns, warns == 1 ? "" : "s");
        return 1;
    }

    for (int i = 0; i < n; i++) {
        if (lines[i].status != SYSINFO_WARN) continue;
        char did[512];
        if (sysinfo_fix(sysroot, &lines[i], did, sizeof did) == 0)
            printf("fixed %s\n", did);
        else
            fprintf(stderr, "sglc check_system: could not fix %s: %s\n", lines[i].name, did);
    }
    /* Re-read rather than trust the writes: the kernel may refuse or clamp a value. */
    n = sysinfo_check(sysroot, lines, SYSINFO_NUM_CHECKS);
    int left = 0;
    for (int i = 0; i < n; i++) left += lines[i].status == SYSINFO_WARN;
    if (!left) return 0;
    printf("still to tune after --fix:\n");
    print_lines(lines, n, 1);
    return 1;
}
