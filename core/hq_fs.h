/* hq_fs: small file-system helpers shared by every program (write-all, read a whole file,
 * mkdir -p, fsync a directory, exists). The one home of these; do not copy them into a module.
 *
 * Every function but hq_read_some and hq_path_exists returns an hq_status (HQ_OK = 0, negative =
 * error). On HQ_EIO and HQ_ENOTFOUND errno holds the cause of the failed system call. */
#ifndef HQ_FS_H
#define HQ_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "hq_status.h"

/* Write all n bytes of p to fd, retrying EINTR and short writes. p is borrowed for the call.
 * HQ_OK, or HQ_EIO when a write fails or writes nothing (errno from the write). */
HQ_MUST_CHECK int hq_write_all(int fd, const void *p, size_t n);

/* hq_write_all through wr instead of write(2), for modules whose tests inject write
 * failures (the gateway spool's gw__spool_io). */
typedef ssize_t (*hq_write_fn)(int fd, const void *p, size_t n);
HQ_MUST_CHECK int hq_write_all_with(hq_write_fn wr, int fd, const void *p, size_t n);

/* read(2) of at most n bytes from fd into p, retrying EINTR. p is borrowed for the call.
 * Returns the number of bytes read (0: end of file), or HQ_EIO (negative; errno from the read). */
HQ_MUST_CHECK ssize_t hq_read_some(int fd, void *p, size_t n);

/* Read the whole file at path into a malloc'd buffer, NUL-terminated (the NUL is not
 * counted in *n). At most cap bytes: a larger file fails with HQ_ETOOBIG. A regular file is
 * read up to the size it had when opened; anything else (a pipe, /dev/stdin) up to its end.
 * On HQ_OK the caller owns *out and frees it with free(); on failure *out is NULL and *n 0.
 * HQ_ENOTFOUND: path does not exist; HQ_EIO: open, fstat or read failed; HQ_ENOMEM. */
HQ_MUST_CHECK int hq_read_file(const char *path, size_t cap, char **out, size_t *n);

/* fsync the directory path (is_dir) or the directory that holds the entry path (!is_dir:
 * its parent, "." when path has no '/'), so that entries created, renamed or removed in it
 * survive a power loss. HQ_OK, HQ_ETOOBIG (path longer than PATH_MAX), HQ_EIO. */
HQ_MUST_CHECK int hq_fsync_dir(const char *path, bool is_dir);

/* mkdir -p: create path and each missing parent (mode 0750). Each directory it creates is
 * made durable: the directory that holds it is fsync'd (also when another process created it
 * first). An existing directory is fine. HQ_EINVAL: empty or longer than PATH_MAX; HQ_EIO:
 * mkdir or the fsync failed, or a component exists and is not a directory (errno ENOTDIR). */
HQ_MUST_CHECK int hq_mkdirs(const char *path);

/* Does path name something stat(2) can see (following a symlink)? false when not (errno says
 * why). */
bool hq_path_exists(const char *path);

#endif
