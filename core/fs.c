/* hq_fs: write-all, read retrying EINTR, read a whole file, mkdir -p, fsync a directory, exists
 * (core/hq_fs.h). */
#include "hq_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hq_write_all_with(hq_write_fn wr, int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t w = wr(fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return HQ_EIO;
        c += w;
        n -= (size_t)w;
    }
    return HQ_OK;
}

int hq_write_all(int fd, const void *p, size_t n)
{
    return hq_write_all_with(write, fd, p, n);
}

ssize_t hq_read_some(int fd, void *p, size_t n)
{
    for (;;) {
        ssize_t r = read(fd, p, n);

        if (r >= 0)
            return r;
        if (errno != EINTR)
            return HQ_EIO;
    }
}

/* Read fd to its end into *buf (grown as needed, *alloc bytes), at most cap bytes. */
static int read_to_end(int fd, size_t cap, char **buf, size_t *alloc, size_t *got)
{
    for (;;) {
        ssize_t r;

        if (*got + 1 >= *alloc) {
            size_t na = *alloc ? *alloc * 2 : 65536;
            char *nb;

            if (na > cap && cap < SIZE_MAX - 1)
                na = cap + 2; /* room for one byte past the cap, to see it */
            if (na <= *alloc)
                return HQ_ETOOBIG;
            nb = realloc(*buf, na);
            if (!nb)
                return HQ_ENOMEM;
            *buf = nb;
            *alloc = na;
        }
        r = hq_read_some(fd, *buf + *got, *alloc - 1 - *got);
        if (r < 0)
            return HQ_EIO;
        if (r == 0)
            return HQ_OK;
        *got += (size_t)r;
        if (*got > cap)
            return HQ_ETOOBIG;
    }
}

int hq_read_file(const char *path, size_t cap, char **out, size_t *n)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0, alloc = 0;
    int fd, rc = HQ_EIO, saved;

    *out = NULL;
    *n = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
    if (fstat(fd, &st) != 0)
        goto out;
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > cap || (uint64_t)st.st_size >= SIZE_MAX) {
            rc = HQ_ETOOBIG;
            goto out;
        }
        buf = malloc((size_t)st.st_size + 1);
        if (!buf) {
            rc = HQ_ENOMEM;
            goto out;
        }
        while (got < (size_t)st.st_size) {
            ssize_t r = hq_read_some(fd, buf + got, (size_t)st.st_size - got);
            if (r <= 0)
                break; /* shrunk while reading: what is there */
            got += (size_t)r;
        }
    } else if ((rc = read_to_end(fd, cap, &buf, &alloc, &got)) != HQ_OK) {
        goto out;
    }
    buf[got] = '\0';
    *out = buf;
    *n = got;
    buf = NULL;
    rc = HQ_OK;
out:
    saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return rc;
}

int hq_fsync_dir(const char *path, bool is_dir)
{
    char d[PATH_MAX];
    const char *slash;
    int fd, rc, saved;

    if (is_dir) {
        if (snprintf(d, sizeof(d), "%s", path) >= (int)sizeof(d))
            return HQ_ETOOBIG;
    } else {
        slash = strrchr(path, '/');
        if (!slash)
            snprintf(d, sizeof(d), ".");
        else if ((size_t)(slash - path) >= sizeof(d))
            return HQ_ETOOBIG;
        else if (slash == path)
            snprintf(d, sizeof(d), "/");
        else {
            memcpy(d, path, (size_t)(slash - path));
            d[slash - path] = '\0';
        }
    }
    fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return HQ_EIO;
    rc = fsync(fd) == 0 ? HQ_OK : HQ_EIO;
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int hq_mkdirs(const char *path)
{
    char p[PATH_MAX];
    size_t i, n = strlen(path);
    struct stat st;

    if (n == 0 || n >= sizeof(p))
        return HQ_EINVAL;
    memcpy(p, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        p[i] = '\0';
        if (stat(p, &st) != 0) {
            if (mkdir(p, 0750) != 0 && errno != EEXIST)
                return HQ_EIO;
            if (hq_fsync_dir(p, false) != HQ_OK)
                return HQ_EIO;
        } else if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return HQ_EIO;
        }
        if (i < n)
            p[i] = '/';
    }
    return HQ_OK;
}

bool hq_path_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}
