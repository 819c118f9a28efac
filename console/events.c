/* events: the console's events API over the archive (console.h, docs/console.md).
 *
 * GET /api/events takes the filters of `hookmq-archive query` (source, type, from, to, id,
 * grep) plus limit and cursor, and answers the newest events first:
 *   {"events": [{"id","source","type","routing_key","received_at","received_at_ms","status"}],
 *    "next": CURSOR or null}
 * Order: (received_at, source, id) descending, a total order (duplicates of one source and id
 * are collapsed as query does), so a cursor is the key of the last event shown:
 * "v1.<received_at ms>.<hex source>.<hex id>", and the next page holds the events below it.
 * Without an id filter the archive is read in windows that end at the upper bound and grow
 * (1 h, then 8 times longer each time) until the page is full or the window reaches `from`,
 * so the first page reads only the last hour's segments.
 * Live tail: `after=CURSOR` (the key of the newest event shown, in the cursor's form) answers
 * only the events above that key (newest first, at most `limit`), reading from its time on.
 * The status of each event comes from its lifecycle records (the last verdict per consumer):
 * parked (dead-lettered for some consumer), retrying (a retry is scheduled or it was
 * redriven/replayed and has no outcome yet), processed, else received.
 *
 * GET /api/events/<id>[?source=S] answers the event as archived (properties, headers with the
 * signature headers redacted, body_b64) and its history, as `hookmq-archive history` collects
 * it (hq_archive_history). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console.h"
#include "hq_archive.h"
#include "hq_civetweb.h"
#include "hq_codec.h"
#include "hq_json.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_scheme.h"
#include "hq_time.h"

#define FILTER_MAX 256          /* bytes of one filter value */
#define CURSOR_MAX (16 + 2 * (HQ_NAME_MAX + FILTER_MAX) + 8)
#define LIMIT_DEFAULT 50
#define LIMIT_MAX 500
#define MAX_CONSUMERS_TRACKED 16
#define OUT_MAX (64u << 20)

enum status { ST_RECEIVED = 0, ST_PROCESSED, ST_RETRYING, ST_PARKED };
static const char *const status_names[] = {"received", "processed", "retrying", "parked"};

struct cstate {
    char *consumer;
    int64_t at;
    uint32_t attempt;
    int cause; /* redriven/replayed: a new delivery starts (sorts first within one ms) */
    enum status st;
};

struct pent {
    int64_t at;
    char *source, *id, *type, *rk;
    struct cstate cs[MAX_CONSUMERS_TRACKED];
    size_t ncs;
};

struct params {
    char source[FILTER_MAX + 1], type[FILTER_MAX + 1], id[FILTER_MAX + 1], grep[FILTER_MAX + 1];
    char from[FILTER_MAX + 1], to[FILTER_MAX + 1], cursor[CURSOR_MAX + 1];
    char after[CURSOR_MAX + 1];
    unsigned limit;
    /* the cursor, decoded */
    bool has_cursor;
    int64_t c_at;
    char c_source[HQ_NAME_MAX + FILTER_MAX + 1], c_id[FILTER_MAX + 1];
    /* live tail: only events above this key (after=CURSOR) */
    bool has_after;
    int64_t a_at;
    char a_source[HQ_NAME_MAX + FILTER_MAX + 1], a_id[FILTER_MAX + 1];
};

/* ------------------------------------------------------------------ parameters */

