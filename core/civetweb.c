/* civetweb: hq_mg_start (hq_civetweb.h). */
#include <stdio.h>
#include <string.h>

#include "hq__civetweb.h"
#include "hq_civetweb.h"
#include "hq_log.h"

static int log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    hq_debug("civetweb", "message=\"%s\"", message);
    return 1;
}

struct mg_context *hq_mg_start(const struct mg_callbacks *cb, void *user_data,
                               const char **options, char *err, size_t errsz)
{
    struct mg_callbacks c;
    struct mg_init_data init;
    struct mg_error_data ed;
    struct mg_context *ctx;
    const char *ports = "?";
    char ebuf[256] = "";
    unsigned ecode;
    size_t i;

    memset(&c, 0, sizeof(c));
    if (cb) c = *cb;
    if (!c.log_message) c.log_message = log_message;
    for (i = 0; options[i] && options[i + 1]; i += 2)
        if (strcmp(options[i], "listening_ports") == 0) ports = options[i + 1];
    memset(&init, 0, sizeof(init));
    init.callbacks = &c;
    init.user_data = user_data;
    init.configuration_options = options;
    hq__mg_error_init(&ed, &ecode, ebuf, sizeof(ebuf));
    ctx = mg_start2(&init, &ed);
    if (!ctx) snprintf(err, errsz, "cannot listen on %s: %s", ports, ebuf[0] ? ebuf : "failed");
    return ctx;
}
