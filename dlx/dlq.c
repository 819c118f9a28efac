/* dlq: the DLQ subcommands of hookmq-dlx: list, show, redrive, purge and edit (docs/dlq.md;
 * reading and selecting in scan.c, the command line in main.c).
 *
 * Reading a DLQ never consumes or reorders it: every message is fetched with basic.get
 * without an ack and then returned with one basic.nack (requeue) each, oldest first (see
 * hq_dlq_scan: closing the connection would return them too, but a quorum queue re-enqueues
 * a closed channel's messages in no particular order). Redrive acks only the messages it
 * moved, each after the broker confirmed the copy in the work queue, and edit the one it
 * sent back edited (hq_dlq_edit, shared with the console); the others go back the same way. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlx.h"
#include "hq_buf.h"
#include "hq_codec.h"
#include "hq_dlq.h"
#include "hq_json.h"
#include "hq_lifecycle.h"
#include "hq_time.h"
#include "hq_utf8.h"

#define CONFIRM_TIMEOUT_MS 10000
#define EDIT_CONFIRM_TIMEOUT_MS 5000
#define EDIT_BODY_MAX (64u << 20)
#define ERR_COL_MAX 100         /* last error column of the table */

static int json_kv_str(struct hq_buf *b, bool first, const char *k, const char *v)
{
    int rc;

    if ((rc = hq_buf_append(b, ",", first ? 0 : 1)) != HQ_OK ||
        (rc = hq_json_str(b, k, strlen(k))) != HQ_OK || (rc = hq_buf_append(b, ":", 1)) != HQ_OK)
        return rc;
    return v ? hq_json_str(b, v, strlen(v)) : hq_buf_append(b, "null", 4);
}

static int json_kv_long(struct hq_buf *b, bool first, const char *k, int64_t v)
{
    int rc;

    if ((rc = hq_buf_appendf(b, "%s\"", first ? "" : ",")) != HQ_OK ||
        (rc = hq_buf_append_json_str(b, k, strlen(k))) != HQ_OK)
        return rc;
    return hq_buf_appendf(b, "\":%" PRId64, v);
}

static int write_buf(const struct hq_buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return HQ_EIO;
    return HQ_OK;
}

/* ---------------------------------------------------------------- list */

enum { COL_ID, COL_TYPE, COL_SOURCE, COL_ATT, COL_FAILED, COL_REDRIVEN, COL_ERR, NCOL };

struct list_ctx {
    bool json;
    size_t shown, limit;
    char *(*rows)[NCOL];
    size_t n, alloc;
    struct hq_buf line;
};

static int list_json(struct list_ctx *lc, const struct hq_delivery *d, const struct hq_dlq_info *in)
{
    struct hq_buf *b = &lc->line;
    char failed[48];
    int rc;

    hq_buf_reset(b);
    dlx_fmt_time(in->failed_at_ms, failed, sizeof(failed));
    if ((rc = hq_buf_append(b, "{", 1)) != HQ_OK ||
        (rc = json_kv_str(b, true, "id", in->id)) != HQ_OK ||
        (rc = json_kv_str(b, false, "type", in->type)) != HQ_OK ||
        (rc = json_kv_str(b, false, "source", in->source)) != HQ_OK ||
        (rc = json_kv_long(b, false, "attempts", in->attempts)) != HQ_OK ||
        (rc = json_kv_str(b, false, "last_error", in->last_error)) != HQ_OK ||
        (rc = json_kv_str(b, false, "failed_at", in->failed_at_ms > 0 ? failed : NULL)) != HQ_OK ||
        (rc = json_kv_long(b, false, "failed_at_ms", in->failed_at_ms)) != HQ_OK ||
        (rc = json_kv_long(b, false, "redriven", in->redriven)) != HQ_OK ||
        (rc = json_kv_str(b, false, "consumer", in->consumer[0] ? in->consumer : NULL)) != HQ_OK ||
        (rc = json_kv_str(b, false, "dead_lettered_by", in->by_broker ? "broker" : "worker")) !=
            HQ_OK ||
        (rc = json_kv_str(b, false, "reason", in->reason[0] ? in->reason : NULL)) != HQ_OK ||
        (rc = json_kv_long(b, false, "body_bytes", (int64_t)d->msg.body_len)) != HQ_OK ||
        (rc = hq_buf_append(b, "}\n", 2)) != HQ_OK)
        return rc;
    return write_buf(b);
}

