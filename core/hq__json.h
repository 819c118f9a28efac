/* hq__json: what differs between the json-c versions hookmq builds with.
 *
 * json-c 0.18 (Debian 13) made JSON_TOKENER_STRICT refuse every byte >= 0x80 inside a string
 * ("invalid string sequence", or "invalid utf-8 string" with JSON_TOKENER_VALIDATE_UTF8): all
 * non-ASCII UTF-8 (json-c issues 875 and 892). 0.16 (Debian 12) accepts it. hookmq checks
 * untrusted JSON against RFC 8259 itself before json-c sees it (event_extract.c, sig.c), and otherwise
 * parses only what it wrote, so with 0.18 the tokener runs without JSON_TOKENER_STRICT.
 * Use HQ__JSON_STRICT where JSON_TOKENER_STRICT was meant. */
#ifndef HQ__JSON_H
#define HQ__JSON_H

#include <json-c/json.h>

#if defined(JSON_C_VERSION_NUM) && JSON_C_VERSION_NUM >= ((0 << 16) | (18 << 8))
#define HQ__JSON_STRICT 0
#else
#define HQ__JSON_STRICT JSON_TOKENER_STRICT
#endif

#endif
