/* dlq_select: which parked events a person picked to act on, from a JSON request
 * ({"ids": [...]} or {"filter": {"source", "type", "id"}}), and the test of one DLQ message
 * against it (hq_dlq.h). */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hq__archive.h"
#include "hq_codec.h"
#include "hq_dlq.h"
#include "hq_json.h"

#define SELECT_IDS_MAX 1000
#define SELECT_VALUE_MAX 256

static int fail(char *err, size_t errsz, const char *msg)
{
    snprintf(err, errsz, "%s", msg);
    return HQ_EINVAL;
}

static int str_member(json_object *v, char **out, char *err, size_t errsz, const char *what)
{
    size_t n;

    if (!json_object_is_type(v, json_type_string)) {
        snprintf(err, errsz, "%s must be a string", what);
        return HQ_EINVAL;
    }
    n = (size_t)json_object_get_string_len(v);
    if (n == 0 || n > SELECT_VALUE_MAX || memchr(json_object_get_string(v), '\0', n)) {
        snprintf(err, errsz, "%s must be 1 to %d bytes without a NUL", what, SELECT_VALUE_MAX);
        return HQ_EINVAL;
    }
    *out = strndup(json_object_get_string(v), n);
    return *out ? HQ_OK : HQ_ENOMEM;
}

int hq_dlq_select_parse(const char *json, size_t n, struct hq_dlq_select *out, char *err,
                        size_t errsz)
{
    json_object *o = NULL, *ids = NULL, *filter = NULL;
    int rc = HQ_EINVAL;
    size_t i, len;

    memset(out, 0, sizeof(*out));
    if (!json || hq_json_parse_untrusted((const unsigned char *)json, n, 8, (void **)&o) != HQ_OK)
        o = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        rc = fail(err, errsz, "the body must be a JSON object: {\"ids\": [...]} or "
                              "{\"filter\": {...}}");
        goto out;
    }
    {
        json_object_object_foreach(o, key, val)
        {
            if (strcmp(key, "ids") == 0)
                ids = val;
            else if (strcmp(key, "filter") == 0)
                filter = val;
            else {
                snprintf(err, errsz, "unknown member \"%.40s\" (ids or filter)", key);
                goto out;
            }
        }
    }
    if (!ids == !filter) {
        rc = fail(err, errsz, "give either ids or filter");
        goto out;
    }
    if (ids) {
        if (!json_object_is_type(ids, json_type_array) ||
            (len = json_object_array_length(ids)) == 0 || len > SELECT_IDS_MAX) {
            rc = fail(err, errsz, "ids must be an array of 1 to 1000 event ids");
            goto out;
        }
        if (!(out->ids = calloc(len, sizeof(*out->ids)))) {
            rc = HQ_ENOMEM;
            goto out;
        }
        for (i = 0; i < len; i++) {
            out->n_ids = i + 1;
            if ((rc = str_member(json_object_array_get_idx(ids, i), &out->ids[i], err, errsz,
                                 "each id")) != HQ_OK)
                goto out;
        }
    } else {
        out->by_filter = true;
        if (!json_object_is_type(filter, json_type_object)) {
            rc = fail(err, errsz, "filter must be an object {\"source\", \"type\", \"id\"}");
            goto out;
        }
        {
            json_object_object_foreach(filter, key, val)
            {
                char **dst = strcmp(key, "source") == 0 ? &out->source
                             : strcmp(key, "type") == 0 ? &out->type_glob
                             : strcmp(key, "id") == 0   ? &out->id
                                                        : NULL;
                if (!dst) {
                    snprintf(err, errsz, "unknown filter \"%.40s\" (source, type, id)", key);
                    rc = HQ_EINVAL;
                    goto out;
                }
                if ((rc = str_member(val, dst, err, errsz, "a filter value")) != HQ_OK)
                    goto out;
            }
        }
    }
    rc = HQ_OK;
out:
    json_object_put(o);
    if (rc != HQ_OK)
        hq_dlq_select_free(out);
    return rc;
}

bool hq_dlq_select_match(const struct hq_dlq_select *s, const struct hq_dlq_info *in)
{
    size_t i;

    if (!s->by_filter) {
        for (i = 0; i < s->n_ids; i++)
            if (strcmp(s->ids[i], in->id) == 0)
                return true;
        return false;
    }
    if (s->source && strcmp(s->source, in->source) != 0)
        return false;
    if (s->id && strcmp(s->id, in->id) != 0)
        return false;
    if (s->type_glob && fnmatch(s->type_glob, in->type, 0) != 0)
        return false;
    return true;
}

