/* plugin.c: resolving a consumer's `handler` to a handler table: one of the built-ins (exec,
 * http, log) or a shared object loaded with dlopen(RTLD_NOW | RTLD_LOCAL) that exports
 * hq_handler_get(). Every check that can fail runs before the plugin is handed out, and a
 * failure undoes everything (the object is dlclose'd, *out stays zeroed). */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "plugin.h"

/* struct hq_opt (the config) and struct hq_handler_opt (the ABI) are the same four members in
 * the same order; the option array is handed to plugins without a copy. */
_Static_assert(sizeof(struct hq_opt) == sizeof(struct hq_handler_opt), "hq_opt size");
_Static_assert(offsetof(struct hq_opt, key) == offsetof(struct hq_handler_opt, key), "key");
_Static_assert(offsetof(struct hq_opt, value) == offsetof(struct hq_handler_opt, value), "value");
_Static_assert(offsetof(struct hq_opt, values) == offsetof(struct hq_handler_opt, values),
               "values");
_Static_assert(offsetof(struct hq_opt, n_values) == offsetof(struct hq_handler_opt, n_values),
               "n_values");

/* The smallest table the host can use: everything up to and including fini. */
#define HQ_HANDLER_MIN_SIZE                                                                        \
    (offsetof(struct hq_handler, fini) + sizeof(((struct hq_handler *)0)->fini))

typedef const struct hq_handler *(*hq_handler_get_fn)(uint32_t);

static const struct {
    const char *name;
    const struct hq_handler *h;
} builtins[] = {
    {"exec", &hq_builtin_exec},
    {"http", &hq_builtin_http},
    {"log", &hq_builtin_log},
};

/* Checks common to built-in and loaded tables; writes "<what>: <why>" into err. */
static int check_table(const struct hq_handler *h, const char *what, char *err, size_t errsz)
{
    if (h->abi_major != HQ_HANDLER_ABI_MAJOR) {
        snprintf(err, errsz, "%s: ABI major %u, this worker speaks %u", what, h->abi_major,
                 HQ_HANDLER_ABI_MAJOR);
        return HQ_EINVAL;
    }
    if (h->struct_size < HQ_HANDLER_MIN_SIZE) {
        snprintf(err, errsz, "%s: handler table too small (struct_size %u, need at least %zu)",
                 what, h->struct_size, (size_t)HQ_HANDLER_MIN_SIZE);
        return HQ_EINVAL;
    }
    if (!h->init || !h->handle || !h->fini) {
        snprintf(err, errsz, "%s: handler table lacks %s", what,
                 !h->init ? "init" : !h->handle ? "handle" : "fini");
        return HQ_EINVAL;
    }
    return HQ_OK;
}

int hq_plugin_load(const char *handler, struct hq_plugin *out, char *err, size_t errsz)
{
    struct stat st;
    void *dl = NULL;
    void *sym;
    hq_handler_get_fn get;
    const struct hq_handler *h;
    const char *why;
    char dummy[1];
    size_t i;
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!err || !errsz) {
        err = dummy;
        errsz = sizeof(dummy);
    }
    err[0] = '\0';
    if (!handler || !*handler) {
        snprintf(err, errsz, "no handler given");
        return HQ_EINVAL;
    }
    for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(handler, builtins[i].name) == 0) {
            if ((rc = check_table(builtins[i].h, handler, err, errsz)) != HQ_OK)
                return rc;
            out->h = builtins[i].h;
            snprintf(out->name, sizeof(out->name), "%s", handler);
            return HQ_OK;
        }
    }
    /* Anything else is a path. A bare name would make dlopen search the library path, which
     * is never what a config means: ask for "./name.so" instead. */
    if (!strchr(handler, '/')) {
        snprintf(err, errsz, "%s: unknown handler (use exec, http, log or a path to a .so)",
                 handler);
        return HQ_ENOTFOUND;
    }
    if (strlen(handler) >= sizeof(out->name)) {
        snprintf(err, errsz, "%.64s...: handler path longer than %zu bytes", handler,
                 sizeof(out->name) - 1);
        return HQ_EINVAL;
    }
    if (stat(handler, &st) != 0) {
        int e = errno;
        snprintf(err, errsz, "%s: cannot open: %s", handler, strerror(e));
        return e == ENOENT || e == ENOTDIR ? HQ_ENOTFOUND : HQ_EINVAL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "%s: cannot open: not a regular file", handler);
        return HQ_EINVAL;
    }

    dlerror();
    dl = dlopen(handler, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        why = dlerror();
        snprintf(err, errsz, "%s: cannot open: %s", handler, why ? why : "unknown error");
        goto out;
    }
    dlerror();
    sym = dlsym(dl, "hq_handler_get");
    if (!sym) {
        snprintf(err, errsz, "%s: no symbol hq_handler_get", handler);
        goto out;
    }
    /* POSIX guarantees a function pointer round-trips through void *. */
    memcpy(&get, &sym, sizeof(get));
    h = get(HQ_HANDLER_ABI_MAJOR);
    if (!h) {
        snprintf(err, errsz, "%s: hq_handler_get(%u) refused this worker's ABI major", handler,
                 HQ_HANDLER_ABI_MAJOR);
        goto out;
    }
    if ((rc = check_table(h, handler, err, errsz)) != HQ_OK)
        goto out;

    out->h = h;
    out->dl = dl;
    dl = NULL;
    snprintf(out->name, sizeof(out->name), "%s", handler);
    rc = HQ_OK;
out:
    if (dl)
        dlclose(dl);
    return rc;
}

void hq_plugin_unload(struct hq_plugin *p)
{
    if (!p)
        return;
    if (p->dl)
        dlclose(p->dl);
    memset(p, 0, sizeof(*p));
}

const struct hq_handler_opt *hq_plugin_opts(const struct hq_consumer_cfg *c)
{
    if (!c)
        return NULL;
    /* Same layout (asserted above); the config owns the array until hq_config_free(). */
    return (const struct hq_handler_opt *)(const void *)c->options;
}
