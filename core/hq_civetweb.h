/* hq_civetweb: starting a CivetWeb server the same way in every program (the gateway, the
 * /metrics servers, the console), over the differences between CivetWeb 1.15 and 1.16. */
#ifndef HQ_CIVETWEB_H
#define HQ_CIVETWEB_H

#include <stddef.h>

#include <civetweb.h>

/* mg_start2() with callbacks cb (copied; a NULL log_message logs CivetWeb's messages at debug
 * level), user_data and the NULL-terminated options (which must hold "listening_ports").
 * The caller has called mg_init_library(). NULL on failure, with err set to
 * "cannot listen on <ports>: <CivetWeb's reason>". */
struct mg_context *hq_mg_start(const struct mg_callbacks *cb, void *user_data,
                               const char **options, char *err, size_t errsz);

#endif
