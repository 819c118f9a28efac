/* plugin.h: loading handler plugins (built-in or dlopen'd) for hookmq-worker. */
#ifndef HQ_PLUGIN_H
#define HQ_PLUGIN_H

#include <stddef.h>
#include "hookmq/handler.h"
#include "hq_config.h"
#include "hq_status.h"

struct hq_plugin {
    const struct hq_handler *h; /* borrowed from the built-in table or the shared object */
    void *dl;                   /* dlopen handle, NULL for built-ins */
    char name[256];             /* "exec", "http", "log", or the .so path */
};

/* Load the handler named by a consumer's `handler` key: "exec", "http", "log", or a path to a
 * shared object (dlopen(RTLD_NOW | RTLD_LOCAL), symbol hq_handler_get, ABI major must match,
 * struct_size must cover init/handle/fini). On failure everything is undone and err says why
 * ("...: cannot open: ...", "...: no symbol hq_handler_get", "...: ABI major 2, this worker
 * speaks 1"). Returns HQ_OK, HQ_ENOTFOUND or HQ_EINVAL. */
HQ_MUST_CHECK int hq_plugin_load(const char *handler, struct hq_plugin *out, char *err,
                                 size_t errsz);
void hq_plugin_unload(struct hq_plugin *p); /* NULL-safe */

/* The consumer's options as the ABI's option array (same layout as struct hq_opt). */
const struct hq_handler_opt *hq_plugin_opts(const struct hq_consumer_cfg *c);

/* Built-in handlers (handler_exec.c, handler_http.c, handler_log.c). */
extern const struct hq_handler hq_builtin_exec;
extern const struct hq_handler hq_builtin_http;
extern const struct hq_handler hq_builtin_log;

#endif