static int list_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                      bool *settled)
{
    struct list_ctx *lc = ud;
    struct hq_dlq_info in;
    char buf[3][48];
    char *(*row)[NCOL];
    size_t k;

    (void)c;
    (void)settled;
    if (lc->shown >= lc->limit) {
        *stop = true; /* --limit: the rest is read (and returned) but not shown */
        return HQ_OK;
    }
    lc->shown++;
    hq_dlq_info(d, &in);
    if (lc->json)
        return list_json(lc, d, &in);
    if (lc->n == lc->alloc) {
        size_t na = lc->alloc ? lc->alloc * 2 : 256;
        void *p = realloc(lc->rows, na * sizeof(*lc->rows));
        if (!p)
            return HQ_ENOMEM;
        lc->rows = p;
        lc->alloc = na;
    }
    row = &lc->rows[lc->n];
    snprintf(buf[0], sizeof(buf[0]), "%" PRId64, in.attempts);
    dlx_fmt_time(in.failed_at_ms, buf[1], sizeof(buf[1]));
    snprintf(buf[2], sizeof(buf[2]), "%" PRId64, in.redriven);
    (*row)[COL_ID] = dlx_term_str(in.id[0] ? in.id : "-", 64);
    (*row)[COL_TYPE] = dlx_term_str(in.type[0] ? in.type : "-", 40);
    (*row)[COL_SOURCE] = dlx_term_str(in.source[0] ? in.source : "-", 24);
    (*row)[COL_ATT] = dlx_term_str(buf[0], 0);
    (*row)[COL_FAILED] = dlx_term_str(buf[1], 0);
    (*row)[COL_REDRIVEN] = dlx_term_str(buf[2], 0);
    (*row)[COL_ERR] = dlx_term_str(in.last_error[0] ? in.last_error : "-", ERR_COL_MAX);
    lc->n++;
    for (k = 0; k < NCOL; k++)
        if (!(*row)[k])
            return HQ_ENOMEM;
    return HQ_OK;
}

static void list_table(const struct list_ctx *lc)
{
    static const char *const head[NCOL] = {"ID",        "TYPE",     "SOURCE",    "ATTEMPTS",
                                           "FAILED-AT", "REDRIVEN", "LAST-ERROR"};
    size_t w[NCOL], i, k;

    for (k = 0; k < NCOL; k++)
        w[k] = strlen(head[k]);
    for (i = 0; i < lc->n; i++)
        for (k = 0; k < NCOL; k++) {
            size_t l = dlx_cp_len(lc->rows[i][k]);
            if (l > w[k])
                w[k] = l;
        }
    for (k = 0; k < NCOL; k++)
        printf("%-*s%s", k + 1 < NCOL ? (int)w[k] : 0, head[k], k + 1 < NCOL ? "  " : "\n");
    for (i = 0; i < lc->n; i++)
        for (k = 0; k < NCOL; k++) {
            const char *s = lc->rows[i][k];
            /* pad by code points, not bytes */
            size_t pad = k + 1 < NCOL ? w[k] - dlx_cp_len(s) : 0;
            printf("%s%*s%s", s, (int)pad, "", k + 1 < NCOL ? "  " : "\n");
        }
}

static void list_free(struct list_ctx *lc)
{
    size_t i, k;

    for (i = 0; i < lc->n; i++)
        for (k = 0; k < NCOL; k++)
            free(lc->rows[i][k]);
    free(lc->rows);
    hq_buf_free(&lc->line);
}

