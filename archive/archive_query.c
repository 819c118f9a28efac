/* archive_query: `hookmq-archive query | history ID | stats` over the archive directory
 * (hq_archive_scan / hq_archive_stats). Output goes to stdout; warnings (torn lines) and
 * --verbose counters to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_time.h"

/* ------------------------------------------------------------------ shared */

static int check_dir(const char *dir)
{
    struct stat st;

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, AR_PROG ": archive directory %s: %s\n", dir,
                errno ? strerror(errno) : "not a directory");
        return HQ_EIO;
    }
    return HQ_OK;
}

static int parse_time(const char *opt, const char *s, int64_t now, int64_t *out)
{
    if (hq_time_parse(s, now, out) != HQ_OK) {
        fprintf(stderr,
                AR_PROG ": %s: expected RFC 3339 (2026-11-29T10:00:00Z) or a relative time "
                        "(-2h, -15m, -7d), got '%s'\n",
                opt, s);
        return HQ_EINVAL;
    }
    return HQ_OK;
}

/* Filters from the command line. HQ_EINVAL after printing why. */
static int make_filter(const struct ar_args *a, struct hq_afilter *f)
{
    int64_t now = hq_now_ms();

    hq_afilter_init(f);
    if (a->from && parse_time("--from", a->from, now, &f->from_ms) != HQ_OK)
        return HQ_EINVAL;
    if (a->to && parse_time("--to", a->to, now, &f->to_ms) != HQ_OK)
        return HQ_EINVAL;
    if (f->from_ms > f->to_ms) {
        fprintf(stderr, AR_PROG ": --from is after --to\n");
        return HQ_EINVAL;
    }
    f->source = a->source;
    f->type_glob = a->type;
    f->id = a->id;
    f->grep = a->grep;
    if (!a->kind || strcmp(a->kind, "event") == 0)
        f->kinds = 1u << HQ_AREC_EVENT;
    else if (strcmp(a->kind, "lifecycle") == 0)
        f->kinds = 1u << HQ_AREC_LIFECYCLE;
    else if (strcmp(a->kind, "trace") == 0)
        f->kinds = 1u << HQ_AREC_TRACE;
    else
        f->kinds = (1u << HQ_AREC_EVENT) | (1u << HQ_AREC_LIFECYCLE) | (1u << HQ_AREC_TRACE);
    return HQ_OK;
}

static void print_scan_stats(const struct hq_ascan_stats *st)
{
    fprintf(stderr,
            AR_PROG ": segments=%llu indexes_read=%llu segments_opened=%llu frames_read=%llu "
                    "records_read=%llu records_parsed=%llu skipped=%llu\n",
            (unsigned long long)st->segments_total, (unsigned long long)st->indexes_read,
            (unsigned long long)st->segments_opened, (unsigned long long)st->frames_read,
            (unsigned long long)st->records_read, (unsigned long long)st->records_parsed,
            (unsigned long long)st->skipped);
}

/* A display copy of s for a table cell: control bytes -> '?', at most max bytes (on a UTF-8
 * boundary), "" for NULL. */
