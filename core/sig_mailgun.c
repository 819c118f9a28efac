/* sig_mailgun: Mailgun, whose signature object sits inside the JSON body:
 * hex(HMAC-SHA256(key, timestamp + token)) (docs/signatures.md). */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "hq__json.h"
#include "hq__sig.h"

#define JSON_DEPTH_MAX 32 /* mailgun body */
#define MAILGUN_TOKEN_MAX 512

/* RFC 8259 syntax check. json-c 0.16's strict mode still accepts single-quoted member names,
 * NaN/Infinity and raw control characters in strings, so the body is checked here first;
 * json-c then validates UTF-8 and builds the tree. Recursion is bounded by JSON_DEPTH_MAX. */
struct jcur {
    const unsigned char *p, *end;
};

static void j_ws(struct jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool j_lit(struct jcur *c, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return false;
    c->p += n;
    return true;
}

static bool j_digits(struct jcur *c)
{
    const unsigned char *s = c->p;

    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s;
}

static bool j_number(struct jcur *c)
{
    if (c->p < c->end && *c->p == '-') c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (c->p >= c->end || *c->p < '1' || *c->p > '9' || !j_digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!j_digits(c)) return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (!j_digits(c)) return false;
    }
    return true;
}

static bool j_string(struct jcur *c)
{
    if (c->p >= c->end || *c->p != '"') return false;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = *c->p++;
        if (ch == '"') return true;
        if (ch < 0x20) return false;
        if (ch == '\\') {
            int k;
            if (c->p >= c->end) return false;
            ch = *c->p++;
            if (ch == 'u') {
                for (k = 0; k < 4; k++, c->p++)
                    if (c->p >= c->end || !isxdigit(*c->p)) return false;
            } else if (!strchr("\"\\/bfnrt", ch) || ch == '\0') {
                return false;
            }
        }
    }
    return false;
}

static bool j_value(struct jcur *c, int depth)
{
    j_ws(c);
    if (c->p >= c->end) return false;
    switch (*c->p) {
    case '{':
    case '[': {
        unsigned char close = *c->p == '{' ? '}' : ']';
        bool obj = close == '}';
        if (depth >= JSON_DEPTH_MAX) return false;
        c->p++;
        j_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return true;
        }
        for (;;) {
            if (obj) {
                j_ws(c);
                if (!j_string(c)) return false;
                j_ws(c);
                if (c->p >= c->end || *c->p++ != ':') return false;
            }
            if (!j_value(c, depth + 1)) return false;
            j_ws(c);
            if (c->p >= c->end) return false;
            if (*c->p == close) {
                c->p++;
                return true;
            }
            if (*c->p++ != ',') return false;
        }
    }
    case '"':
        return j_string(c);
    case 't':
        return j_lit(c, "true");
    case 'f':
        return j_lit(c, "false");
    case 'n':
        return j_lit(c, "null");
    default:
        return j_number(c);
    }
}

static bool json_strict_ok(const unsigned char *p, size_t n)
{
    struct jcur c = {p, p + n};

    if (!j_value(&c, 0)) return false;
    j_ws(&c);
    return c.p == c.end;
}

/* Mailgun: {"signature": {"timestamp": "...", "token": "...", "signature": "<hex>"}, ...}.
 * The body is parsed strictly (RFC 8259 syntax checked by json_strict_ok, then json-c strict
 * mode with UTF-8 validation, depth JSON_DEPTH_MAX, nothing after the value but whitespace). */
int hq__verify_mailgun(const struct hq_source_cfg *src, const struct hq_request_view *req,
                       int64_t now, struct hq_verify_result *res)
{
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL, *sig, *jts, *jtok, *jsig;
    const char *ts, *token, *sv;
    char tsbuf[32];
    size_t tsn, tokn, svn;
    int64_t tsv = 0;
    unsigned char mac[HQ__SIG_MAC_MAX];
    struct hq__kv cand;
    int rc;

    if (req->body_len == 0 || req->body_len > INT_MAX) {
        rc = hq__sig_fail(res, HQ_EAUTH, req->body_len == 0 ? HQ__R_MISSING : HQ__R_MALFORMED);
        goto out;
    }
    if (!json_strict_ok(req->body, req->body_len)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    tok = json_tokener_new_ex(JSON_DEPTH_MAX);
    if (!tok) {
        rc = hq__sig_fail(res, HQ_ENOMEM, HQ__R_MALFORMED);
        goto out;
    }
    json_tokener_set_flags(tok, HQ__JSON_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, (const char *)req->body, (int)req->body_len);
    if (!root || json_tokener_get_error(tok) != json_tokener_success) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    /* json_strict_ok() has already refused anything but whitespace after the value. */
    if (!json_object_is_type(root, json_type_object)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    if (!json_object_object_get_ex(root, "signature", &sig)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
        goto out;
    }
    if (!json_object_is_type(sig, json_type_object)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    if (!json_object_object_get_ex(sig, "timestamp", &jts) ||
        json_object_is_type(jts, json_type_null)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING_TS);
        goto out;
    }
    if (json_object_is_type(jts, json_type_string)) {
        ts = json_object_get_string(jts);
        tsn = (size_t)json_object_get_string_len(jts);
    } else if (json_object_is_type(jts, json_type_int)) {
        int64_t iv = json_object_get_int64(jts);
        int k;
        if (iv < 0) {
            rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
            goto out;
        }
        k = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, iv);
        ts = tsbuf;
        tsn = k > 0 ? (size_t)k : 0;
    } else {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    if (!hq__sig_parse_ts(ts, tsn, &tsv)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    res->timestamp = tsv;
    if (!json_object_object_get_ex(sig, "signature", &jsig) ||
        !json_object_is_type(jsig, json_type_string) || json_object_get_string_len(jsig) == 0) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
        goto out;
    }
    if (!json_object_object_get_ex(sig, "token", &jtok) ||
        !json_object_is_type(jtok, json_type_string)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    token = json_object_get_string(jtok);
    tokn = (size_t)json_object_get_string_len(jtok);
    sv = json_object_get_string(jsig);
    svn = (size_t)json_object_get_string_len(jsig);
    if (tokn == 0 || tokn > MAILGUN_TOKEN_MAX || svn != 64) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    cand.k = NULL;
    cand.kn = 0;
    cand.v = sv;
    cand.vn = svn;
    {
        struct hq__part parts[2] = {{ts, tsn}, {token, tokn}};
        if (!hq__sig_match_encoded(src, HQ_ALG_SHA256, HQ_ENC_HEX, parts, 2, &cand, 1, res, mac)) {
            rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
            goto out;
        }
    }
    {
        struct hq__part f[3] = {{ts, tsn}, {token, tokn}, {sv, svn}};
        hq__sig_replay_key(res, src->scheme, f, 3);
    }
    rc = hq__sig_check_time(src, tsv, now, res);
out:
    json_object_put(root);
    if (tok) json_tokener_free(tok);
    return rc;
}

/* The signature lives in the body, which a signer cannot rewrite: the caller builds it with
 * hq_sig_hmac_sha256_hex(secret, timestamp + token). Succeeds (no headers) only when the body
 * already verifies with secret 0 at now_s. */
int hq__sign_mailgun(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    struct hq_request_view r = {NULL, 0, in->body, in->body_len, in->content_type, in->url};
    struct hq_source_cfg one = *in->src;
    struct hq_verify_result vr;

    one.n_secrets = 1;
    return hq_sig_verify(&one, &r, in->now_s, &vr) == HQ_OK ? HQ_OK : HQ_EINVAL;
}
