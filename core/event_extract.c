/* event_extract: an event's type and id, per scheme defaults and the source's selectors
 * ("json:/pointer", "header:Name", "const:text", "form:field"), and the provider handshakes
 * (Slack url_verification, Zoom endpoint.url_validation) the scheme table points at.
 *
 * Everything here works on untrusted request data: every value is checked and capped, and the
 * body's JSON is parsed strictly (hq_json_parse_untrusted), once per request and only when a
 * selector needs it. Thread-safe. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hq__event.h"
#include "hq__scheme.h"
#include "hq_event.h"
#include "hq_http_req.h"
#include "hq_json.h"
#include "hq_sig.h"

#define EV_TYPE_MAX 255u /* extracted event type */
#define EV_ID_MAX 255u   /* extracted event id (= AMQP message_id) */
#define EV_JSON_DEPTH 32
#define EV_HANDSHAKE_TOKEN_MAX 1024u /* Slack challenge, Zoom plainToken */

/* ------------------------------------------------------------------------------------------
 * JSON values
 * ---------------------------------------------------------------------------------------- */

/* RFC 6901 evaluation (ptr is "" or starts with '/'); NULL when absent or ptr is invalid.
 * Borrowed from root. */
static struct json_object *json_pointer_eval(struct json_object *root, const char *ptr)
{
    struct json_object *cur = root;
    char *tok = NULL;
    const char *s = ptr;

