/* archive_history: one event's archive records and lifecycle timeline, as `hookmq-archive
 * history ID` prints it and the console shows it (hq_archive.h, "history"). Moved here from
 * archive/archive_query.c so both use the same collection and order. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hq__archive.h"
#include "hq_archive.h"
#include "hq_json.h"

struct hctx {
    struct hq_ahistory *h;
    size_t cap;
    struct hq_aseen *seen;
    int error;
};

static void entry_free(struct hq_ahist_entry *e)
{
    free(e->source);
    free(e->type);
    free(e->routing_key);
    free(e->line);
    hq_lc_parsed_free(&e->lc);
}

static int history_rec(void *arg, const struct hq_arec *r)
{
    struct hctx *c = arg;
    struct hq_ahistory *h = c->h;
    struct hq_ahist_entry *e;
    int added;
    size_t i;

    /* events: one entry per (source, id), duplicates counted; lifecycle: identical records
     * (redelivered) once */
    if (r->kind == HQ_AREC_EVENT)
        added = hq_aseen_add(c->seen, r->source, r->id);
    else
        added = hq_aseen_add(c->seen, "\x01lifecycle", r->line);
    if (added < 0) {
        c->error = added;
        return 1;
    }
    if (!added) {
        for (i = 0; r->kind == HQ_AREC_EVENT && i < h->n; i++)
            if (h->v[i].kind == HQ_AREC_EVENT && strcmp(h->v[i].source, r->source) == 0)
                h->v[i].copies++;
        return 0;
    }
    {
        struct hq_ahist_entry *nv = hq_array_grow(h->v, &c->cap, h->n, sizeof(*nv), 32);

        if (!nv) {
            c->error = HQ_ENOMEM;
            return 1;
        }
        h->v = nv;
    }
    e = &h->v[h->n];
    memset(e, 0, sizeof(*e));
    e->kind = r->kind;
    e->at = r->received_at;
    e->copies = 1;
    e->seq = h->n;
    e->body_len = r->body_len;
    e->source = strdup(r->source);
    e->type = strdup(r->type);
    e->routing_key = strdup(r->routing_key);
    e->line = strdup(r->line);
    if (!e->source || !e->type || !e->routing_key || !e->line) {
        entry_free(e);
        c->error = HQ_ENOMEM;
        return 1;
    }
    if (r->kind == HQ_AREC_LIFECYCLE &&
        hq_lc_parse(r->body, r->body_len, &e->lc) == HQ_OK && e->lc.at_ms > 0)
        e->at = e->lc.at_ms;
    h->n++;
    return 0;
}

/* Redriven and replayed records start a new delivery: within one millisecond they come before
 * the outcomes of that delivery, which another process may have published first. */
static bool lc_cause(const struct hq_ahist_entry *e)
{
    return e->lc.verdict &&
           (strcmp(e->lc.verdict, "redriven") == 0 || strcmp(e->lc.verdict, "replayed") == 0);
}

/* Step records (the durable steps an attempt completed) come before that attempt's verdict,
 * which has the same time. */
static bool lc_step(const struct hq_ahist_entry *e)
{
    return e->lc.verdict && strcmp(e->lc.verdict, "step") == 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct hq_ahist_entry *x = a, *y = b;
    int c = strcmp(x->source, y->source);

    if (c)
        return c;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind == HQ_AREC_EVENT ? -1 : 1; /* received first */
    if (x->lc.attempt != y->lc.attempt)
        return x->lc.attempt < y->lc.attempt ? -1 : 1;
    if (lc_cause(x) != lc_cause(y))
        return lc_cause(x) ? -1 : 1;
    if (lc_step(x) != lc_step(y))
        return lc_step(x) ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int hq_archive_history(const char *dir, const char *id, const char *source,
                       struct hq_ahistory *out, struct hq_ascan_stats *st)
{
    struct hq_afilter f;
    struct hctx c;
    int rc;

    memset(out, 0, sizeof(*out));
    hq_afilter_init(&f);
    f.id = id;
    f.source = source;
    f.kinds = (1u << HQ_AREC_EVENT) | (1u << HQ_AREC_LIFECYCLE);
    memset(&c, 0, sizeof(c));
    c.h = out;
    c.seen = hq_aseen_new();
    if (!c.seen)
        return HQ_ENOMEM;
    rc = hq_archive_scan_ex(dir, &f, history_rec, &c, st);
    hq_aseen_free(c.seen);
    if (rc == HQ_OK && c.error)
        rc = c.error;
    if (rc != HQ_OK) {
        hq_ahistory_free(out);
        return rc;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), entry_cmp);
    return HQ_OK;
}

void hq_ahistory_free(struct hq_ahistory *h)
{
    size_t i;

    if (!h)
        return;
    for (i = 0; i < h->n; i++)
        entry_free(&h->v[i]);
    free(h->v);
    memset(h, 0, sizeof(*h));
}

int hq_arec_headers_redacted(const char *headers_json, bool (*redact)(void *arg, const char *name),
                             void *arg, struct hq_buf *out)
{
    json_object *o = NULL, *copy = NULL;
    const char *text;
    int rc = HQ_EINVAL;

    if (!headers_json || !(o = hq_json_parse(headers_json, strlen(headers_json), 16)) ||
        !json_object_is_type(o, json_type_object))
        goto out;
    if (!(copy = json_object_new_object())) {
        rc = HQ_ENOMEM;
        goto out;
    }
    {
        json_object_object_foreach(o, key, val)
        {
            json_object *v = redact(arg, key) ? json_object_new_string("[redacted]")
                                              : json_object_get(val);

            if (!v || json_object_object_add(copy, key, v) != 0) {
                json_object_put(v);
                rc = HQ_ENOMEM;
                goto out;
            }
        }
    }
    text = json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
    rc = text ? hq_buf_append(out, text, strlen(text)) : HQ_ENOMEM;
out:
    json_object_put(copy);
    json_object_put(o);
    return rc;
}