/* Copy query parameter name into buf ("" when absent or empty). false after answering 400. */
static bool param(struct mg_connection *conn, const char *query, const char *name, char *buf,
                  size_t sz)
{
    int n;

    buf[0] = '\0';
    if (!query)
        return true;
    n = mg_get_var(query, strlen(query), name, buf, sz);
    if (n == -1) {
        buf[0] = '\0';
        return true;
    }
    if (n < 0) {
        char msg[128];

        snprintf(msg, sizeof(msg), "filter '%s' is longer than %zu bytes", name, sz - 1);
        cs_send_error(conn, 400, msg);
        return false;
    }
    if (memchr(buf, '\0', (size_t)n) != NULL || strlen(buf) != (size_t)n) {
        cs_send_error(conn, 400, "filters may not hold a NUL byte");
        return false;
    }
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* lower-case hex of exactly the bytes of a string, into out (NUL-terminated) */
static bool unhex(const char *s, size_t n, char *out, size_t outsz)
{
    size_t i;

    if (n % 2 || n / 2 >= outsz)
        return false;
    for (i = 0; i < n; i += 2) {
        int a = hexval((unsigned char)s[i]), b = hexval((unsigned char)s[i + 1]);

        if (a < 0 || b < 0 || (a == 0 && b == 0))
            return false;
        out[i / 2] = (char)(a * 16 + b);
    }
    out[n / 2] = '\0';
    return true;
}

/* "v1.<ms>.<hex source>.<hex id>" into *at, src and id */
static bool parse_cursor(const char *s, int64_t *at_out, char *src, size_t srcsz, char *id,
                         size_t idsz)
{
    const char *d1, *d2;
    char *end;
    long long at;

    if (strncmp(s, "v1.", 3) != 0)
        return false;
    s += 3;
    if (!isdigit((unsigned char)*s))
        return false;
    at = strtoll(s, &end, 10);
    if (*end != '.' || at < 0 || end - s > 18)
        return false;
    d1 = end + 1;
    d2 = strchr(d1, '.');
    if (!d2 || strchr(d2 + 1, '.'))
        return false;
    if (d2 == d1 || !unhex(d1, (size_t)(d2 - d1), src, srcsz) || !d2[1] ||
        !unhex(d2 + 1, strlen(d2 + 1), id, idsz))
        return false;
    *at_out = at;
    return true;
}

static bool get_params(struct mg_connection *conn, const char *q, struct params *p)
{
    char limit[16];
    char *end;
    unsigned long v;

    memset(p, 0, sizeof(*p));
    if (!param(conn, q, "source", p->source, sizeof(p->source)) ||
        !param(conn, q, "type", p->type, sizeof(p->type)) ||
        !param(conn, q, "id", p->id, sizeof(p->id)) ||
        !param(conn, q, "grep", p->grep, sizeof(p->grep)) ||
        !param(conn, q, "from", p->from, sizeof(p->from)) ||
        !param(conn, q, "to", p->to, sizeof(p->to)) ||
        !param(conn, q, "cursor", p->cursor, sizeof(p->cursor)) ||
        !param(conn, q, "after", p->after, sizeof(p->after)) ||
        !param(conn, q, "limit", limit, sizeof(limit)))
        return false;
    p->limit = LIMIT_DEFAULT;
    if (limit[0]) {
        v = strtoul(limit, &end, 10);
        if (!isdigit((unsigned char)limit[0]) || *end || v < 1 || v > LIMIT_MAX) {
            cs_send_error(conn, 400, "limit: a number from 1 to 500");
            return false;
        }
        p->limit = (unsigned)v;
    }
    if (p->cursor[0] && !(p->has_cursor = parse_cursor(p->cursor, &p->c_at, p->c_source,
                                                       sizeof(p->c_source), p->c_id,
                                                       sizeof(p->c_id)))) {
        cs_send_error(conn, 400, "bad cursor: pass the \"next\" value of the previous page "
                                 "unchanged");
        return false;
    }
    if (p->after[0] && !(p->has_after = parse_cursor(p->after, &p->a_at, p->a_source,
                                                     sizeof(p->a_source), p->a_id,
                                                     sizeof(p->a_id)))) {
        cs_send_error(conn, 400, "bad after: the key of an event, in the form of a cursor");
        return false;
    }
    return true;
}

static bool make_filter(struct mg_connection *conn, const struct params *p, struct hq_afilter *f)
{
    int64_t now = hq_now_ms();

    hq_afilter_init(f);
    f->kinds = 1u << HQ_AREC_EVENT;
    if (p->from[0] && hq_time_parse(p->from, now, &f->from_ms) != HQ_OK) {
        cs_send_error(conn, 400, "from: expected RFC 3339 (2026-11-29T10:00:00Z) or a relative "
                                 "time (-2h, -15m, -7d)");
        return false;
    }
    if (p->to[0] && hq_time_parse(p->to, now, &f->to_ms) != HQ_OK) {
        cs_send_error(conn, 400, "to: expected RFC 3339 (2026-11-29T10:00:00Z) or a relative "
                                 "time (-2h, -15m, -7d)");
        return false;
    }
    if (f->from_ms > f->to_ms) {
        cs_send_error(conn, 400, "from is after to");
        return false;
    }
    f->source = p->source[0] ? p->source : NULL;
    f->type_glob = p->type[0] ? p->type : NULL;
    f->id = p->id[0] ? p->id : NULL;
    f->grep = p->grep[0] ? p->grep : NULL;
    return true;
}

/* ------------------------------------------------------------------ the page: a bounded heap */

struct page {
    const struct params *p;
    struct pent **heap; /* min-heap on the key: the oldest of the newest cap */
    size_t n, cap;
    struct hq_aseen *seen;
    int error;
};

static int key_cmp(int64_t at, const char *src, const char *id, const struct pent *e)
{
    int c;

    if (at != e->at)
        return at < e->at ? -1 : 1;
    if ((c = strcmp(src, e->source)) != 0)
        return c;
    return strcmp(id, e->id);
}

static int pent_cmp(const struct pent *a, const struct pent *b)
{
    return key_cmp(a->at, a->source, a->id, b);
}

static void pent_free(struct pent *e)
{
    size_t i;

    if (!e)
        return;
    free(e->source);
    free(e->id);
    free(e->type);
    free(e->rk);
    for (i = 0; i < e->ncs; i++)
        free(e->cs[i].consumer);
    free(e);
}

static void sift_down(struct page *pg, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct pent *t;

        if (l < pg->n && pent_cmp(pg->heap[l], pg->heap[m]) < 0)
            m = l;
        if (r < pg->n && pent_cmp(pg->heap[r], pg->heap[m]) < 0)
            m = r;
        if (m == i)
            return;
        t = pg->heap[i];
        pg->heap[i] = pg->heap[m];
        pg->heap[m] = t;
        i = m;
    }
}

