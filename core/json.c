/* json: the JSON string writer and the strict parser (hq_json.h). */
#include <limits.h>
#include <string.h>

#include "hq__json.h"
#include "hq_json.h"
#include "hq_utf8.h"

int hq_buf_append_json_str(struct hq_buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, start = 0;
    int rc;

    while (i < n) {
        unsigned char c = s[i];
        char esc[8];
        size_t elen = 0, adv = 1;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t len = hq_utf8_seq(s + i, n - i);

            if (len == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
                memcpy(esc, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
                elen = 6;
                adv = 3;
            } else if (len) {
                i += len;
                continue;
            } else {
                memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD for one invalid byte */
                elen = 3;
            }
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2), elen = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2), elen = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2), elen = 2;
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if ((rc = hq_buf_append(b, s + start, i - start)) != HQ_OK ||
            (rc = hq_buf_append(b, esc, elen)) != HQ_OK)
            return rc;
        i += adv;
        start = i;
    }
    /* n > start: s may be NULL for an empty string (NULL + 0 is undefined behaviour) */
    if (n > start)
        return hq_buf_append(b, s + start, n - start);
    return HQ_OK;
}

int hq_json_str(struct hq_buf *b, const char *s, size_t n)
{
    int rc;

    if ((rc = hq_buf_append(b, "\"", 1)) != HQ_OK ||
        (rc = hq_buf_append_json_str(b, s, n)) != HQ_OK)
        return rc;
    return hq_buf_append(b, "\"", 1);
}

void *hq_json_parse(const char *p, size_t n, int depth)
{
    struct json_tokener *tok;
    json_object *o;
    size_t end;

    if (!p || n == 0 || n > (size_t)INT_MAX)
        return NULL;
    tok = json_tokener_new_ex(depth);
    if (!tok)
        return NULL;
    json_tokener_set_flags(tok, HQ__JSON_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, p, (int)n);
    if (o && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    if (o) {
        end = json_tokener_get_parse_end(tok);
        while (end < n && (p[end] == ' ' || p[end] == '\t' || p[end] == '\r' || p[end] == '\n'))
            end++;
        if (end != n) {
            json_object_put(o);
            o = NULL;
        }
    }
    json_tokener_free(tok);
    return o;
}
