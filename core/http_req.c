/* http_req: header lookup, media types and form decoding (hq_http_req.h). Case folding is
 * ASCII only, whatever the locale. */
#include <string.h>

#include "hq_http_req.h"

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* a[0..alen) equals the NUL-terminated b, ignoring ASCII case */
static bool ieqn(const char *a, size_t alen, const char *b)
{
    size_t i;

    for (i = 0; i < alen; i++)
        if (b[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return b[alen] == '\0';
}

const char *hq_req_header(const struct hq_request_view *req, const char *name, bool *dup)
{
    const char *found = NULL;
    size_t i;

    if (dup) *dup = false;
    if (!req || !req->headers || !name) return NULL;
    for (i = 0; i < req->n_headers; i++) {
        const struct hq_header *h = &req->headers[i];
        if (!h->name || !h->value || !ieqn(h->name, strlen(h->name), name)) continue;
        if (found) {
            if (dup) *dup = true;
            break;
        }
        found = h->value;
    }
    return found;
}

const char *hq_req_content_type(const struct hq_request_view *req)
{
    return req->content_type ? req->content_type : hq_req_header(req, "Content-Type", NULL);
}

bool hq_media_type_is(const char *ct, const char *type)
{
    size_t n;

    if (!ct) return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return ieqn(ct, n, type);
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool hq_form_decode(const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                    size_t *outlen)
{
    size_t i = 0, o = 0;

    while (i < n) {
        unsigned char c = in[i];
        if (c == '+') {
            c = ' ';
            i++;
        } else if (c == '%' && n - i >= 3 && hex_val(in[i + 1]) >= 0 && hex_val(in[i + 2]) >= 0) {
            c = (unsigned char)(hex_val(in[i + 1]) << 4 | hex_val(in[i + 2]));
            i += 3;
        } else {
            i++;
        }
        if (o >= cap) return false;
        out[o++] = c;
    }
    *outlen = o;
    return true;
}