static void sift_up(struct page *pg, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        struct pent *t;

        if (pent_cmp(pg->heap[i], pg->heap[parent]) >= 0)
            return;
        t = pg->heap[i];
        pg->heap[i] = pg->heap[parent];
        pg->heap[parent] = t;
        i = parent;
    }
}

static int page_rec(void *arg, const struct hq_arec *r)
{
    struct page *pg = arg;
    const struct params *p = pg->p;
    struct pent *e;
    int added;

    if (p->has_cursor && key_cmp(r->received_at, r->source, r->id, &(struct pent){
                                     .at = p->c_at, .source = (char *)p->c_source,
                                     .id = (char *)p->c_id}) >= 0)
        return 0;
    if (p->has_after && key_cmp(r->received_at, r->source, r->id, &(struct pent){
                                    .at = p->a_at, .source = (char *)p->a_source,
                                    .id = (char *)p->a_id}) <= 0)
        return 0;
    if (pg->n == pg->cap && key_cmp(r->received_at, r->source, r->id, pg->heap[0]) <= 0)
        return 0;
    added = hq_aseen_add(pg->seen, r->source, r->id);
    if (added < 0) {
        pg->error = added;
        return 1;
    }
    if (!added)
        return 0;
    e = calloc(1, sizeof(*e));
    if (!e || !(e->source = strdup(r->source)) || !(e->id = strdup(r->id)) ||
        !(e->type = strdup(r->type)) || !(e->rk = strdup(r->routing_key))) {
        pent_free(e);
        pg->error = HQ_ENOMEM;
        return 1;
    }
    e->at = r->received_at;
    if (pg->n < pg->cap) {
        pg->heap[pg->n++] = e;
        sift_up(pg, pg->n - 1);
    } else {
        pent_free(pg->heap[0]);
        pg->heap[0] = e;
        sift_down(pg, 0);
    }
    return 0;
}

static void page_reset(struct page *pg)
{
    size_t i;

    for (i = 0; i < pg->n; i++)
        pent_free(pg->heap[i]);
    pg->n = 0;
    hq_aseen_free(pg->seen);
    pg->seen = NULL;
}

/* ------------------------------------------------------------------ status from lifecycle */

