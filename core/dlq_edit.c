/* dlq_edit: "edit and retry" of a parked event (hq_dlq.h): the redriven copy with a new body
 * and/or headers, marked with the original's digest and the editor (hq_dlq_edit_copy), and the
 * whole action, shared by the console and `hookmq-dlx edit` (hq_dlq_edit): find the event,
 * send the copy with a confirm, take the original out of the DLQ, record who did it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hq_codec.h"
#include "hq_dlq.h"
#include "hq_lifecycle.h"
#include "hq_time.h"

/* Remove header key from m (all occurrences). */
static void drop_header(struct hq_msg *m, const char *key)
{
    size_t i = 0;

    while (i < m->n_headers) {
        if (strcmp(m->headers[i].key, key) == 0) {
            free(m->headers[i].key);
            free(m->headers[i].str);
            memmove(&m->headers[i], &m->headers[i + 1],
                    (m->n_headers - i - 1) * sizeof(m->headers[0]));
            m->n_headers--;
        } else {
            i++;
        }
    }
}

bool hq_dlq_edit_header_allowed(const char *key)
{
    size_t n = key ? strlen(key) : 0, i;

    if (n == 0 || n > 128 || strncmp(key, "hookmq-", 7) == 0 || strncmp(key, "x-", 2) == 0)
        return false;
    for (i = 0; i < n; i++)
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
            return false;
    return true;
}

int hq_dlq_edit_copy(const struct hq_delivery *d, const unsigned char *body, size_t body_len,
                     const char *const *keys, const char *const *vals, size_t n_headers,
                     const char *user, struct hq_msg *out, char *summary, size_t summarysz)
{
    unsigned char md[32];
    char digest[8 + 65];
    unsigned int mdlen = 0;
    size_t i;
    int rc;

    if (!user || !*user)
        return HQ_EINVAL;
    for (i = 0; i < n_headers; i++)
        if (!hq_dlq_edit_header_allowed(keys[i]) || !vals[i])
            return HQ_EINVAL;
    if (EVP_Digest(d->msg.body ? d->msg.body : (const unsigned char *)"", d->msg.body_len, md,
                   &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
        return HQ_EIO;
    memcpy(digest, "sha256:", 7);
    hq_hex_encode(md, sizeof(md), digest + 7);
    if ((rc = hq_dlq_redrive_copy(d, out)) != HQ_OK)
        return rc;
    if (body) {
        unsigned char *nb = malloc(body_len ? body_len : 1);

        if (!nb) {
            rc = HQ_ENOMEM;
            goto fail;
        }
        memcpy(nb, body, body_len);
        free(out->body);
        out->body = nb;
        out->body_len = body_len;
    }
    for (i = 0; i < n_headers; i++) {
        drop_header(out, keys[i]);
        if ((rc = hq_msg_add_str(out, keys[i], vals[i])) != HQ_OK)
            goto fail;
    }
    drop_header(out, "hookmq-edited-from");
    drop_header(out, "hookmq-edited-by");
    if ((rc = hq_msg_add_str(out, "hookmq-edited-from", digest)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-edited-by", user)) != HQ_OK)
        goto fail;
    if (summary && summarysz) {
        int w = snprintf(summary, summarysz, "edited by %s from %s:", user, digest);

        if (body && w > 0 && (size_t)w < summarysz)
            w += snprintf(summary + w, summarysz - (size_t)w, " body %zu -> %zu bytes",
                          d->msg.body_len, body_len);
        for (i = 0; i < n_headers && w > 0 && (size_t)w < summarysz; i++)
            w += snprintf(summary + w, summarysz - (size_t)w, "%s header %s", (body || i) ? "," : "",
                          keys[i]);
        if (!body && !n_headers && w > 0 && (size_t)w < summarysz)
            snprintf(summary + w, summarysz - (size_t)w, " unchanged");
    }
    return HQ_OK;
fail:
    hq_msg_free(out);
    return rc;
}

void hq_dlq_action_record(const struct hq_dlq_info *in, const char *consumer,
                          enum hq_lc_verdict verdict, const char *by, const char *error,
                          int64_t at_ms, struct hq_lc_record *r)
{
    memset(r, 0, sizeof(*r));
    r->source = in->source;
    r->id = in->id;
    r->consumer = consumer;
    r->attempt = 1;
    r->verdict = verdict;
    r->error = error;
    r->at_ms = at_ms;
    r->by = by;
}

struct edit_scan {
    const struct hq_dlq_edit *e;
    const char *work;
    struct hq_dlq_edit_outcome *out;
};

static int edit_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                      bool *settled)
{
    struct edit_scan *x = ud;
    const struct hq_dlq_edit *e = x->e;
    struct hq_dlq_edit_outcome *out = x->out;
    struct hq_dlq_info in;
    struct hq_lc_record r;
    struct hq_msg copy;
    int64_t at;
    int rc;

    hq_dlq_info(d, &in);
    if (strcmp(in.id, e->id) != 0)
        return HQ_OK;
    out->found = true;
    *stop = true; /* the first parked copy of this id */
    snprintf(out->source, sizeof(out->source), "%s", in.source);
    at = hq_now_ms(); /* before the copy: the record never sorts after what the copy causes */
    rc = hq_dlq_edit_copy(d, e->body, e->body_len, e->keys, e->vals, e->n_headers, e->user,
                          &copy, out->summary, sizeof(out->summary));
    if (rc != HQ_OK) {
        out->err = rc;
        return HQ_OK; /* refused (or no memory): the event stays, the scan puts it back */
    }
    rc = hq_amqp_publish_confirmed(c, "", x->work, &copy, e->timeout_ms);
    hq_msg_free(&copy);
    if (rc == HQ_OK)
        rc = hq_amqp_ack(c, d->tag);
    if (rc != HQ_OK) {
        out->err = rc;
        snprintf(out->error, sizeof(out->error), "%s", hq_consume_error(c));
        return rc;
    }
    *settled = true;
    out->done = true;
    hq_dlq_action_record(&in, e->consumer, HQ_LC_EDITED, e->user, out->summary, at, &r);
    hq_lc_emit(e->lc, &r);
    return HQ_OK;
}

int hq_dlq_edit(struct hq_amqp *c, size_t max, const struct hq_dlq_edit *e,
                struct hq_dlq_edit_outcome *out)
{
    char dlq[HQ_NAME_MAX + 32], work[HQ_NAME_MAX + 32];
    struct edit_scan x = {e, work, out};
    size_t seen = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!e || !e->id || !e->consumer)
        return HQ_EINVAL;
    if ((rc = hq_dlq_queue(e->consumer, dlq, sizeof(dlq))) != HQ_OK ||
        (rc = hq_dlq_work_queue(e->consumer, work, sizeof(work))) != HQ_OK)
        return rc;
    return hq_dlq_scan(c, dlq, max, edit_visit, &x, &seen, NULL);
}
