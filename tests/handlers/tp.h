/* tp.h: shared bits of the test plugins in tests/handlers/ (each is built into its own
 * hq_handler_<name>.so with hidden visibility; only hq_handler_get is exported). */
#ifndef HQ_TEST_PLUGIN_H
#define HQ_TEST_PLUGIN_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hookmq/handler.h"

/* The scalar option named key, or NULL. */
static inline const char *tp_opt(const struct hq_handler_opt *opts, size_t n, const char *key)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(opts[i].key, key) == 0)
            return opts[i].value;
    return NULL;
}

/* The option named key as a number >= 0 (def when absent); -1 when malformed. */
static inline long long tp_opt_num(const struct hq_handler_opt *opts, size_t n, const char *key,
                                   long long def)
{
    const char *s = tp_opt(opts, n, key);
    char *end;
    long long v;

    if (!s)
        return def;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    return v;
}

/* init for plugins whose state is one number option key (>= 0, def when absent): *state is a
 * malloc'd long long (fini: tp_fini_free). A malformed value is logged as "<plugin>: option
 * <key>: expected a number" and fails the init. */
static inline int tp_init_num(const struct hq_host_api *api, const struct hq_handler_opt *opts,
                              size_t n, void **state, const char *plugin, const char *key,
                              long long def)
{
    long long *v = malloc(sizeof(*v));

    if (!v)
        return -1;
    *v = tp_opt_num(opts, n, key, def);
    if (*v < 0) {
        api->log(HQ_HLOG_ERROR, "%s: option %s: expected a number", plugin, key);
        free(v);
        return -1;
    }
    *state = v;
    return 0;
}

static inline void tp_fini_free(void *state)
{
    free(state);
}

/* Sleep for ts, through signals. */
static inline void tp_sleep(struct timespec ts)
{
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A handler table with the given functions, exported through hq_handler_get. */
#define TP_HANDLER(NAME, INIT, HANDLE, FINI)                                                       \
    static const struct hq_handler tp_table = {                                                    \
        .abi_major = HQ_HANDLER_ABI_MAJOR,                                                         \
        .abi_minor = HQ_HANDLER_ABI_MINOR,                                                         \
        .struct_size = sizeof(struct hq_handler),                                                  \
        .name = NAME,                                                                              \
        .version = "test",                                                                         \
        .init = INIT,                                                                              \
        .handle = HANDLE,                                                                          \
        .fini = FINI,                                                                              \
    };                                                                                             \
    HQ_HANDLER_EXPORT const struct hq_handler *hq_handler_get(uint32_t host_abi_major)             \
    {                                                                                              \
        return host_abi_major == HQ_HANDLER_ABI_MAJOR ? &tp_table : NULL;                          \
    }

/* init/fini for plugins without state. */
static inline int tp_init_none(const struct hq_host_api *api, const struct hq_handler_opt *opts,
                               size_t n, void **state)
{
    (void)api;
    (void)opts;
    (void)n;
    *state = NULL;
    return 0;
}

static inline void tp_fini_none(void *state)
{
    (void)state;
}

#endif
