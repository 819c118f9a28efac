/* hq_json: writing JSON strings and parsing strict JSON, the one place for both. Output is
 * always valid JSON (RFC 8259) in UTF-8, whatever bytes come in; parsing refuses anything
 * that is not one strict JSON text. Thread-safe; inputs are borrowed for the call. */
#ifndef HQ_JSON_H
#define HQ_JSON_H

#include <stddef.h>

#include "hq_buf.h"
#include "hq_status.h"

/* Append s[0..n) as the inside of a JSON string (no quotes). Valid UTF-8 is kept as is except
 * '"', '\\', control characters, DEL and U+2028/U+2029, which are escaped (\n, \r, \t in
 * their short forms, the rest as \uXXXX); each byte that is not part of well-formed UTF-8
 * becomes U+FFFD, so callers that need the exact bytes check hq_utf8_valid first (or
 * base64 them). s may be NULL when n is 0. HQ_ETOOBIG past b's cap. */
HQ_MUST_CHECK int hq_buf_append_json_str(struct hq_buf *b, const char *s, size_t n);

/* The same with the surrounding quotes. */
HQ_MUST_CHECK int hq_json_str(struct hq_buf *b, const char *s, size_t n);

/* Parse the strict JSON text p[0..n) (nothing but whitespace after it) with json-c, nesting
 * at most depth; returns a json_object * (as void *, so that callers need not include
 * json-c) or NULL. Release with json_object_put. */
void *hq_json_parse(const char *p, size_t n, int depth);

#define HQ_JSON_DEPTH_MAX 64

/* Parse a JSON text from outside (a webhook body): p[0..n) must be exactly one RFC 8259 text
 * (whitespace around it, nothing else; no BOM; strings well-formed UTF-8), nesting at most
 * depth (1..HQ_JSON_DEPTH_MAX) containers. It is checked by our own scanner first, because
 * json-c accepts some non-JSON even in strict mode, then built by json-c. On HQ_OK *out is a
 * new json_object * (json_object_put); HQ_EINVAL for anything else, HQ_ENOMEM. */
HQ_MUST_CHECK int hq_json_parse_untrusted(const unsigned char *p, size_t n, int depth,
                                          void **out);

#endif
