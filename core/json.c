/* json: the JSON string writer and the strict parsers (hq_json.h). */
#include <limits.h>
#include <stdbool.h>
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

/* ------------------------------------------------------------------------------------------
 * Strict JSON from outside (webhook bodies)
 *
 * json-c 0.16 accepts some non-JSON even with JSON_TOKENER_STRICT (single-quoted strings,
 * NaN/Infinity, "1.", raw control characters in strings) and stops at a NUL byte. So a body
 * is first checked against RFC 8259 by json_valid (with the same depth cap and
 * well-formed UTF-8 in strings), and only then handed to json-c for the tree.
 * Decisions: no BOM; duplicate keys are accepted and the last one wins (as in json-c,
 * Python and JavaScript); escaped lone surrogates (\ud800) are accepted (json-c turns them
 * into U+FFFD); integers that json-c clamps (beyond the 64-bit range) are refused as values.
 * ---------------------------------------------------------------------------------------- */

static size_t skip_ws(const unsigned char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* p[i] == '"'; on success *end is the index after the closing quote. */
static bool scan_string(const unsigned char *p, size_t n, size_t i, size_t *end)
{
    i++;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"') {
            *end = i + 1;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (i + 1 >= n) return false;
            c = p[i + 1];
            if (c == 'u') {
                if (n - i < 6 || !is_hex(p[i + 2]) || !is_hex(p[i + 3]) || !is_hex(p[i + 4]) ||
                    !is_hex(p[i + 5]))
                    return false;
                i += 6;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                i += 2;
            } else {
                return false;
            }
        } else {
            size_t k = hq_utf8_seq(p + i, n - i);
            if (k == 0) return false;
            i += k;
        }
    }
    return false;
}

static bool scan_number(const unsigned char *p, size_t n, size_t i, size_t *end)
{
    if (i < n && p[i] == '-') i++;
    if (i >= n) return false;
    if (p[i] == '0') {
        i++;
    } else if (p[i] >= '1' && p[i] <= '9') {
        while (i < n && is_digit(p[i]))
            i++;
    } else {
        return false;
    }
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || !is_digit(p[i])) return false;
        while (i < n && is_digit(p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) i++;
        if (i >= n || !is_digit(p[i])) return false;
        while (i < n && is_digit(p[i]))
            i++;
    }
    *end = i;
    return true;
}

static bool scan_literal(const unsigned char *p, size_t n, size_t i, const char *lit, size_t *end)
{
    size_t k = strlen(lit);

    if (n - i < k || memcmp(p + i, lit, k) != 0) return false;
    *end = i + k;
    return true;
}

/* RFC 8259 JSON text p[0..n) with at most depth (<= HQ_JSON_DEPTH_MAX) nested containers.
 * Iterative. */
static bool json_valid(const unsigned char *p, size_t n, int depth_max)
{
    char stack[HQ_JSON_DEPTH_MAX];
    int depth = 0;
    size_t i = skip_ws(p, n, 0);
    enum { S_VALUE, S_VALUE_OR_CLOSE, S_KEY, S_KEY_OR_CLOSE, S_AFTER } st = S_VALUE;

    for (;;) {
        size_t e = 0;
        i = skip_ws(p, n, i);
        switch (st) {
        case S_VALUE_OR_CLOSE:
            if (i < n && p[i] == ']') {
                depth--, i++;
                st = S_AFTER;
                break;
            }
            /* fall through */
        case S_VALUE:
            if (i >= n) return false;
            if (p[i] == '{' || p[i] == '[') {
                if (depth >= depth_max) return false;
                stack[depth++] = (char)p[i];
                st = p[i] == '{' ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
                i++;
                break;
            }
            if (p[i] == '"') {
                if (!scan_string(p, n, i, &e)) return false;
            } else if (p[i] == '-' || is_digit(p[i])) {
                if (!scan_number(p, n, i, &e)) return false;
            } else if (!scan_literal(p, n, i, "true", &e) && !scan_literal(p, n, i, "false", &e) &&
                       !scan_literal(p, n, i, "null", &e)) {
                return false;
            }
            i = e;
            st = S_AFTER;
            break;
        case S_KEY_OR_CLOSE:
            if (i < n && p[i] == '}') {
                depth--, i++;
                st = S_AFTER;
                break;
            }
            /* fall through */
        case S_KEY:
            if (i >= n || p[i] != '"' || !scan_string(p, n, i, &e)) return false;
            i = skip_ws(p, n, e);
            if (i >= n || p[i] != ':') return false;
            i++;
            st = S_VALUE;
            break;
        case S_AFTER:
            if (depth == 0) return i == n;
            if (i >= n) return false;
            if (p[i] == ',') {
                st = stack[depth - 1] == '{' ? S_KEY : S_VALUE;
                i++;
            } else if ((p[i] == '}' && stack[depth - 1] == '{') ||
                       (p[i] == ']' && stack[depth - 1] == '[')) {
                depth--, i++;
            } else {
                return false;
            }
            break;
        }
    }
}

int hq_json_parse_untrusted(const unsigned char *p, size_t n, int depth, void **result)
{
    struct json_object **out = (struct json_object **)result;
    struct json_tokener *tok;
    struct json_object *o;
    enum json_tokener_error err;
    int rc = HQ_EINVAL;

    *out = NULL;
    if (depth < 1 || depth > HQ_JSON_DEPTH_MAX) return HQ_EINVAL;
    if (n >= INT_MAX || !json_valid(p, n, depth)) return HQ_EINVAL;
    tok = json_tokener_new_ex(depth);
    if (!tok) return HQ_ENOMEM;
    json_tokener_set_flags(tok, HQ__JSON_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, (const char *)p, (int)n);
    err = json_tokener_get_error(tok);
    if (!o && err == json_tokener_continue) {
        /* a top-level number has no end of its own: feed the terminating NUL */
        o = json_tokener_parse_ex(tok, "", 1);
        err = json_tokener_get_error(tok);
    } else if (o && json_tokener_get_parse_end(tok) != n) {
        err = json_tokener_error_parse_unexpected;
    }
    if (o && err == json_tokener_success) {
        *out = o;
        o = NULL;
        rc = HQ_OK;
    }
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}
