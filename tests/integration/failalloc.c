/* failalloc.c: an LD_PRELOAD shim for system tests (libhq_failalloc.so). realloc() of exactly
 * HQ_FAILALLOC_SIZE bytes fails with ENOMEM the first HQ_FAILALLOC_TIMES times (default 1);
 * every other call goes to the C library. Lets a test run a real program out of memory at one
 * chosen allocation, then recover. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

static void *(*real_realloc)(void *, size_t);
static atomic_long failed;

static size_t env_size(const char *name, size_t def)
{
    const char *s = getenv(name);
    char *end;
    unsigned long long v;

    if (!s || !*s)
        return def;
    v = strtoull(s, &end, 10);
    return *end ? def : (size_t)v;
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t n)
{
    if (!real_realloc)
        real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    if (n && n == env_size("HQ_FAILALLOC_SIZE", 0) &&
        atomic_fetch_add(&failed, 1) < (long)env_size("HQ_FAILALLOC_TIMES", 1)) {
        errno = ENOMEM;
        return NULL;
    }
    return real_realloc(p, n);
}