    if (*s == '\0') return root;
    if (*s != '/') return NULL;
    tok = malloc(strlen(ptr) + 1);
    if (!tok) return NULL;
    while (cur && *s == '/') {
        size_t k = 0;
        s++;
        while (*s && *s != '/') {
            if (*s == '~') {
                if (s[1] == '0')
                    tok[k++] = '~';
                else if (s[1] == '1')
                    tok[k++] = '/';
                else {
                    cur = NULL;
                    goto out;
                }
                s += 2;
            } else {
                tok[k++] = *s++;
            }
        }
        tok[k] = '\0';
        if (json_object_is_type(cur, json_type_object)) {
            struct json_object *next = NULL;
            if (!json_object_object_get_ex(cur, tok, &next)) next = NULL;
            cur = next;
        } else if (json_object_is_type(cur, json_type_array)) {
            size_t idx = 0, j;
            /* "0" or [1-9][0-9]*; "-" (past the end) never exists */
            if (k == 0 || k > 9 || (k > 1 && tok[0] == '0')) {
                cur = NULL;
                goto out;
            }
            for (j = 0; j < k; j++) {
                if (tok[j] < '0' || tok[j] > '9') {
                    cur = NULL;
                    goto out;
                }
                idx = idx * 10 + (size_t)(tok[j] - '0');
            }
            cur = idx < json_object_array_length(cur) ? json_object_array_get_idx(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
    }
out:
    free(tok);
    return cur;
}

/* Text of a JSON value usable as a type/id: strings as they are, numbers in their text form.
 * HQ_OK (*out malloc'd), HQ_ENOTFOUND, HQ_ENOMEM. */
static int json_value_text(struct json_object *v, size_t max, char **out)
{
    const char *s;
    size_t n;

    *out = NULL;
    switch (json_object_get_type(v)) {
    case json_type_string:
        s = json_object_get_string(v);
        n = (size_t)json_object_get_string_len(v);
        break;
    case json_type_int:
    case json_type_double:
        /* doubles keep the text they were parsed from; ints print their 64-bit value */
        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        if (!s) return HQ_ENOMEM;
        n = strlen(s);
        /* json-c clamps out-of-range integers to these: the real value is unknown */
        if (json_object_is_type(v, json_type_int) &&
            (strcmp(s, "18446744073709551615") == 0 || strcmp(s, "-9223372036854775808") == 0))
            return HQ_ENOTFOUND;
        break;
    default: /* null, boolean, object, array */
        return HQ_ENOTFOUND;
    }
    if (!s || !hq__event_valid_value(s, n, max)) return HQ_ENOTFOUND;
    *out = strndup(s, n);
    return *out ? HQ_OK : HQ_ENOMEM;
}

/* ------------------------------------------------------------------------------------------
 * application/x-www-form-urlencoded
 * ---------------------------------------------------------------------------------------- */

/* Value of the first form field called field in body, decoded, at most cap bytes. HQ_OK with
 * *out (malloc'd, NUL-terminated, *outlen its length, may contain NUL bytes), HQ_ENOTFOUND
 * (absent or longer than cap), HQ_ENOMEM. */
static int form_get(const unsigned char *body, size_t n, const char *field, size_t cap, char **out,
                    size_t *outlen)
{
    size_t flen = strlen(field), i = 0;
    unsigned char name[256];

    *out = NULL;
    *outlen = 0;
    if (flen == 0 || flen >= sizeof(name)) return HQ_ENOTFOUND;
    while (i < n) {
        size_t j = i, eq, nlen = 0;
        while (j < n && body[j] != '&')
            j++;
        eq = i;
        while (eq < j && body[eq] != '=')
            eq++;
        if (hq_form_decode(body + i, eq - i, name, sizeof(name), &nlen) && nlen == flen &&
            memcmp(name, field, flen) == 0) {
            size_t vraw = eq < j ? j - eq - 1 : 0;
            size_t room = vraw < cap ? vraw : cap;
            unsigned char *v = malloc(room + 1);
            size_t vlen = 0;
            if (!v) return HQ_ENOMEM;
            if (!hq_form_decode(body + eq + (eq < j ? 1 : 0), vraw, v, room, &vlen)) {
                free(v);
                return HQ_ENOTFOUND;
            }
            v[vlen] = '\0';
            *out = (char *)v;
            *outlen = vlen;
            return HQ_OK;
        }
        i = j + 1;
    }
    return HQ_ENOTFOUND;
}

/* ------------------------------------------------------------------------------------------
 * Extraction
 * ---------------------------------------------------------------------------------------- */

struct hq__ex_ctx {
    const struct hq_source_cfg *src;
    const struct hq_request_view *req;
    bool form;                /* an application/x-www-form-urlencoded body */
    bool json_done;           /* parse attempted (once per request) */
    int json_rc;              /* its result */
    struct json_object *root; /* owned */
};

/* The body's JSON tree, parsed on first use. HQ_OK, HQ_EINVAL (not JSON), HQ_ENOMEM. */
static int ex_json(struct hq__ex_ctx *c, struct json_object **root)
{
    if (!c->json_done) {
        c->json_done = true;
        if (!c->req->body && c->req->body_len)
            c->json_rc = HQ_EINVAL;
        else
            c->json_rc = hq_json_parse_untrusted(
                c->req->body ? c->req->body : (const unsigned char *)"", c->req->body_len,
                EV_JSON_DEPTH, (void **)&c->root);
    }
    *root = c->root;
    return c->json_rc;
}

/* Evaluate one selector. HQ_OK (*out malloc'd, valid per hq__event_valid_value), HQ_ENOTFOUND (absent,
 * invalid value, or a selector we do not understand), HQ_EINVAL (json selector on a body that
 * is not JSON), HQ_ENOMEM. */
static int sel_eval(struct hq__ex_ctx *c, const char *sel, size_t max, char **out)
{
    *out = NULL;
    if (strncmp(sel, "json:", 5) == 0) {
        struct json_object *root, *v;
        int rc = ex_json(c, &root);
        if (rc != HQ_OK) return rc;
        v = json_pointer_eval(root, sel + 5);
        return v ? json_value_text(v, max, out) : HQ_ENOTFOUND;
    }
    if (strncmp(sel, "header:", 7) == 0) {
        const char *v = hq_req_header(c->req, sel + 7, NULL);
        size_t n;
        if (!v || sel[7] == '\0') return HQ_ENOTFOUND;
        /* optional whitespace around a field value is not part of it (RFC 9110 5.5) */
        while (*v == ' ' || *v == '\t')
            v++;
        n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (!hq__event_valid_value(v, n, max)) return HQ_ENOTFOUND;
        *out = strndup(v, n);
        return *out ? HQ_OK : HQ_ENOMEM;
    }
    if (strncmp(sel, "const:", 6) == 0) {
        size_t n = strlen(sel + 6);
        if (!hq__event_valid_value(sel + 6, n, max)) return HQ_ENOTFOUND;
        *out = strndup(sel + 6, n);
        return *out ? HQ_OK : HQ_ENOMEM;
    }
    if (strncmp(sel, "form:", 5) == 0) {
        char *v = NULL;
        size_t n = 0;
        int rc;
        if (!c->req->body) return HQ_ENOTFOUND;
        rc = form_get(c->req->body, c->req->body_len, sel + 5, max, &v, &n);
        if (rc != HQ_OK) return rc;
        if (!hq__event_valid_value(v, n, max)) {
            free(v);
            return HQ_ENOTFOUND;
        }
        *out = v;
        return HQ_OK;
    }
    return HQ_ENOTFOUND;
}

/* Try sels in order (NULL-terminated) until one yields a value. A bad_json result is
 * remembered but a later selector may still succeed. */
static int sel_eval_any(struct hq__ex_ctx *c, const char *const *sels, size_t max, char **out)
{
    int rc = HQ_ENOTFOUND, first_bad = HQ_ENOTFOUND;

    for (; *sels; sels++) {
        rc = sel_eval(c, *sels, max, out);
        if (rc == HQ_OK || rc == HQ_ENOMEM) return rc;
        if (rc == HQ_EINVAL) first_bad = HQ_EINVAL;
    }
    return first_bad == HQ_EINVAL ? HQ_EINVAL : rc;
}

/* Slack interactivity posts a form with one field "payload" holding JSON; its /type
 * ("block_actions", "view_submission", ...) is the event type. Extension to
 * docs/message-format.md, which names only the slash command's "command" field. */
static int slack_payload_type(struct hq__ex_ctx *c, char **out)
{
    char *payload = NULL;
    size_t plen = 0;
    struct json_object *root = NULL, *v;
    int rc;

    *out = NULL;
    if (!c->req->body) return HQ_ENOTFOUND;
    rc = form_get(c->req->body, c->req->body_len, "payload", c->req->body_len, &payload, &plen);
    if (rc != HQ_OK) return rc;
    rc = hq_json_parse_untrusted((const unsigned char *)payload, plen, EV_JSON_DEPTH, (void **)&root);
    if (rc == HQ_OK) {
        v = json_pointer_eval(root, "/type");
        rc = v ? json_value_text(v, EV_TYPE_MAX, out) : HQ_ENOTFOUND;
    }
    json_object_put(root);
    free(payload);
    return rc;
}

static int set_generated_id(struct hq_event_meta *meta)
{
    meta->id = malloc(37);
    if (!meta->id) return HQ_ENOMEM;
    hq_uuid7(meta->id);
    meta->id_generated = true;
    return HQ_OK;
}

/* The string member name of object o, if it is a string of 1..max bytes. Borrowed. */
static const char *json_member_str(struct json_object *o, const char *name, size_t max, size_t *len)
{
    struct json_object *v = NULL;
    const char *s;

    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    s = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    if (!s || *len == 0 || *len > max) return NULL;
    return s;
}

/* A handshake's answer: type and body (taken from b) into meta, a generated id. */
static int handshake_answer(struct hq_buf *b, const char *type, struct hq_event_meta *meta)
{
    int rc = HQ_ENOMEM;

    meta->type = strdup(type);
    if (!meta->type) goto out;
    meta->handshake_body = (char *)b->data;
    b->data = NULL;
    meta->handshake_content_type = strdup("application/json");
    if (!meta->handshake_content_type) goto out;
    meta->handshake = true;
    rc = set_generated_id(meta);
out:
    hq_buf_free(b);
    return rc;
}

/* Slack's url_verification (JSON bodies only): answered with its challenge. hq_scheme_ops. */
int hq__handshake_slack(struct hq__ex_ctx *c, const struct hq_secret *secret,
                        struct hq_event_meta *meta, const char **reason)
{
    struct json_object *root = NULL;
    const char *s, *tok;
    size_t n = 0, tlen = 0;
    struct hq_buf b = HQ_BUF_INIT(4 * EV_HANDSHAKE_TOKEN_MAX);
    int rc;

    if (c->form || ex_json(c, &root) != HQ_OK || !json_object_is_type(root, json_type_object))
        return HQ_ENOTFOUND;
    s = json_member_str(root, "type", EV_TYPE_MAX, &n);
    if (!s || n != 16 || memcmp(s, "url_verification", 16) != 0) return HQ_ENOTFOUND;
    tok = json_member_str(root, "challenge", EV_HANDSHAKE_TOKEN_MAX, &tlen);
    if (!tok || !hq__event_valid_value(tok, tlen, EV_HANDSHAKE_TOKEN_MAX)) {
        *reason = "bad_handshake";
        return HQ_EINVAL;
    }
    if ((rc = hq_buf_append(&b, "{\"challenge\":\"", 14)) != HQ_OK ||
        (rc = hq_buf_append_json_str(&b, tok, tlen)) != HQ_OK ||
        (rc = hq_buf_append(&b, "\"}", 2)) != HQ_OK)
        goto out;
    return handshake_answer(&b, "url_verification", meta);
out:
    hq_buf_free(&b);
    return rc;
}

/* Zoom's endpoint.url_validation: answered with hex(HMAC-SHA256(secret, plainToken)).
 * hq_scheme_ops. */
int hq__handshake_zoom(struct hq__ex_ctx *c, const struct hq_secret *secret,
                       struct hq_event_meta *meta, const char **reason)
{
    struct json_object *root = NULL, *payload = NULL;
    const char *s, *tok;
    size_t n = 0, tlen = 0;
    struct hq_buf b = HQ_BUF_INIT(4 * EV_HANDSHAKE_TOKEN_MAX);
    char hexmac[65];
    int rc;

    if (ex_json(c, &root) != HQ_OK || !json_object_is_type(root, json_type_object))
        return HQ_ENOTFOUND;
    s = json_member_str(root, "event", EV_TYPE_MAX, &n);
    if (!s || n != 23 || memcmp(s, "endpoint.url_validation", 23) != 0) return HQ_ENOTFOUND;
    tok = NULL;
    if (json_object_object_get_ex(root, "payload", &payload))
        tok = json_member_str(payload, "plainToken", EV_HANDSHAKE_TOKEN_MAX, &tlen);
    if (!tok || !hq__event_valid_value(tok, tlen, EV_HANDSHAKE_TOKEN_MAX)) {
        *reason = "bad_handshake";
        return HQ_EINVAL;
    }
    if (!secret && c->src->n_secrets > 0) secret = &c->src->secrets[0];
    if (!secret || !secret->data || secret->len > INT_MAX) {
        *reason = "no_secret";
        return HQ_EINVAL;
    }
    hq_sig_hmac_sha256_hex(secret, (const unsigned char *)tok, tlen, hexmac);
    if (!hexmac[0]) { /* OpenSSL failed */
        rc = HQ_ENOMEM;
        goto out;
    }
    if ((rc = hq_buf_append(&b, "{\"plainToken\":\"", 15)) != HQ_OK ||
        (rc = hq_buf_append_json_str(&b, tok, tlen)) != HQ_OK ||
        (rc = hq_buf_appendf(&b, "\",\"encryptedToken\":\"%s\"}", hexmac)) != HQ_OK)
        goto out;
    return handshake_answer(&b, "endpoint.url_validation", meta);
out:
    hq_buf_free(&b);
    return rc;
}

int hq_event_extract(const struct hq_source_cfg *src, const struct hq_request_view *req,
                     const struct hq_secret *verified_secret, struct hq_event_meta *meta,
                     const char **reason)
{
    struct hq__ex_ctx c;
    const char *dummy = NULL;
    const struct hq_scheme_ops *def;
    bool form, id_required;
    int rc;

    if (!reason) reason = &dummy;
    *reason = NULL;
    if (!meta) return HQ_EINVAL;
    memset(meta, 0, sizeof(*meta));
    if (!src || !req || !(def = hq_scheme_ops(src->scheme))) {
        *reason = "invalid_argument";
        return HQ_EINVAL;
    }
    memset(&c, 0, sizeof(c));
    c.src = src;
    c.req = req;
    form = hq_media_type_is(hq_req_content_type(req), "application/x-www-form-urlencoded");
    c.form = form;

    /* 1. provider handshakes (answered by the gateway, never published) */
    if (def->handshake) {
        rc = def->handshake(&c, verified_secret, meta, reason);
        if (rc != HQ_ENOTFOUND) goto out;
    }

    /* 2. type: always required */
    if (src->event_type) {
        rc = sel_eval(&c, src->event_type, EV_TYPE_MAX, &meta->type);
    } else if (src->scheme == HQ_SCHEME_SLACK && form) {
        rc = sel_eval(&c, "form:command", EV_TYPE_MAX, &meta->type);
        if (rc == HQ_ENOTFOUND) rc = slack_payload_type(&c, &meta->type);
        if (rc == HQ_EINVAL) /* a payload field that is not JSON */
            rc = HQ_ENOTFOUND;
    } else {
        rc = sel_eval_any(&c, def->event_type, EV_TYPE_MAX, &meta->type);
    }
    if (rc == HQ_ENOTFOUND) {
        *reason = "missing_type";
        rc = HQ_EINVAL;
    } else if (rc == HQ_EINVAL) {
        *reason = "bad_json";
    }
    if (rc != HQ_OK) goto out;

    /* 3. id: required where the scheme has one, and whenever a selector is configured */
    id_required = src->event_id != NULL || def->id_required;
    if (src->event_id)
        rc = sel_eval(&c, src->event_id, EV_ID_MAX, &meta->id);
    else if (def->event_id[0] && !(src->scheme == HQ_SCHEME_SLACK && form))
        rc = sel_eval_any(&c, def->event_id, EV_ID_MAX, &meta->id);
    else
        rc = HQ_ENOTFOUND;
    if (rc == HQ_ENOMEM) goto out;
    if (rc != HQ_OK && !id_required) {
        rc = set_generated_id(meta); /* also when an optional json id meets a non-JSON body */
    } else if (rc == HQ_ENOTFOUND) {
        *reason = "missing_id";
        rc = HQ_EINVAL;
    } else if (rc == HQ_EINVAL) {
        *reason = "bad_json";
    }
out:
    json_object_put(c.root);
    if (rc != HQ_OK) {
        hq_event_meta_free(meta);
        if (rc == HQ_ENOMEM) *reason = NULL;
    }
    return rc;
}

void hq_event_meta_free(struct hq_event_meta *meta)
{
    if (!meta) return;
    free(meta->type);
    free(meta->id);
    free(meta->handshake_body);
    free(meta->handshake_content_type);
    memset(meta, 0, sizeof(*meta));
}