int dlx_list(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct dlx_dlq q;
    struct list_ctx lc;
    size_t seen = 0;
    bool more = false;
    int rc;

    memset(&lc, 0, sizeof(lc));
    lc.json = o->json;
    lc.limit = o->has_limit ? (size_t)o->limit : SIZE_MAX;
    lc.line = (struct hq_buf)HQ_BUF_INIT(1u << 20);
    /* everything is back in the queue before the table is printed */
    if ((rc = dlx_dlq_read(cfg, o->name, "list", list_visit, &lc, &q, &seen, &more)) != HQ_OK)
        goto out;
    if (!o->json) {
        if (lc.n)
            list_table(&lc);
        if (lc.shown < seen)
            printf("%zu of %zu%s messages in %s shown\n", lc.shown, seen, more ? "+" : "", q.dlq);
        else
            printf("%zu message%s in %s\n", seen, seen == 1 ? "" : "s", q.dlq);
    } else if (lc.shown < seen) {
        fprintf(stderr, PROG ": note: %zu of %zu%s messages shown (--limit)\n", lc.shown, seen,
                more ? "+" : "");
    }
    if (more)
        fprintf(stderr,
                PROG ": note: %s holds more than %u messages; only the first %u were read (and "
                "the order of the rest may change)\n",
                q.dlq, DLX_SCAN_CAP, DLX_SCAN_CAP);
out:
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    list_free(&lc);
    return rc;
}

/* ---------------------------------------------------------------- show */

struct show_ctx {
    const char *id;
    bool json;
    bool found;
    int rc;
    const char *queue;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hq_hdr *const *x = a, *const *y = b;

    return strcmp((*x)->key, (*y)->key);
}

static bool time_key(const char *k)
{
    size_t n = strlen(k);

    return n > 3 && strcmp(k + n - 3, "-at") == 0;
}

static int xdeath_json(struct hq_buf *b, const struct hq_delivery *d)
{
    size_t i;
    int rc = hq_buf_append(b, "[", 1);

    for (i = 0; rc == HQ_OK && i < d->n_xdeath; i++) {
        const struct hq_xdeath *x = &d->xdeath[i];
        if ((rc = hq_buf_append(b, i ? ",{" : "{", i ? 2 : 1)) != HQ_OK ||
            (rc = json_kv_str(b, true, "queue", x->queue)) != HQ_OK ||
            (rc = json_kv_str(b, false, "reason", x->reason)) != HQ_OK ||
            (rc = json_kv_long(b, false, "count", x->count)) != HQ_OK ||
            (rc = json_kv_long(b, false, "time", x->time_s)) != HQ_OK)
            return rc;
        rc = hq_buf_append(b, "}", 1);
    }
    return rc == HQ_OK ? hq_buf_append(b, "]", 1) : rc;
}

