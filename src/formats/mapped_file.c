/* mmap of a whole file: weights are mapped, not copied (DESIGN.md), and the readers parse
 * their headers in place. MAP_PRIVATE + PROT_READ: nothing we do reaches the file. */
#include "formats/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

bool mapped_file_open(mapped_file *m, const char *path, char *err, size_t err_len) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (err) snprintf(err, err_len, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        if (err) snprintf(err, err_len, "%s: not a regular file", path);
        close(fd);
        return false;
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            if (err) snprintf(err, err_len, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            return false;
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return true;
}

void mapped_file_close(mapped_file *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}
