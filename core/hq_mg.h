/* hq_mg: starting CivetWeb the same way on each version hookmq builds with (1.15 in Debian 12,
 * 1.16 in Debian 13 fill mg_start2()'s error data differently; core/hq__civetweb.h hides it).
 * For programs that serve HTTP with CivetWeb (the gateway) and for core's /metrics server. */
#ifndef HQ_MG_H
#define HQ_MG_H

#include <stddef.h>

struct mg_context;
struct mg_init_data;

/* mg_start2(init); on failure NULL, with CivetWeb's reason in err[errsz] ("failed" when it
 * gives none). */
struct mg_context *hq_mg_start(struct mg_init_data *init, char *err, size_t errsz);

#endif
