/* replay_args: hookmq-replay's command line (replay_args.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_config.h"
#include "hq_time.h"
#include "replay_args.h"

static void set_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errsz)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* A positive decimal number (no sign, exponent, hex or inf/nan). */
static bool parse_rate(const char *s, double *out)
{
    char *end = NULL;
    const char *p;
    double v;
    bool digit = false, dot = false;

    for (p = s; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digit = true;
        else if (*p == '.' && !dot)
            dot = true;
        else
            return false;
    }
    if (!digit)
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno || !end || *end || !(v > 0) || v > HQ_REPLAY_RATE_MAX)
        return false;
    *out = v;
    return true;
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *end = NULL;
    long v;

    if (!s[0] || s[0] == '-' || s[0] == '+' || s[0] == ' ')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || !end || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

enum opt_id {
    O_CONFIG, O_FROM, O_TO, O_SOURCE, O_TYPE, O_ID, O_GREP, O_TO_CONSUMER, O_TO_EXCHANGE,
    O_IGNORE_BINDINGS, O_RATE, O_WINDOW, O_DRY_RUN, O_RESTART, O_QUIET, O_NO_LIFECYCLE,
    O_CKPT_DIR, O_HELP, O_VERSION, O__COUNT
};

struct opt_def {
    const char *lng;  /* "--from" */
    const char *shrt; /* "-c" or NULL */
    bool arg;
    enum opt_id id;
};

static const struct opt_def opt_defs[] = {
    {"--config", "-c", true, O_CONFIG},
    {"--from", NULL, true, O_FROM},
    {"--to", NULL, true, O_TO},
    {"--source", NULL, true, O_SOURCE},
    {"--type", NULL, true, O_TYPE},
    {"--id", NULL, true, O_ID},
    {"--grep", NULL, true, O_GREP},
    {"--to-consumer", NULL, true, O_TO_CONSUMER},
    {"--to-exchange", NULL, false, O_TO_EXCHANGE},
    {"--ignore-bindings", NULL, false, O_IGNORE_BINDINGS},
    {"--rate", NULL, true, O_RATE},
    {"--window", NULL, true, O_WINDOW},
    {"--dry-run", NULL, false, O_DRY_RUN},
    {"--restart", NULL, false, O_RESTART},
    {"--quiet", "-q", false, O_QUIET},
    {"--no-lifecycle", NULL, false, O_NO_LIFECYCLE},
    {"--checkpoint-dir", NULL, true, O_CKPT_DIR},
    {"--help", "-h", false, O_HELP},
    {"--version", "-V", false, O_VERSION},
};

static const struct opt_def *find_opt(const char *a, const char **inline_val)
{
    size_t i;

    *inline_val = NULL;
    for (i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
        const struct opt_def *d = &opt_defs[i];
        size_t n = strlen(d->lng);

        if (strcmp(a, d->lng) == 0 || (d->shrt && strcmp(a, d->shrt) == 0))
            return d;
        if (d->arg && strncmp(a, d->lng, n) == 0 && a[n] == '=') {
            *inline_val = a + n + 1;
            return d;
        }
    }
    return NULL;
}

