/* profilers/counters/procfile.h — read one small /proc file into a caller's buffer.
 *
 * What it is for: /proc/self/statm and /proc/self/status, read with open/read/close only
 * (no allocation, no stdio), so the child's fatal-signal handler, the heap interposer's
 * timeline thread and the counters can all use it. Header-only: the interposer links
 * nothing of the counters library.
 * What it is not for: files larger than the buffer (the rest is not read) or parsing.
 */
#ifndef MT_PROCFILE_H
#define MT_PROCFILE_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

/* Reads path into buf (at most cap - 1 bytes, then a NUL). Returns the bytes read (0 for
 * an empty file), or -1 with errno set when the file cannot be opened or read. Retries
 * reads interrupted by a signal; async-signal-safe. Precondition: cap >= 1. */
static inline long mt_proc_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    return (long)len;
}

#endif