static enum status verdict_status(const char *v)
{
    if (!v)
        return ST_RECEIVED;
    if (strcmp(v, "processed") == 0 || strcmp(v, "deduped") == 0)
        return ST_PROCESSED;
    if (strcmp(v, "dead_lettered") == 0)
        return ST_PARKED;
    if (strcmp(v, "retry_scheduled") == 0 || strcmp(v, "redriven") == 0 ||
        strcmp(v, "replayed") == 0)
        return ST_RETRYING;
    return ST_RECEIVED;
}

static bool is_cause(const char *v)
{
    return v && (strcmp(v, "redriven") == 0 || strcmp(v, "replayed") == 0);
}

/* Record a lifecycle outcome on e: it replaces the consumer's state when it is later
 * (time, then attempt, then a cause before its outcome: hq_archive_history's order). */
static void track(struct pent *e, const struct hq_lc_parsed *lc, int64_t at)
{
    const char *consumer = lc->consumer ? lc->consumer : "";
    struct cstate *c = NULL;
    size_t i;

    for (i = 0; i < e->ncs; i++)
        if (strcmp(e->cs[i].consumer, consumer) == 0)
            c = &e->cs[i];
    if (!c) {
        if (e->ncs == MAX_CONSUMERS_TRACKED || !(e->cs[e->ncs].consumer = strdup(consumer)))
            return;
        c = &e->cs[e->ncs++];
    } else if (at < c->at || (at == c->at && (lc->attempt < c->attempt ||
                                              (lc->attempt == c->attempt &&
                                               is_cause(lc->verdict) && !c->cause)))) {
        return;
    }
    c->at = at;
    c->attempt = lc->attempt;
    c->cause = is_cause(lc->verdict);
    c->st = verdict_status(lc->verdict);
}

static enum status pent_status(const struct pent *e)
{
    enum status st = ST_RECEIVED;
    size_t i;

    for (i = 0; i < e->ncs; i++) /* parked > retrying > processed > received */
        if (e->cs[i].st > st)
            st = e->cs[i].st;
    return st;
}

struct lcscan {
    struct pent **v;
    size_t n;
};

