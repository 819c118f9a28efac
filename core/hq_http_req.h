/* hq_http_req: a received HTTP request as the verifiers and the event extractor see it, and
 * the small parsers every program that reads one shares: header lookup, media types and
 * application/x-www-form-urlencoded decoding. Pure functions, thread-safe; inputs borrowed. */
#ifndef HQ_HTTP_REQ_H
#define HQ_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

struct hq_header {
    const char *name;  /* as received; compared case-insensitively */
    const char *value;
};

/* What a verifier (and the event extractor) may look at. All borrowed. */
struct hq_request_view {
    const struct hq_header *headers;
    size_t n_headers;
    const unsigned char *body;
    size_t body_len;
    const char *content_type; /* may be NULL */
    /* The URL the provider requested, used by twilio and square when the source has no
     * `url`: scheme://host[:port]/path[?query] as reconstructed by the gateway. May be NULL. */
    const char *url;
};

/* The value of the first header called name (ASCII case-insensitive), or NULL when absent.
 * *dup (if not NULL) is set when the header occurs more than once. */
const char *hq_req_header(const struct hq_request_view *req, const char *name, bool *dup);

/* The request's Content-Type: req->content_type, else the header; NULL when neither. */
const char *hq_req_content_type(const struct hq_request_view *req);

/* Is the media type of ct (before any ';' parameter, blanks around it ignored, ASCII
 * case-insensitive) type? false for NULL. */
bool hq_media_type_is(const char *ct, const char *type);

/* Decode form-urlencoded in[0..n) ('+' is a space, %XX a byte; a '%' not followed by two hex
 * digits stays literal, as in the WHATWG URL standard and Python's unquote_plus) into out,
 * room for cap bytes (cap >= n always suffices). false when it does not fit; else *outlen. */
bool hq_form_decode(const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                    size_t *outlen);

#endif
