/* scan: reading and selecting parked messages for the subcommands of hookmq-dlx (dlx.h): a
 * consumer's DLQ opened on a connection, the redrive selection, the oldest message of a DLQ,
 * and the formatting of what was read for a terminal.
 *
 * Reading a DLQ never consumes or reorders it (hq_dlq_scan): every message is fetched with
 * basic.get without an ack and then returned with one basic.nack (requeue) each, oldest
 * first. */
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlx.h"
#include "hq_dlq.h"
#include "hq_time.h"

#define CONNECT_TIMEOUT_MS 10000

/* ---------------------------------------------------------------- a consumer's DLQ */

int dlx_dlq_name(const struct hq_config *cfg, const char *name, struct dlx_dlq *q)
{
    size_t i;

    memset(q, 0, sizeof(*q));
    q->cc = hq_config_consumer(cfg, name);
    if (!q->cc) {
        fprintf(stderr, PROG ": unknown consumer '%s': no consumer of that name in %s "
                        "(configured: ", name, cfg->path ? cfg->path : "the config");
        if (cfg->n_consumers == 0)
            fprintf(stderr, "none");
        for (i = 0; i < cfg->n_consumers; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", cfg->consumers[i].name);
        fprintf(stderr, ")\nNAME is a consumer name, not a queue name.\n");
        return HQ_EINVAL;
    }
    if (hq_dlq_queue(q->cc->name, q->dlq, sizeof(q->dlq)) != HQ_OK ||
        hq_dlq_work_queue(q->cc->name, q->work, sizeof(q->work)) != HQ_OK) {
        fprintf(stderr, PROG ": consumer name '%s' too long for a queue name\n", q->cc->name);
        return HQ_EINVAL;
    }
    return HQ_OK;
}

int dlx_connect(const struct hq_config *cfg, const char *what, struct hq_amqp **c)
{
    char err[512], name[64];
    size_t start = 0;
    int rc;

    snprintf(name, sizeof(name), PROG " %s", what);
    rc = hq_amqp_connect_quiet(&cfg->broker, name, CONNECT_TIMEOUT_MS, &start, c, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": cannot connect to the broker: %s\n", err[0] ? err : hq_strerror(rc));
        return rc == HQ_EINVAL ? HQ_ECONFIG : rc == HQ_ENOTFOUND ? HQ_EDOWN : rc;
    }
    return HQ_OK;
}

void dlx_disconnect(struct hq_amqp *c)
{
    if (!c)
        return;
    hq_consume_detach(c);
    hq_amqp_close(c);
}

/* queue exists? HQ_OK (with its ready messages, messages may be NULL), or HQ_ENOTFOUND after
 * saying so (the connection must then not be used for get/consume any more), or the broker's
 * refusal (e.g. a missing permission) after saying so. */
static int need_queue(struct hq_amqp *c, const char *queue, uint32_t *messages)
{
    int rc = hq_amqp_queue_exists(c, queue, messages, NULL);

    if (rc == HQ_ENOTFOUND)
        fprintf(stderr, PROG ": queue '%s' does not exist (run `" PROG " apply`)\n", queue);
    else if (rc != HQ_OK)
        fprintf(stderr, PROG ": cannot check queue '%s': %s\n", queue, hq_amqp_error(c));
    return rc;
}

int dlx_dlq_open(const struct hq_config *cfg, const char *what, bool work, struct dlx_dlq *q)
{
    int rc;

    if ((rc = dlx_connect(cfg, what, &q->c)) != HQ_OK)
        return rc;
    if ((rc = need_queue(q->c, q->dlq, &q->depth)) != HQ_OK)
        return rc;
    return work ? need_queue(q->c, q->work, NULL) : HQ_OK;
}

void dlx_dlq_close(struct dlx_dlq *q)
{
    dlx_disconnect(q->c);
    q->c = NULL;
}

int dlx_dlq_read(const struct hq_config *cfg, const char *name, const char *what,
                 hq_dlq_visit_fn fn, void *ud, struct dlx_dlq *q, size_t *seen, bool *more)
{
    int rc = dlx_dlq_name(cfg, name, q);

    *seen = 0;
    if (rc == HQ_OK && (rc = dlx_dlq_open(cfg, what, false, q)) == HQ_OK)
        rc = hq_dlq_scan(q->c, q->dlq, DLX_SCAN_CAP, fn, ud, seen, more);
    dlx_dlq_close(q);
    return rc;
}

/* ---------------------------------------------------------------- selecting */

bool dlx_selected(const struct dlx_opts *o, const struct hq_delivery *d)
{
    const struct hq_hdr *h;

    if (o->all)
        return true;
    if (o->id)
        return d->msg.message_id && strcmp(d->msg.message_id, o->id) == 0;
    h = hq_msg_header(&d->msg, "hookmq-event-type");
    return h && h->type == HQ_HDR_STR && h->str && o->type && fnmatch(o->type, h->str, 0) == 0;
}

struct oldest_ctx {
    int64_t min_ms; /* earliest failure time seen, 0 = none */
};

static int oldest_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                        bool *settled)
{
    struct oldest_ctx *oc = ud;
    struct hq_dlq_info in;

    (void)c;
    (void)stop;
    (void)settled;
    hq_dlq_info(d, &in);
    if (in.failed_at_ms > 0 && (oc->min_ms == 0 || in.failed_at_ms < oc->min_ms))
        oc->min_ms = in.failed_at_ms;
    return HQ_OK;
}

int dlx_oldest(struct hq_amqp *c, const char *dlq, int64_t *min_ms, size_t *seen)
{
    struct oldest_ctx oc = {0};
    int rc = hq_dlq_scan(c, dlq, DLX_SCAN_CAP, oldest_visit, &oc, seen, NULL);

    *min_ms = oc.min_ms;
    return rc;
}

/* ---------------------------------------------------------------- formatting */

char *dlx_term_str(const char *s, size_t max)
{
    size_t n = strlen(s), i, o = 0, cps = 0;
    char *out = malloc(n + 4);

    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if ((ch & 0xC0) != 0x80) {
            if (max && cps == max) {
                memcpy(out + o, "...", 3);
                o += 3;
                break;
            }
            cps++;
        }
        out[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    out[o] = '\0';
    return out;
}

size_t dlx_cp_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

void dlx_fmt_time(int64_t ms, char *out, size_t outsz)
{
    if (ms <= 0)
        snprintf(out, outsz, "-");
    else
        hq_time_format(ms, out, outsz);
}

void dlx_fmt_age(int64_t ms, char *out, size_t outsz)
{
    int64_t s = ms > 0 ? ms / 1000 : 0;

    if (s >= 86400)
        snprintf(out, outsz, "%" PRId64 "d%" PRId64 "h", s / 86400, (s % 86400) / 3600);
    else if (s >= 3600)
        snprintf(out, outsz, "%" PRId64 "h%" PRId64 "m", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(out, outsz, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else
        snprintf(out, outsz, "%" PRId64 "s", s);
}