static int status_rec(void *arg, const struct hq_arec *r)
{
    struct lcscan *ls = arg;
    struct hq_lc_parsed lc;
    size_t i;

    for (i = 0; i < ls->n; i++) {
        struct pent *e = ls->v[i];

        if (strcmp(e->id, r->id) != 0 || strcmp(e->source, r->source) != 0)
            continue;
        if (hq_lc_parse(r->body, r->body_len, &lc) == HQ_OK) {
            track(e, &lc, lc.at_ms > 0 ? lc.at_ms : r->received_at);
            hq_lc_parsed_free(&lc);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ JSON */

static int json_str(struct hq_buf *b, const char *key, const char *v, bool comma)
{
    int rc = hq_buf_appendf(b, "%s\"%s\":\"", comma ? "," : "", key);

    if (rc == HQ_OK)
        rc = hq_buf_append_json_str(b, v ? v : "", v ? strlen(v) : 0);
    if (rc == HQ_OK)
        rc = hq_buf_append(b, "\"", 1);
    return rc;
}

static int json_time(struct hq_buf *b, const char *key, int64_t ms)
{
    char t[40];

    hq_time_format(ms, t, sizeof(t));
    return hq_buf_appendf(b, ",\"%s\":\"%s\",\"%s_ms\":%lld", key, t, key, (long long)ms);
}

static int cursor_of(struct hq_buf *b, const struct pent *e)
{
    char hex[2 * (FILTER_MAX + HQ_NAME_MAX) + 1];
    size_t ns = strlen(e->source), ni = strlen(e->id);
    int rc;

    if (ns > HQ_NAME_MAX + FILTER_MAX || ni > FILTER_MAX)
        return hq_buf_append(b, "null", 4); /* cannot name it: no next page */
    rc = hq_buf_appendf(b, "\"v1.%lld.", (long long)e->at);
    hq_hex_encode((const unsigned char *)e->source, ns, hex);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(b, "%s.", hex);
    hq_hex_encode((const unsigned char *)e->id, ni, hex);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(b, "%s\"", hex);
    return rc;
}

#define HOUR_MS 3600000LL
#define SPAN_MIN_MS 60000LL
#define SPAN_ALL (41LL * 365 * 86400 * 1000) /* the growth loop's last window */

/* The first window to read back from base for a page of need events: the archive's counts
 * per hour and source (hq_archive_stats over whole hours: the closed segments' indexes, no
 * record read) are summed from base down until they reach need, assuming the events of an
 * hour spread evenly over it; the span back to the newest hour that has events, plus twice
 * the rest (at least a minute), or SPAN_ALL when the archive holds fewer. The counts know the source filter only: when the other filters leave
 * the page short, the loop reads 8 times further back each time. 1 h when they cannot be
 * read. */
static int64_t first_span(const char *dir, const struct hq_afilter *f, int64_t base,
                          int64_t lower, size_t need)
{
    int64_t from = lower == INT64_MIN ? INT64_MIN : lower / HOUR_MS * HOUR_MS - HOUR_MS;
    int64_t to = (base + HOUR_MS - 1) / HOUR_MS * HOUR_MS, span = SPAN_ALL, top = INT64_MIN;
    struct hq_astat *rows = NULL;
    double cum = 0;
    size_t n = 0, i = 0;

    if (base < 0 || hq_archive_stats(dir, from, to, &rows, &n, NULL) != HQ_OK)
        return HOUR_MS;
    for (i = n; i > 0;) {
        int64_t h = rows[i - 1].hour_ms, h_end = h + HOUR_MS < base ? h + HOUR_MS : base;
        double c = 0;

        for (; i > 0 && rows[i - 1].hour_ms == h; i--)
            if (!f->source || strcmp(rows[i - 1].source, f->source) == 0)
                c += (double)rows[i - 1].events;
        if (h_end <= h || c == 0)
            continue;
        if (h + HOUR_MS > base) /* the part of the hour before base */
            c = c * (double)(base - h) / HOUR_MS;
        if (top == INT64_MIN)
            top = h_end;
        if (cum + c >= (double)need) {
            int64_t start = h_end - (int64_t)((double)(h_end - h) * ((double)need - cum) / c);

            /* twice the part that holds events (from the newest hour that has any) */
            span = 2 * (top - start) < SPAN_MIN_MS ? SPAN_MIN_MS : 2 * (top - start);
            span += base - top;
            break;
        }
        cum += c;
    }
    hq_astat_free(rows, n);
    return span;
}

static int sort_desc(const void *a, const void *b)
{
    return -pent_cmp(*(struct pent *const *)a, *(struct pent *const *)b);
}

void cs_api_events(struct mg_connection *conn, const struct hq_config *cfg, const char *query)
{
    struct params p;
    struct hq_afilter f, lf;
    struct page pg;
    struct hq_buf out = HQ_BUF_INIT(OUT_MAX);
    struct lcscan ls;
    int64_t upper, lower, base, open_from, span = 3600 * 1000LL, now = hq_now_ms(),
                                           min_at = INT64_MAX;
    bool planned;
    size_t i, shown;
    int rc = HQ_OK;

    memset(&pg, 0, sizeof(pg));
    if (!get_params(conn, query, &p) || !make_filter(conn, &p, &f))
        return;
    if (p.has_cursor && p.c_at < f.to_ms)
        f.to_ms = p.c_at + 1;
    if (p.has_after && p.a_at > f.from_ms)
        f.from_ms = p.a_at;
    if (f.from_ms >= f.to_ms)
        f.to_ms = f.from_ms; /* an empty window: an empty page */
    pg.p = &p;
    pg.cap = (size_t)p.limit + 1;
    if (!(pg.heap = calloc(pg.cap, sizeof(*pg.heap)))) {
        cs_send_error(conn, 500, "out of memory");
        return;
    }
    upper = f.to_ms;
    lower = f.from_ms;
    base = upper == INT64_MAX ? now : upper;
    /* The current hour's segment is open: it has no index, and counting it would parse all
     * of it. Inside it the windows grow from a minute (the time of a line is checked before
     * it is parsed); past it, the closed hours' counts size the window. */
    open_from = now / HOUR_MS * HOUR_MS;
    planned = f.id || base <= open_from;
    if (!f.id)
        span = planned ? first_span(cfg->archive.dir, &f, base, lower, pg.cap) : SPAN_MIN_MS;
    for (;;) {
        struct hq_afilter w = f;

        if (!f.id && base - span > lower)
            w.from_ms = base - span;
        page_reset(&pg);
        if (!(pg.seen = hq_aseen_new())) {
            rc = HQ_ENOMEM;
            break;
        }
        rc = hq_archive_scan_ex(cfg->archive.dir, &w, page_rec, &pg, NULL);
        if (rc == HQ_OK && pg.error)
            rc = pg.error;
        if (rc != HQ_OK || pg.n == pg.cap || w.from_ms == lower)
            break;
        if (span >= SPAN_ALL)
            break;
        if (!planned && base - 8 * span <= open_from) {
            planned = true;
            span = first_span(cfg->archive.dir, &f, open_from, lower, pg.cap - pg.n);
            span = span >= SPAN_ALL - (base - open_from) ? SPAN_ALL : span + (base - open_from);
        } else {
            span = span >= SPAN_ALL / 8 ? SPAN_ALL : span * 8;
        }
    }
    if (rc != HQ_OK) {
        hq_error("reading the archive failed", "dir=%s error=\"%s\"", cfg->archive.dir,
                 hq_strerror(rc));
        cs_send_error(conn, 500, "reading the archive failed (see the console's log)");
        goto out;
    }
    qsort(pg.heap, pg.n, sizeof(*pg.heap), sort_desc);
    shown = pg.n < p.limit ? pg.n : p.limit;
    for (i = 0; i < shown; i++)
        if (pg.heap[i]->at < min_at)
            min_at = pg.heap[i]->at;
    if (shown) {
        hq_afilter_init(&lf);
        lf.kinds = 1u << HQ_AREC_LIFECYCLE;
        lf.from_ms = min_at > INT64_MIN + HQ_ARCHIVE_SKEW_MS ? min_at - HQ_ARCHIVE_SKEW_MS
                                                              : INT64_MIN;
        lf.source = f.source;
        lf.id = f.id;
        ls.v = pg.heap;
        ls.n = shown;
        rc = hq_archive_scan_ex(cfg->archive.dir, &lf, status_rec, &ls, NULL);
        if (rc != HQ_OK)
            hq_warn("reading lifecycle records failed: statuses may be incomplete",
                    "dir=%s error=\"%s\"", cfg->archive.dir, hq_strerror(rc));
    }
    rc = hq_buf_append(&out, "{\"events\":[", 11);
    for (i = 0; i < shown && rc == HQ_OK; i++) {
        const struct pent *e = pg.heap[i];

        rc = hq_buf_appendf(&out, "%s{", i ? "," : "");
        if (rc == HQ_OK)
            rc = json_str(&out, "id", e->id, false);
        if (rc == HQ_OK)
            rc = json_str(&out, "source", e->source, true);
        if (rc == HQ_OK)
            rc = json_str(&out, "type", e->type, true);
        if (rc == HQ_OK)
            rc = json_str(&out, "routing_key", e->rk, true);
        if (rc == HQ_OK)
            rc = json_time(&out, "received_at", e->at);
        if (rc == HQ_OK)
            rc = json_str(&out, "status", status_names[pent_status(e)], true);
        if (rc == HQ_OK)
            rc = hq_buf_append(&out, "}", 1);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(&out, "],\"next\":", 9);
    if (rc == HQ_OK)
        rc = pg.n > p.limit ? cursor_of(&out, pg.heap[p.limit - 1]) : hq_buf_append(&out, "null", 4);

    if (rc == HQ_OK)
        rc = hq_buf_append(&out, "}\n", 2);
    if (rc != HQ_OK)
        cs_send_error(conn, 500, "answer too large");
    else
        cs_send_json(conn, &out);
out:
    page_reset(&pg);
    free(pg.heap);
    hq_buf_free(&out);
}

/* ------------------------------------------------------------------ one event */

/* Signature headers are shown redacted. The copies of the provider's headers are stored as
 * "http-<name>" (docs/message-format.md). Redacted: the headers the source's scheme signs with
 * (the scheme table's signature_headers, or the source's configured `header`:
 * hq_scheme_signature_header), those of every other scheme too (the event may come from a
 * source no longer in the config), and, as a safety net, every header whose name contains
 * "signature", "hmac", "authorization" or "token". */
static bool redact_header(void *arg, const char *name)
{
    const struct hq_source_cfg *src = arg;
    const char *h = strncasecmp(name, "http-", 5) == 0 ? name + 5 : name;
    char low[160];
    size_t i;
    int s;

    if (src && hq_scheme_signature_header(src->scheme, src->header, h))
        return true;
    for (s = 0; s < HQ_SCHEME__COUNT; s++)
        if (hq_scheme_signature_header((enum hq_scheme)s, NULL, h))
            return true;
    for (i = 0; name[i] && i + 1 < sizeof(low); i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = '\0';
    return strstr(low, "signature") || strstr(low, "hmac") || strstr(low, "authorization") ||
           strstr(low, "token");
}

static int history_json(struct hq_buf *b, const struct hq_ahistory *h, const char *source)
{
    size_t i;
    bool first = true;
    int rc = hq_buf_append(b, "[", 1);

    for (i = 0; i < h->n && rc == HQ_OK; i++) {
        const struct hq_ahist_entry *e = &h->v[i];

        if (strcmp(e->source, source) != 0)
            continue;
        rc = hq_buf_append(b, first ? "{" : ",{", first ? 1 : 2);
        first = false;
        if (rc == HQ_OK)
            rc = json_str(b, "kind", e->kind == HQ_AREC_EVENT ? "received" : "lifecycle", false);
        if (rc == HQ_OK)
            rc = json_time(b, "at", e->at);
        if (rc == HQ_OK && e->kind == HQ_AREC_EVENT)
            rc = json_str(b, "type", e->type, true);
        if (rc == HQ_OK && e->kind != HQ_AREC_EVENT) {
            rc = json_str(b, "consumer", e->lc.consumer ? e->lc.consumer : "", true);
            if (rc == HQ_OK)
                rc = hq_buf_appendf(b, ",\"attempt\":%u", e->lc.attempt);
            if (rc == HQ_OK)
                rc = json_str(b, "verdict", e->lc.verdict ? e->lc.verdict : e->type, true);
            if (rc == HQ_OK && e->lc.tier)
                rc = json_str(b, "tier", e->lc.tier, true);
            if (rc == HQ_OK && e->lc.error)
                rc = json_str(b, "error", e->lc.error, true);
            if (rc == HQ_OK && e->lc.by)
                rc = json_str(b, "by", e->lc.by, true);
        }
        if (rc == HQ_OK)
            rc = hq_buf_append(b, "}", 1);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(b, "]", 1);
    return rc;
}

/* The status from the history of source (the same rule as the list). */
static enum status history_status(const struct hq_ahistory *h, const char *source)
{
    struct pent e;
    enum status st;
    size_t i;

    memset(&e, 0, sizeof(e));
    for (i = 0; i < h->n; i++)
        if (h->v[i].kind == HQ_AREC_LIFECYCLE && h->v[i].lc.verdict &&
            strcmp(h->v[i].source, source) == 0)
            track(&e, &h->v[i].lc, h->v[i].at);
    st = pent_status(&e);
    for (i = 0; i < e.ncs; i++)
        free(e.cs[i].consumer);
    return st;
}

static int event_json(struct hq_buf *b, const struct hq_config *cfg, const struct hq_ahist_entry *ev)
{
    struct hq_arec r;
    char *b64 = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    rc = hq_arec_parse(ev->line, strlen(ev->line), &r);
    if (rc != HQ_OK)
        return rc;
    rc = hq_buf_append(b, "{", 1);
    if (rc == HQ_OK)
        rc = json_str(b, "id", r.id, false);
    if (rc == HQ_OK)
        rc = json_str(b, "source", r.source, true);
    if (rc == HQ_OK)
        rc = json_str(b, "type", r.type, true);
    if (rc == HQ_OK)
        rc = json_str(b, "routing_key", r.routing_key, true);
    if (rc == HQ_OK)
        rc = json_time(b, "received_at", r.received_at);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(b, ",\"copies\":%u,\"size\":%zu,\"properties\":%s,\"headers\":",
                            ev->copies, r.body_len, r.properties_json);
    if (rc == HQ_OK)
        rc = hq_arec_headers_redacted(r.headers_json, redact_header,
                                      (void *)hq_config_source(cfg, r.source), b);
    if (rc == HQ_OK) {
        b64 = malloc(4 * ((r.body_len + 2) / 3) + 1);
        if (!b64)
            rc = HQ_ENOMEM;
    }
    if (rc == HQ_OK) {
        hq_b64_encode(r.body, r.body_len, b64);
        rc = json_str(b, "body_b64", b64, true);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(b, "}", 1);
    free(b64);
    hq_arec_free(&r);
    return rc;
}

void cs_api_event(struct mg_connection *conn, const struct hq_config *cfg, const char *id,
                  const char *query)
{
    char source[FILTER_MAX + 1];
    struct hq_ahistory h;
    struct hq_buf out = HQ_BUF_INIT(OUT_MAX);
    const struct hq_ahist_entry *ev = NULL;
    const char *src = NULL;
    size_t i, nsrc = 0;
    int rc;

    memset(&h, 0, sizeof(h));
    if (strlen(id) > FILTER_MAX) {
        cs_send_error(conn, 400, "event id longer than 256 bytes");
        return;
    }
    if (!param(conn, query, "source", source, sizeof(source)))
        return;
    rc = hq_archive_history(cfg->archive.dir, id, source[0] ? source : NULL, &h, NULL);
    if (rc != HQ_OK) {
        hq_error("reading the archive failed", "dir=%s error=\"%s\"", cfg->archive.dir,
                 hq_strerror(rc));
        cs_send_error(conn, 500, "reading the archive failed (see the console's log)");
        goto out;
    }
    /* the sources that have this id (h is sorted by source) */
    for (i = 0; i < h.n; i++)
        if (i == 0 || strcmp(h.v[i].source, h.v[i - 1].source) != 0) {
            nsrc++;
            if (!src)
                src = h.v[i].source;
        }
    if (nsrc == 0) {
        cs_send_error(conn, 404, "no record of this event in the archive");
        goto out;
    }
    if (nsrc > 1) {
        static const char head[] = "{\"error\":\"this id names events of several sources: "
                                   "add ?source=\",\"sources\":[";

        rc = hq_buf_append(&out, head, sizeof(head) - 1);
        for (i = 0; i < h.n && rc == HQ_OK; i++)
            if (i == 0 || strcmp(h.v[i].source, h.v[i - 1].source) != 0) {
                rc = hq_buf_appendf(&out, "%s\"", i ? "," : "");
                if (rc == HQ_OK)
                    rc = hq_buf_append_json_str(&out, h.v[i].source, strlen(h.v[i].source));
                if (rc == HQ_OK)
                    rc = hq_buf_append(&out, "\"", 1);
            }
        if (rc == HQ_OK)
            rc = hq_buf_append(&out, "]}\n", 3);
        if (rc == HQ_OK)
            cs_send(conn, 409, "application/json", out.data, out.len, NULL);
        else
            cs_send_error(conn, 409, "this id names events of several sources: add ?source=");
        goto out;
    }
    for (i = 0; i < h.n && !ev; i++)
        if (h.v[i].kind == HQ_AREC_EVENT)
            ev = &h.v[i];
    rc = hq_buf_append(&out, "{\"event\":", 9);
    if (rc == HQ_OK)
        rc = ev ? event_json(&out, cfg, ev) : hq_buf_append(&out, "null", 4);
    if (rc == HQ_OK)
        rc = json_str(&out, "status", status_names[history_status(&h, src)], true);
    if (rc == HQ_OK)
        rc = hq_buf_append(&out, ",\"history\":", 11);
    if (rc == HQ_OK)
        rc = history_json(&out, &h, src);
    if (rc == HQ_OK)
        rc = hq_buf_append(&out, "}\n", 2);
    if (rc != HQ_OK)
        cs_send_error(conn, 500, rc == HQ_ETOOBIG ? "answer too large" : "cannot show this event");
    else
        cs_send_json(conn, &out);
out:
    hq_ahistory_free(&h);
    hq_buf_free(&out);
}
