/* steps.c: the text form of the `hookmq-steps` field table (hq_steps.h). Pure functions. */
#include <stdlib.h>
#include <string.h>

#include "hq__json.h"
#include "hq_codec.h"
#include "hq_json.h"
#include "hq_steps.h"

bool hq_step_name_ok(const char *name, size_t n)
{
    size_t i;

    if (!name || n == 0 || n > HQ_STEP_NAME_MAX || name[0] == '.')
        return false; /* no ".", "..", nor hidden files in HOOKMQ_STEPS_DIR */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void hq_steps_free(struct hq_steps *s)
{
    if (!s)
        return;
    free(s->mem);
    memset(s, 0, sizeof(*s));
}

int hq_steps_parse(const char *text, struct hq_steps *out)
{
    size_t len, n = 1, k;
    const char *p, *end;
    unsigned char *vals;
    char *names;
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text || !*text)
        return HQ_OK;
    len = strlen(text);
    for (p = text; *p; p++)
        n += *p == ',';
    /* decoded values and NUL-terminated names are shorter than their text: 2 * (len + 1)
     * bytes hold them all */
    out->mem = malloc(n * sizeof(struct hq_step) + 2 * (len + 1));
    if (!out->mem)
        return HQ_ENOMEM;
    out->v = out->mem;
    names = (char *)out->mem + n * sizeof(struct hq_step);
    vals = (unsigned char *)names + len + 1;
    for (p = text, end = text + len; p <= end && out->n < n;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *colon = memchr(p, ':', (size_t)(stop - p));
        struct hq_step *st = &out->v[out->n];
        size_t dl;

        if (!colon || !hq_step_name_ok(p, (size_t)(colon - p)))
            goto out;
        st->name_len = (size_t)(colon - p);
        memcpy(names, p, st->name_len);
        names[st->name_len] = '\0';
        st->name = names;
        names += st->name_len + 1;
        if (hq_b64_decode(colon + 1, (size_t)(stop - colon - 1), 0, vals,
                          (size_t)(stop - colon - 1) + 1, &dl) != HQ_OK)
            goto out;
        st->val = vals;
        st->len = dl;
        vals += dl;
        for (k = 0; k < out->n; k++)
            if (out->v[k].name_len == st->name_len &&
                memcmp(out->v[k].name, st->name, st->name_len) == 0)
                goto out;
        out->n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    rc = out->n == n ? HQ_OK : HQ_EINVAL;
out:
    if (rc != HQ_OK)
        hq_steps_free(out);
    return rc;
}

/* Append one step as sep? q name q mid q base64(val) q, where sep (",") is written when the
 * buffer holds more than skip bytes: the text form (no quotes) and the JSON form share it. */
static int append_pair(struct hq_buf *out, size_t skip, const char *q, const char *mid,
                       const char *name, size_t name_len, const unsigned char *val, size_t len)
{
    size_t ql = strlen(q), ml = strlen(mid), n;
    char *b64;
    int rc;

    if (!out || !hq_step_name_ok(name, name_len) || (len && !val))
        return HQ_EINVAL;
    b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (!b64)
        return HQ_ENOMEM;
    n = hq_b64_encode(val, len, b64);
    /* names need no escaping: [A-Za-z0-9._-] */
    if ((out->len > skip && (rc = hq_buf_append(out, ",", 1)) != HQ_OK) ||
        (rc = hq_buf_append(out, q, ql)) != HQ_OK ||
        (rc = hq_buf_append(out, name, name_len)) != HQ_OK ||
        (rc = hq_buf_append(out, mid, ml)) != HQ_OK ||
        (rc = hq_buf_append(out, b64, n)) != HQ_OK || (rc = hq_buf_append(out, q, ql)) != HQ_OK)
        goto out;
    rc = HQ_OK;
out:
    free(b64);
    return rc;
}

int hq_steps_append(struct hq_buf *out, const char *name, size_t name_len,
                    const unsigned char *val, size_t len)
{
    return append_pair(out, 0, "", ":", name, name_len, val, len);
}

int hq_steps_json_add(struct hq_buf *out, const char *name, size_t name_len,
                      const unsigned char *val, size_t len)
{
    return append_pair(out, 1, "\"", "\":\"", name, name_len, val, len); /* after the "{" */
}

int hq_steps_parse_json(const char *text, size_t n, struct hq_steps *out)
{
    json_object *o;
    size_t count, i = 0;
    char *names;
    unsigned char *vals;
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    o = NULL;
    if (hq_json_parse_untrusted((const unsigned char *)text, n, 2, (void **)&o) != HQ_OK ||
        !json_object_is_type(o, json_type_object))
        goto out;
    count = (size_t)json_object_object_length(o);
    if (count == 0) {
        rc = HQ_OK;
        goto out;
    }
    /* names and decoded values are shorter than the text */
    out->mem = malloc(count * sizeof(struct hq_step) + 2 * (n + 1));
    rc = HQ_ENOMEM;
    if (!out->mem)
        goto out;
    rc = HQ_EINVAL;
    out->v = out->mem;
    names = (char *)out->mem + count * sizeof(struct hq_step);
    vals = (unsigned char *)names + n + 1;
    {
        json_object_object_foreach(o, key, val)
        {
            size_t kl = strlen(key), dl;
            const char *s;
            int sl;

            if (i == count || !hq_step_name_ok(key, kl) ||
                !json_object_is_type(val, json_type_string))
                goto out;
            s = json_object_get_string(val);
            sl = json_object_get_string_len(val);
            if (sl < 0 || hq_b64_decode(s, (size_t)sl, 0, vals, (size_t)sl + 1, &dl) != HQ_OK)
                goto out;
            memcpy(names, key, kl + 1);
            out->v[i].name = names;
            out->v[i].name_len = kl;
            out->v[i].val = vals;
            out->v[i].len = dl;
            names += kl + 1;
            vals += dl;
            i++;
        }
    }
    out->n = i;
    rc = HQ_OK;
out:
    if (o)
        json_object_put(o);
    if (rc != HQ_OK)
        hq_steps_free(out);
    return rc;
}
