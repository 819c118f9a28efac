/* hq__civetweb: what differs between the CivetWeb versions hookmq builds with.
 *
 * CivetWeb 1.15 (Debian 12) and 1.16 (Debian 13) differ in struct mg_error_data, which
 * mg_start2() fills: in 1.15 its `code` points at the caller's variable, in 1.16 it is the code
 * itself (and `code_sub` was added). Include this instead of <civetweb.h> and fill the struct
 * with hq__mg_error_init(). */
#ifndef HQ__CIVETWEB_H
#define HQ__CIVETWEB_H

#include <civetweb.h>
#include <string.h>

#if CIVETWEB_VERSION_MAJOR > 1 || (CIVETWEB_VERSION_MAJOR == 1 && CIVETWEB_VERSION_MINOR >= 16)
#define HQ__CIVETWEB_ERROR_CODE_BY_VALUE 1
#endif

/* ed: zeroed; text[textsz] receives mg_start2()'s message, and the code goes to *code (1.15)
 * or stays in ed->code (1.16). */
static inline void hq__mg_error_init(struct mg_error_data *ed, unsigned *code, char *text,
                                     size_t textsz)
{
    memset(ed, 0, sizeof(*ed));
    *code = 0;
#ifdef HQ__CIVETWEB_ERROR_CODE_BY_VALUE
    (void)code;
#else
    ed->code = code;
#endif
    ed->text = text;
    ed->text_buffer_size = textsz;
}

#endif