static int show_json(const struct show_ctx *sc, const struct hq_delivery *d,
                     const struct hq_hdr **hs, size_t n)
{
    struct hq_buf b = HQ_BUF_INIT(256u << 20);
    const struct hq_msg *m = &d->msg;
    bool text = hq_utf8_valid(m->body, m->body_len); /* NUL is fine: escaped as \u0000 */
    size_t i;
    int rc;

    if ((rc = hq_buf_append(&b, "{", 1)) != HQ_OK ||
        (rc = json_kv_str(&b, true, "queue", sc->queue)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "id", m->message_id)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "exchange", d->exchange)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "routing_key", d->routing_key)) != HQ_OK ||
        (rc = hq_buf_appendf(&b, ",\"redelivered\":%s,\"properties\":{",
                             d->redelivered ? "true" : "false")) != HQ_OK ||
        (rc = json_kv_str(&b, true, "content_type", m->content_type)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "message_id", m->message_id)) != HQ_OK ||
        (rc = json_kv_long(&b, false, "timestamp", m->timestamp_s)) != HQ_OK ||
        (rc = json_kv_long(&b, false, "delivery_mode", d->delivery_mode)) != HQ_OK ||
        (rc = hq_buf_append(&b, "},\"headers\":{", 13)) != HQ_OK)
        goto out;
    for (i = 0; i < n; i++) {
        const struct hq_hdr *h = hs[i];

        if (!h) { /* x-death */
            if ((rc = hq_buf_append(&b, i ? ",\"x-death\":" : "\"x-death\":", i ? 11 : 10)) != HQ_OK ||
                (rc = xdeath_json(&b, d)) != HQ_OK)
                goto out;
            continue;
        }
        rc = h->type == HQ_HDR_LONG ? json_kv_long(&b, i == 0, h->key, h->num)
                                    : json_kv_str(&b, i == 0, h->key, h->str ? h->str : "");
        if (rc != HQ_OK)
            goto out;
    }
    if ((rc = hq_buf_append(&b, "}", 1)) != HQ_OK)
        goto out;
    if (text) {
        if ((rc = hq_buf_append(&b, ",\"body\":\"", 9)) != HQ_OK ||
            (rc = hq_buf_append_json_str(&b, (const char *)(m->body ? m->body : (unsigned char *)""),
                                         m->body_len)) != HQ_OK ||
            (rc = hq_buf_append(&b, "\"}\n", 3)) != HQ_OK)
            goto out;
    } else {
        char *enc = malloc(4 * ((m->body_len + 2) / 3) + 1);

        if (!enc) {
            rc = HQ_ENOMEM;
            goto out;
        }
        (void)hq_b64_encode(m->body, m->body_len, enc);
        if ((rc = hq_buf_append(&b, ",\"body_b64\":\"", 13)) == HQ_OK &&
            (rc = hq_buf_append(&b, enc, strlen(enc))) == HQ_OK)
            rc = hq_buf_append(&b, "\"}\n", 3);
        free(enc);
        if (rc != HQ_OK)
            goto out;
    }
    rc = write_buf(&b);
out:
    hq_buf_free(&b);
    return rc;
}

static int show_text(const struct show_ctx *sc, const struct hq_delivery *d,
                     const struct hq_hdr **hs, size_t n)
{
    const struct hq_msg *m = &d->msg;
    struct hq_dlq_info in;
    char t[48];
    size_t i;
    char *s;

    hq_dlq_info(d, &in);
    s = dlx_term_str(m->message_id ? m->message_id : "", 0);
    printf("queue:          %s\nid:             %s\n", sc->queue, s ? s : "");
    free(s);
    s = dlx_term_str(d->routing_key ? d->routing_key : "", 0);
    printf("routing key:    %s (exchange \"%s\")\n", s ? s : "", d->exchange ? d->exchange : "");
    free(s);
    s = dlx_term_str(m->content_type ? m->content_type : "-", 0);
    printf("content type:   %s\n", s ? s : "");
    free(s);
    dlx_fmt_time(m->timestamp_s > 0 && m->timestamp_s < INT64_MAX / 1000 ? m->timestamp_s * 1000 : 0,
             t, sizeof(t));
    printf("timestamp:      %s\ndelivery mode:  %u%s\n", t, (unsigned)d->delivery_mode,
           d->delivery_mode == 2 ? " (persistent)" : "");
    dlx_fmt_time(in.failed_at_ms, t, sizeof(t));
    s = dlx_term_str(in.last_error, 0);
    printf("failure:        attempts %" PRId64 ", failed at %s, by the %s: %s\n", in.attempts, t,
           in.by_broker ? "broker" : "worker", s && s[0] ? s : "-");
    free(s);
    printf("headers:\n");
    for (i = 0; i < n; i++) {
        const struct hq_hdr *h = hs[i];

        if (!h) {
            size_t k;
            printf("  x-death =\n");
            for (k = 0; k < d->n_xdeath; k++) {
                const struct hq_xdeath *x = &d->xdeath[k];
                dlx_fmt_time(x->time_s > 0 && x->time_s < INT64_MAX / 1000 ? x->time_s * 1000 : 0, t,
                         sizeof(t));
                printf("    - queue %s, reason %s, count %" PRId64 ", time %s\n", x->queue,
                       x->reason, x->count, t);
            }
            continue;
        }
        s = dlx_term_str(h->key, 0);
        if (h->type == HQ_HDR_LONG) {
            if (time_key(h->key) && h->num > 0 && h->num < INT64_MAX / 2) {
                dlx_fmt_time(h->num, t, sizeof(t));
                printf("  %s = %" PRId64 " (%s)\n", s ? s : "", h->num, t);
            } else {
                printf("  %s = %" PRId64 "\n", s ? s : "", h->num);
            }
        } else {
            char *v = dlx_term_str(h->str ? h->str : "", 0);
            printf("  %s = \"%s\"\n", s ? s : "", v ? v : "");
            free(v);
        }
        free(s);
    }
    if (hq_utf8_valid(m->body, m->body_len)) {
        printf("body (%zu bytes, UTF-8):\n", m->body_len);
        if (m->body_len && fwrite(m->body, 1, m->body_len, stdout) != m->body_len)
            return HQ_EIO;
        if (m->body_len && m->body[m->body_len - 1] != '\n')
            printf("\n");
    } else {
        char *enc = malloc(4 * ((m->body_len + 2) / 3) + 1);

        if (!enc)
            return HQ_ENOMEM;
        (void)hq_b64_encode(m->body, m->body_len, enc);
        printf("body (%zu bytes, not UTF-8, base64):\n%s\n", m->body_len, enc);
        free(enc);
    }
    return HQ_OK;
}