void hq_dlq_select_free(struct hq_dlq_select *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->n_ids; i++)
        free(s->ids[i]);
    free(s->ids);
    free(s->source);
    free(s->type_glob);
    free(s->id);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ edit requests */

#define EDIT_HEADERS_MAX 64
#define EDIT_VALUE_MAX 4096

int hq_dlq_edit_req_parse(const char *json, size_t n, struct hq_dlq_edit_req *out, char *err,
                          size_t errsz)
{
    json_object *o = NULL, *body = NULL, *b64 = NULL, *hdrs = NULL;
    int rc = HQ_EINVAL;
    size_t i = 0;

    memset(out, 0, sizeof(*out));
    if (!json || hq_json_parse_untrusted((const unsigned char *)json, n, 8, (void **)&o) != HQ_OK)
        o = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        rc = fail(err, errsz, "the body must be a JSON object: {\"body\" or \"body_b64\", "
                              "\"headers\": {...}}");
        goto out;
    }
    {
        json_object_object_foreach(o, key, val)
        {
            if (strcmp(key, "body") == 0)
                body = val;
            else if (strcmp(key, "body_b64") == 0)
                b64 = val;
            else if (strcmp(key, "headers") == 0)
                hdrs = val;
            else {
                snprintf(err, errsz, "unknown member \"%.40s\" (body, body_b64, headers)", key);
                goto out;
            }
        }
    }
    if (body && b64) {
        rc = fail(err, errsz, "give body or body_b64, not both");
        goto out;
    }
    if (!body && !b64 && !hdrs) {
        rc = fail(err, errsz, "nothing to change: give body, body_b64 or headers");
        goto out;
    }
    if (body || b64) {
        json_object *v = body ? body : b64;
        size_t len = json_object_is_type(v, json_type_string)
                         ? (size_t)json_object_get_string_len(v)
                         : 0;

        if (!json_object_is_type(v, json_type_string)) {
            rc = fail(err, errsz, "body and body_b64 must be strings");
            goto out;
        }
        if (!(out->body = malloc(len + 1))) {
            rc = HQ_ENOMEM;
            goto out;
        }
        out->has_body = true;
        if (body) {
            memcpy(out->body, json_object_get_string(v), len);
            out->body_len = len;
        } else if (hq_b64_decode(json_object_get_string(v), len, 0, out->body, len + 1,
                                 &out->body_len) != HQ_OK) {
            rc = fail(err, errsz, "body_b64 is not standard padded base64");
            goto out;
        }
    }
    if (hdrs) {
        size_t nh;

        if (!json_object_is_type(hdrs, json_type_object) ||
            (nh = (size_t)json_object_object_length(hdrs)) > EDIT_HEADERS_MAX) {
            rc = fail(err, errsz, "headers must be an object of at most 64 string values");
            goto out;
        }
        out->keys = calloc(nh + 1, sizeof(*out->keys));
        out->vals = calloc(nh + 1, sizeof(*out->vals));
        if (!out->keys || !out->vals) {
            rc = HQ_ENOMEM;
            goto out;
        }
        {
            json_object_object_foreach(hdrs, key, val)
            {
                size_t vl;

                if (!hq_dlq_edit_header_allowed(key)) {
                    snprintf(err, errsz, "header \"%.40s\" may not be edited (not hookmq-* or "
                                         "x-*; printable, no spaces)", key);
                    rc = HQ_EINVAL;
                    goto out;
                }
                if (!json_object_is_type(val, json_type_string) ||
                    (vl = (size_t)json_object_get_string_len(val)) > EDIT_VALUE_MAX ||
                    memchr(json_object_get_string(val), '\0', vl)) {
                    snprintf(err, errsz, "header \"%.40s\": the value must be a string of at "
                                         "most 4096 bytes without a NUL", key);
                    rc = HQ_EINVAL;
                    goto out;
                }
                out->keys[i] = strdup(key);
                out->vals[i] = strndup(json_object_get_string(val), vl);
                out->n = ++i;
                if (!out->keys[i - 1] || !out->vals[i - 1]) {
                    rc = HQ_ENOMEM;
                    goto out;
                }
            }
        }
    }
    rc = HQ_OK;
out:
    json_object_put(o);
    if (rc != HQ_OK)
        hq_dlq_edit_req_free(out);
    return rc;
}

void hq_dlq_edit_req_free(struct hq_dlq_edit_req *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->n; i++) {
        free(r->keys[i]);
        free(r->vals[i]);
    }
    free(r->keys);
    free(r->vals);
    free(r->body);
    memset(r, 0, sizeof(*r));
}
