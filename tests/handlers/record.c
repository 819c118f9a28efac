/* Test plugin "record": appends "<consumer> <id> <attempt>\n" to the file named by option
 * file (O_APPEND, one write, fsync), with option stamp = 1 "<consumer> <id> <attempt> <ms>\n"
 * where ms is the wall clock (Unix ms) when the handler was called, then answers:
 *   - RETRY while attempt < fail_until (option, default 0 = never), else
 *   - the verdict named by option verdict: ack (default) | retry | reject.
 * A failed append is a RETRY. */
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

#include "tp.h"

struct st {
    char *file;
    long long fail_until;
    bool stamp;
    enum hq_verdict verdict;
};

static void fini(void *state)
{
    struct st *s = state;

    if (s) {
        free(s->file);
        free(s);
    }
}

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    struct st *s = calloc(1, sizeof(*s));
    const char *file = tp_opt(opts, n, "file"), *v = tp_opt(opts, n, "verdict");

    if (!s)
        return -1;
    if (!file || !*file) {
        api->log(HQ_HLOG_ERROR, "record: option file is required");
        goto fail;
    }
    if (!(s->file = strdup(file)))
        goto fail;
    s->fail_until = tp_opt_num(opts, n, "fail_until", 0);
    s->stamp = tp_opt_num(opts, n, "stamp", 0) == 1;
    if (s->fail_until < 0) {
        api->log(HQ_HLOG_ERROR, "record: option fail_until: expected a number");
        goto fail;
    }
    if (!v || strcmp(v, "ack") == 0) {
        s->verdict = HQ_VERDICT_ACK;
    } else if (strcmp(v, "retry") == 0) {
        s->verdict = HQ_VERDICT_RETRY;
    } else if (strcmp(v, "reject") == 0) {
        s->verdict = HQ_VERDICT_REJECT;
    } else {
        api->log(HQ_HLOG_ERROR, "record: option verdict: expected ack, retry or reject");
        goto fail;
    }
    *state = s;
    return 0;
fail:
    fini(s);
    return -1;
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    const struct st *s = state;
    char line[1024];
    int len, fd;
    ssize_t w;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    if (s->stamp)
        len = snprintf(line, sizeof(line), "%s %s %u %lld\n", ev->consumer ? ev->consumer : "-",
                       ev->id ? ev->id : "-", (unsigned)ev->attempt,
                       (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    else
        len = snprintf(line, sizeof(line), "%s %s %u\n", ev->consumer ? ev->consumer : "-",
                       ev->id ? ev->id : "-", (unsigned)ev->attempt);
    if (len < 0 || (size_t)len >= sizeof(line)) {
        snprintf(err->message, sizeof(err->message), "record: line too long");
        return HQ_VERDICT_REJECT;
    }
    fd = open(s->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err->message, sizeof(err->message), "record: open %s: %s", s->file,
                 strerror(errno));
        return HQ_VERDICT_RETRY;
    }
    w = write(fd, line, (size_t)len);
    if (w != len || fsync(fd) != 0) {
        snprintf(err->message, sizeof(err->message), "record: write %s failed", s->file);
        close(fd);
        return HQ_VERDICT_RETRY;
    }
    close(fd);
    if ((long long)ev->attempt < s->fail_until) {
        snprintf(err->message, sizeof(err->message), "record: attempt %u < fail_until %lld",
                 (unsigned)ev->attempt, s->fail_until);
        return HQ_VERDICT_RETRY;
    }
    if (s->verdict != HQ_VERDICT_ACK)
        snprintf(err->message, sizeof(err->message), "record: verdict %s",
                 s->verdict == HQ_VERDICT_RETRY ? "retry" : "reject");
    return s->verdict;
}

TP_HANDLER("record", init, handle, fini)