static int show_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                      bool *settled)
{
    struct show_ctx *sc = ud;
    const struct hq_hdr **hs;
    size_t n = 0, i;
    int rc;

    (void)c;
    (void)settled;
    if (!d->msg.message_id || strcmp(d->msg.message_id, sc->id) != 0)
        return HQ_OK;
    *stop = true;
    sc->found = true;
    hs = calloc(d->msg.n_headers + 1, sizeof(*hs));
    if (!hs)
        return HQ_ENOMEM;
    for (i = 0; i < d->msg.n_headers; i++)
        hs[n++] = &d->msg.headers[i];
    qsort(hs, n, sizeof(*hs), hdr_cmp);
    if (d->n_xdeath) {
        /* x-death in its sorted place (NULL marks it) */
        size_t at = 0;
        while (at < n && strcmp(hs[at]->key, "x-death") < 0)
            at++;
        memmove(&hs[at + 1], &hs[at], (n - at) * sizeof(*hs));
        hs[at] = NULL;
        n++;
    }
    rc = sc->json ? show_json(sc, d, hs, n) : show_text(sc, d, hs, n);
    free(hs);
    return rc;
}

int dlx_show(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct dlx_dlq q;
    struct show_ctx sc;
    size_t seen = 0;
    bool more = false;
    int rc;

    memset(&sc, 0, sizeof(sc));
    sc.id = o->id;
    sc.json = o->json;
    sc.queue = q.dlq;
    rc = dlx_dlq_read(cfg, o->name, "show", show_visit, &sc, &q, &seen, &more);
    if (rc == HQ_OK && !sc.found) {
        char *s = dlx_term_str(sc.id, 0);
        fprintf(stderr, PROG ": no message with id '%s' in %s (%zu messages searched%s)\n",
                s ? s : "", q.dlq, seen, more ? ", more not searched" : "");
        free(s);
        rc = HQ_EBROKER; /* exit 1 */
    }
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    return rc;
}

/* ---------------------------------------------------------------- redrive */

struct redrive_ctx {
    const struct dlx_opts *o;
    struct hq_lc_emitter *lc; /* "redriven" lifecycle records */
    const char *consumer, *work;
    size_t matched, moved, limit;
    int err; /* the failure that stopped the run */
};