static void cell(char *out, size_t outsz, const char *s, size_t max)
{
    size_t i = 0, n;

    if (!s)
        s = "";
    n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (n >= outsz)
        n = outsz - 1;
    for (i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[n] = '\0';
}

static const char *kind_name(enum hq_arec_kind k)
{
    return k == HQ_AREC_LIFECYCLE ? "lifecycle" : k == HQ_AREC_TRACE ? "trace" : "event";
}

/* ------------------------------------------------------------------ query */

struct qctx {
    const struct ar_args *a;
    struct hq_aseen *seen;
    uint64_t printed, duplicates;
    int error;
};

static int query_rec(void *arg, const struct hq_arec *r)
{
    struct qctx *q = arg;

    if (r->kind == HQ_AREC_EVENT && r->id[0]) {
        int added = hq_aseen_add(q->seen, r->source, r->id);

        if (added < 0) {
            q->error = added;
            return 1;
        }
        if (!added) {
            q->duplicates++;
            return 0;
        }
    }
    if (q->a->format == AR_FMT_TABLE) {
        char t[40], src[24], type[40], id[256];

        hq_time_format(r->received_at, t, sizeof(t));
        cell(src, sizeof(src), r->source, 20);
        cell(type, sizeof(type), r->kind == HQ_AREC_EVENT ? r->type : kind_name(r->kind), 32);
        if (r->kind == HQ_AREC_LIFECYCLE) {
            char v[24];
            cell(v, sizeof(v), r->type, 22);
            memcpy(type, "lifecycle:", 10);
            memcpy(type + 10, v, strlen(v) + 1);
        }
        cell(id, sizeof(id), r->id, 200);
        printf("%-24s  %-20s  %-32s  %-36s  %10zu\n", t, src, type, id, r->body_len);
    } else {
        fwrite(r->line, 1, r->line_len, stdout);
        putchar('\n');
    }
    q->printed++;
    if (q->a->limit && q->printed >= q->a->limit)
        return 1;
    return 0;
}

int ar_query(const char *dir, const struct ar_args *a)
{
    struct hq_afilter f;
    struct hq_ascan_stats st;
    struct qctx q;
    static char outbuf[1 << 16];
    int rc;

    if (make_filter(a, &f) != HQ_OK)
        return HQ_EXIT_USAGE;
    if (check_dir(dir) != HQ_OK)
        return HQ_EXIT_RUNTIME;
    memset(&q, 0, sizeof(q));
    q.a = a;
    q.seen = hq_aseen_new();
    if (!q.seen)
        return HQ_EXIT_RUNTIME;
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    if (a->format == AR_FMT_TABLE)
        printf("%-24s  %-20s  %-32s  %-36s  %10s\n", "TIME", "SOURCE", "TYPE", "ID", "SIZE");
    rc = hq_archive_scan_ex(dir, &f, query_rec, &q, &st);
    fflush(stdout);
    hq_aseen_free(q.seen);
    if (a->verbose) {
        print_scan_stats(&st);
        fprintf(stderr, AR_PROG ": printed=%llu duplicates_collapsed=%llu\n",
                (unsigned long long)q.printed, (unsigned long long)q.duplicates);
    }
    if (q.error) {
        fprintf(stderr, AR_PROG ": %s\n", hq_strerror(q.error));
        return HQ_EXIT_RUNTIME;
    }
    if (rc < 0) { /* > 0: stopped at --limit */
        fprintf(stderr, AR_PROG ": reading %s: %s\n", dir, hq_strerror(rc));
        return HQ_EXIT_RUNTIME;
    }
    return HQ_EXIT_OK;
}

/* ------------------------------------------------------------------ history */

static void print_timeline(const struct hq_ahist_entry *v, size_t n, const char *id)
{
    size_t i, k;

    for (i = 0; i < n; i = k) {
        const struct hq_ahist_entry *ev = NULL;
        char src[80], idc[300];

        for (k = i; k < n && strcmp(v[k].source, v[i].source) == 0; k++)
            if (!ev && v[k].kind == HQ_AREC_EVENT)
                ev = &v[k];
        cell(src, sizeof(src), v[i].source, 64);
        cell(idc, sizeof(idc), id, 256);
        if (i)
            putchar('\n');
        printf("event %s / %s\n", src, idc);
        if (ev) {
            char type[200], rk[300];

            cell(type, sizeof(type), ev->type, 160);
            cell(rk, sizeof(rk), ev->routing_key, 256);
            printf("  type: %s  routing key: %s  size: %zu bytes  copies in the archive: %u\n",
                   type, rk, ev->body_len, ev->copies);
        } else {
            printf("  (no event record in the archive: received before the oldest segment, or "
                   "not archived)\n");
        }
        printf("timeline:\n");
        for (; i < k; i++) {
            const struct hq_ahist_entry *e = &v[i];
            char t[40], c1[80], c2[1200];

            hq_time_format(e->at, t, sizeof(t));
            if (e->kind == HQ_AREC_EVENT) {
                cell(c1, sizeof(c1), e->type, 64);
                printf("  %-24s  %-16s  %-6s  received (type %s)\n", t, "gateway", "", c1);
                continue;
            }
            cell(c1, sizeof(c1), e->lc.consumer ? e->lc.consumer : "?", 64);
            {
                char attempt[16] = "";

                if (e->lc.attempt)
                    snprintf(attempt, sizeof(attempt), "#%u", e->lc.attempt);
                if (e->lc.verdict && strcmp(e->lc.verdict, "step") == 0) {
                    /* inside its attempt: name and size, never the content */
                    cell(c2, sizeof(c2), e->lc.step ? e->lc.step : "?", 64);
                    printf("  %-24s  %-16s  %-6s    step %s (%lld bytes)\n", t, c1, attempt, c2,
                           (long long)e->lc.size);
                    continue;
                }
                printf("  %-24s  %-16s  %-6s  %s", t, c1, attempt,
                       e->lc.verdict ? e->lc.verdict : e->type);
            }
            if (e->lc.tier) {
                cell(c2, sizeof(c2), e->lc.tier, 32);
                printf(" (tier %s)", c2);
            }
            if (e->lc.by) {
                cell(c2, sizeof(c2), e->lc.by, 64);
                printf(" by %s", c2);
            }
            if (e->lc.error) {
                cell(c2, sizeof(c2), e->lc.error, 1024);
                printf(" error=\"%s\"", c2);
            }
            putchar('\n');
        }
    }
}

int ar_history(const char *dir, const struct ar_args *a)
{
    struct hq_ascan_stats st;
    struct hq_ahistory h;
    size_t i;
    int rc, status = HQ_EXIT_OK;

    if (check_dir(dir) != HQ_OK)
        return HQ_EXIT_RUNTIME;
    rc = hq_archive_history(dir, a->id, a->source, &h, &st);
    if (a->verbose)
        print_scan_stats(&st);
    if (rc != HQ_OK) {
        fprintf(stderr, AR_PROG ": reading %s: %s\n", dir, hq_strerror(rc));
        status = HQ_EXIT_RUNTIME;
        goto out;
    }
    if (h.n == 0) {
        fprintf(stderr, AR_PROG ": no record of event '%s'%s%s in %s\n", a->id,
                a->source ? " from source " : "", a->source ? a->source : "", dir);
        status = HQ_EXIT_RUNTIME;
        goto out;
    }
    if (a->format == AR_FMT_JSON) {
        for (i = 0; i < h.n; i++)
            printf("%s\n", h.v[i].line);
    } else {
        print_timeline(h.v, h.n, a->id);
    }
out:
    hq_ahistory_free(&h);
    return status;
}

/* ------------------------------------------------------------------ stats */

int ar_stats(const char *dir, const struct ar_args *a)
{
    struct hq_afilter f;
    struct hq_ascan_stats st;
    struct hq_astat *rows = NULL;
    uint64_t te = 0, tl = 0;
    size_t n = 0, i;
    int rc;

    if (make_filter(a, &f) != HQ_OK)
        return HQ_EXIT_USAGE;
    if (a->source || a->type || a->id || a->grep || a->kind) {
        fprintf(stderr, AR_PROG ": stats takes only --from and --to\n");
        return HQ_EXIT_USAGE;
    }
    if (check_dir(dir) != HQ_OK)
        return HQ_EXIT_RUNTIME;
    rc = hq_archive_stats(dir, f.from_ms, f.to_ms, &rows, &n, &st);
    if (a->verbose)
        print_scan_stats(&st);
    if (rc != HQ_OK) {
        fprintf(stderr, AR_PROG ": reading %s: %s\n", dir, hq_strerror(rc));
        return HQ_EXIT_RUNTIME;
    }
    if (a->format != AR_FMT_JSON)
        printf("%-17s  %-20s  %10s  %10s\n", "HOUR (UTC)", "SOURCE", "EVENTS", "LIFECYCLE");
    for (i = 0; i < n; i++) {
        char t[40], src[80];

        hq_time_format(rows[i].hour_ms, t, sizeof(t));
        te += rows[i].events;
        tl += rows[i].lifecycle;
        if (a->format == AR_FMT_JSON) {
            cell(src, sizeof(src), rows[i].source, 64);
            printf("{\"hour\":\"%.13s:00:00Z\",\"source\":\"", t);
            {
                const char *p;
                for (p = src; *p; p++) /* source names are [a-z0-9_-]; escape anyway */
                    printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
            }
            printf("\",\"events\":%llu,\"lifecycle\":%llu}\n",
                   (unsigned long long)rows[i].events, (unsigned long long)rows[i].lifecycle);
        } else {
            cell(src, sizeof(src), rows[i].source[0] ? rows[i].source : "-", 20);
            printf("%.13s:00Z  %-20s  %10llu  %10llu\n", t, src,
                   (unsigned long long)rows[i].events, (unsigned long long)rows[i].lifecycle);
        }
    }
    if (a->format != AR_FMT_JSON)
        printf("%-17s  %-20s  %10llu  %10llu\n", "total", "", (unsigned long long)te,
               (unsigned long long)tl);
    hq_astat_free(rows, n);
    return HQ_EXIT_OK;
}