int hq_replay_parse_args(int argc, char **argv, int64_t now_ms, struct hq_replay_opts *o,
                         char *err, size_t errsz)
{
    bool seen[O__COUNT] = {false};
    int i;

    if (!o)
        return HQ_EINVAL;
    hq_replay_opts_init(o);
    if (err && errsz)
        err[0] = '\0';
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const struct opt_def *d = find_opt(a, &val);

        if (!d) {
            if (a[0] == '-' && a[1])
                set_err(err, errsz, "unknown option %s", a);
            else
                set_err(err, errsz, "unexpected argument '%.200s'", a);
            return HQ_EINVAL;
        }
        if (d->id == O_HELP) {
            o->help = true;
            return HQ_OK;
        }
        if (d->id == O_VERSION) {
            o->version = true;
            return HQ_OK;
        }
        if (seen[d->id]) {
            set_err(err, errsz, "%s given more than once", d->lng);
            return HQ_EINVAL;
        }
        seen[d->id] = true;
        if (d->arg && !val) {
            if (i + 1 >= argc) {
                set_err(err, errsz, "%s needs a value", d->lng);
                return HQ_EINVAL;
            }
            val = argv[++i];
        }
        if (d->arg) {
            if (!val[0]) {
                set_err(err, errsz, "%s: empty value", d->lng);
                return HQ_EINVAL;
            }
            if (strlen(val) > HQ_REPLAY_ARG_MAX) {
                set_err(err, errsz, "%s: value longer than 4096 bytes", d->lng);
                return HQ_EINVAL;
            }
        }
        switch (d->id) {
        case O_CONFIG: o->config = val; break;
        case O_FROM:
        case O_TO: {
            if (hq_replay_set_time(o, d->id == O_TO, val, now_ms) != HQ_OK) {
                set_err(err, errsz,
                        "%s: '%.100s' is not a time (RFC 3339 like 2026-11-29T10:00:00Z, or "
                        "relative like -2h, -15m, -7d, now)",
                        d->lng, val);
                return HQ_EINVAL;
            }
            break;
        }
        case O_SOURCE:
            if (!hq_name_valid(val)) {
                set_err(err, errsz, "--source: '%.100s' is not a source name ([a-z0-9_-]{1,64})",
                        val);
                return HQ_EINVAL;
            }
            o->source = val;
            break;
        case O_TYPE: o->type_glob = val; break;
        case O_ID: o->id = val; break;
        case O_GREP: o->grep = val; break;
        case O_TO_CONSUMER:
            if (!hq_name_valid(val)) {
                set_err(err, errsz,
                        "--to-consumer: '%.100s' is not a consumer name ([a-z0-9_-]{1,64})", val);
                return HQ_EINVAL;
            }
            o->consumer = val;
            break;
        case O_TO_EXCHANGE: break;
        case O_IGNORE_BINDINGS: o->ignore_bindings = true; break;
        case O_RATE:
            if (!parse_rate(val, &o->rate)) {
                set_err(err, errsz, "--rate: '%.100s' is not a number of events per second "
                                    "(> 0, <= 1000000)", val);
                return HQ_EINVAL;
            }
            break;
        case O_WINDOW:
            if (!parse_int(val, 1, HQ_REPLAY_WINDOW_MAX, &o->window)) {
                set_err(err, errsz, "--window: '%.100s' is not a number from 1 to 4096", val);
                return HQ_EINVAL;
            }
            break;
        case O_DRY_RUN: o->dry_run = true; break;
        case O_RESTART: o->restart = true; break;
        case O_QUIET: o->quiet = true; break;
        case O_NO_LIFECYCLE: o->no_lifecycle = true; break;
        case O_CKPT_DIR: o->checkpoint_dir = val; break;
        default: break;
        }
    }
    if (seen[O_TO_CONSUMER] && seen[O_TO_EXCHANGE]) {
        set_err(err, errsz, "give one target: --to-consumer NAME or --to-exchange, not both");
        return HQ_EINVAL;
    }
    if (!seen[O_TO_CONSUMER] && !seen[O_TO_EXCHANGE]) {
        set_err(err, errsz, "a target is required: --to-consumer NAME or --to-exchange");
        return HQ_EINVAL;
    }
    o->target = seen[O_TO_CONSUMER] ? HQ_REPLAY_TARGET_CONSUMER : HQ_REPLAY_TARGET_EXCHANGE;
    if (o->ignore_bindings && o->target != HQ_REPLAY_TARGET_CONSUMER) {
        set_err(err, errsz, "--ignore-bindings applies only to --to-consumer");
        return HQ_EINVAL;
    }
    if (!o->from_text && !o->id) {
        set_err(err, errsz,
                "refusing an unbounded replay: give --from TIME (and usually --to TIME), or --id "
                "ID for one event");
        return HQ_EINVAL;
    }
    if (o->from_text && o->to_text && o->from_ms >= o->to_ms) {
        set_err(err, errsz, "--from (%.100s) must be before --to (%.100s)", o->from_text,
                o->to_text);
        return HQ_EINVAL;
    }
    return HQ_OK;
}