static int redrive_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                         bool *settled)
{
    struct redrive_ctx *rc_ = ud;
    struct hq_dlq_info in;
    char *id, *type;
    int rc;

    if (rc_->matched >= rc_->limit) {
        *stop = true; /* the rest stays where it is */
        return HQ_OK;
    }
    if (!dlx_selected(rc_->o, d))
        return HQ_OK;
    rc_->matched++;
    hq_dlq_info(d, &in);
    id = dlx_term_str(in.id, 0);
    type = dlx_term_str(in.type[0] ? in.type : "-", 0);
    if (rc_->o->dry_run) {
        printf("would redrive %s (%s, attempts %" PRId64 ", redriven %" PRId64 ")\n",
               id ? id : "", type ? type : "", in.attempts, in.redriven);
        rc = HQ_OK;
    } else {
        int64_t at = hq_now_ms();

        rc = hq_dlq_redrive_one_ex(c, rc_->consumer, d, CONFIRM_TIMEOUT_MS, rc_->o->reset_steps);
        if (rc == HQ_OK) {
            *settled = true;
            rc_->moved++;
            hq_dlq_emit_redriven(rc_->lc, rc_->consumer, d, at);
            printf("redriven %s (%s) -> %s\n", id ? id : "", type ? type : "", rc_->work);
        } else {
            fprintf(stderr, PROG ": redriving %s failed (%s): %s; it stays in the DLQ\n",
                    id ? id : "", hq_strerror(rc), hq_consume_error(c));
            rc_->err = rc;
        }
    }
    free(id);
    free(type);
    return rc;
}

int dlx_redrive(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct dlx_dlq q;
    struct redrive_ctx rx;
    size_t seen = 0;
    int rc;

    if ((rc = dlx_dlq_name(cfg, o->name, &q)) != HQ_OK)
        return rc;
    memset(&rx, 0, sizeof(rx));
    rx.o = o;
    rx.consumer = q.cc->name;
    rx.work = q.work;
    rx.limit = o->has_limit ? (size_t)o->limit : SIZE_MAX;
    if ((rc = dlx_dlq_open(cfg, "redrive", true, &q)) != HQ_OK)
        goto out;
    if (!o->dry_run && hq_lc_start(&cfg->broker, "hookmq-dlx redrive (lifecycle)", 4096,
                                   &rx.lc) != HQ_OK)
        rx.lc = NULL; /* lifecycle records are best effort */
    /* only what is there now: events that fail again meanwhile wait for the next run */
    rc = hq_dlq_scan(q.c, q.dlq, q.depth < DLX_SCAN_CAP ? q.depth : DLX_SCAN_CAP, redrive_visit,
                     &rx, &seen, NULL);
    if (rc != HQ_OK)
        goto out;
    if (o->dry_run)
        printf("dry run: would redrive %zu of %zu (nothing changed in %s)\n", rx.matched,
               (size_t)q.depth, q.dlq);
    else
        printf("redriven %zu of %zu (%zu left in %s)\n", rx.moved, (size_t)q.depth,
               (size_t)q.depth - rx.moved, q.dlq);
out:
    if (rc != HQ_OK && rx.moved)
        printf("redriven %zu before the failure\n", rx.moved);
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    dlx_dlq_close(&q);
    hq_lc_stop(rx.lc, 3000);
    if (rc == HQ_EBROKER && rx.err == HQ_EBROKER)
        fprintf(stderr, PROG ": the broker refused the copy (work queue %s full or gone?)\n",
                q.work);
    return rc == HQ_ENOTFOUND && rx.err ? HQ_EBROKER : rc;
}

/* ---------------------------------------------------------------- purge */

int dlx_purge(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct dlx_dlq q;
    uint32_t purged = 0;
    int rc;

    if ((rc = dlx_dlq_name(cfg, o->name, &q)) != HQ_OK)
        return rc;
    if (!o->yes) {
        fprintf(stderr,
                PROG ": purge deletes every message in %s for good; add --yes to do it\n"
                "(save them first with `" PROG " list %s --json`)\n",
                q.dlq, q.cc->name);
        return HQ_EINVAL;
    }
    if ((rc = dlx_dlq_open(cfg, "purge", false, &q)) != HQ_OK)
        goto out;
    rc = hq_amqp_purge(q.c, q.dlq, &purged);
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": purge of %s failed: %s\n", q.dlq, hq_consume_error(q.c));
        rc = rc == HQ_ENOTFOUND ? HQ_ENOTFOUND : HQ_EBROKER;
        goto out;
    }
    printf("purged %u message%s from %s\n", purged, purged == 1 ? "" : "s", q.dlq);
out:
    dlx_dlq_close(&q);
    return rc;
}

/* ---------------------------------------------------------------- edit */

/* The bytes of path ("-": standard input) into b (at most EDIT_BODY_MAX): HQ_OK, HQ_EINVAL
 * (cannot open, too large) or HQ_EIO, after saying which. */
static int read_body(const char *path, struct hq_buf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char chunk[65536];
    size_t n;
    int rc = HQ_OK;

    if (!f) {
        fprintf(stderr, PROG ": edit: %s: %s\n", path, strerror(errno));
        return HQ_EINVAL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if ((rc = hq_buf_append(b, chunk, n)) != HQ_OK) {
            fprintf(stderr, PROG ": edit: %s: larger than 64 MiB\n", path);
            rc = HQ_EINVAL;
            break;
        }
    if (rc == HQ_OK && ferror(f)) {
        fprintf(stderr, PROG ": edit: reading %s failed\n", path);
        rc = HQ_EIO;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

/* Edit and retry one parked event, as the console does (docs/dlq.md, docs/console.md): the
 * first message of hookmq.NAME.dlq with event id ID goes back to hookmq.NAME with the new body
 * and/or headers (hq_dlq_edit: hookmq-edited-from = the original body's SHA-256,
 * hookmq-edited-by = the OS user), confirmed before it leaves the DLQ; a lifecycle record of
 * kind "edit" names the user. */
int dlx_edit(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct dlx_dlq q;
    struct hq_buf body = HQ_BUF_INIT(EDIT_BODY_MAX);
    struct passwd *pw = getpwuid(geteuid());
    struct hq_dlq_edit e;
    struct hq_dlq_edit_outcome x;
    struct hq_lc_emitter *lc = NULL;
    int rc;

    if ((rc = dlx_dlq_name(cfg, o->name, &q)) != HQ_OK)
        return rc;
    if (o->body_file && (rc = read_body(o->body_file, &body)) != HQ_OK)
        goto out;
    if ((rc = dlx_dlq_open(cfg, "edit", true, &q)) != HQ_OK)
        goto out;
    if (hq_lc_start(&cfg->broker, PROG " edit (lifecycle)", 64, &lc) != HQ_OK)
        lc = NULL; /* lifecycle records are best effort */
    memset(&e, 0, sizeof(e));
    e.consumer = q.cc->name;
    e.id = o->id;
    e.body = o->body_file ? body.data : NULL;
    e.body_len = body.len;
    e.keys = (const char *const *)o->keys;
    e.vals = (const char *const *)o->vals;
    e.n_headers = o->n_headers;
    e.user = pw && pw->pw_name && pw->pw_name[0] ? pw->pw_name : "unknown";
    e.lc = lc;
    e.timeout_ms = EDIT_CONFIRM_TIMEOUT_MS;
    rc = hq_dlq_edit(q.c, q.depth < DLX_SCAN_CAP ? q.depth : DLX_SCAN_CAP, &e, &x);
    if (!x.found) {
        char *s = dlx_term_str(o->id, 0);
        fprintf(stderr, PROG ": edit: no message with event id '%s' in %s\n", s ? s : "", q.dlq);
        free(s);
        rc = HQ_EBROKER; /* exit 1, as show */
    } else if (!x.done) {
        fprintf(stderr, PROG ": edit: sending the edited event failed (%s)%s%s; it stays in the "
                        "DLQ\n", hq_strerror(x.err), x.error[0] ? ": " : "", x.error);
        rc = HQ_EBROKER;
    } else if (rc != HQ_OK) {
        rc = HQ_EBROKER; /* sent; putting the others back failed (logged) */
    } else {
        printf("edited %s -> %s (%s)\n", o->id, q.work, x.summary);
    }
out:
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    dlx_dlq_close(&q);
    hq_lc_stop(lc, 3000);
    hq_buf_free(&body);
    return rc;
}
