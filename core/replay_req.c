/* replay_req: a replay asked for in the console, from its JSON request (hq_replay.h,
 * hq_replay_req_parse), checked by the rules of hookmq-replay's command line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "hq_config.h"
#include "hq_json.h"
#include "hq_replay.h"

static int fail(char *err, size_t errsz, const char *msg)
{
    snprintf(err, errsz, "%s", msg);
    return HQ_EINVAL;
}

/* The string member key of the request into *dst (owned). */
static int take_str(json_object *v, const char *key, char **dst, char *err, size_t errsz)
{
    size_t n;

    if (!json_object_is_type(v, json_type_string)) {
        snprintf(err, errsz, "%s must be a string", key);
        return HQ_EINVAL;
    }
    n = (size_t)json_object_get_string_len(v);
    if (n == 0 || n > HQ_REPLAY_ARG_MAX || memchr(json_object_get_string(v), '\0', n)) {
        snprintf(err, errsz, "%s must be 1 to %d bytes without a NUL", key, HQ_REPLAY_ARG_MAX);
        return HQ_EINVAL;
    }
    *dst = strndup(json_object_get_string(v), n);
    return *dst ? HQ_OK : HQ_ENOMEM;
}

static int take_bool(json_object *v, const char *key, bool *dst, char *err, size_t errsz)
{
    if (!json_object_is_type(v, json_type_boolean)) {
        snprintf(err, errsz, "%s must be true or false", key);
        return HQ_EINVAL;
    }
    *dst = json_object_get_boolean(v) != 0;
    return HQ_OK;
}

static int take_rate(json_object *v, double *dst, char *err, size_t errsz)
{
    double r;

    if (json_object_is_type(v, json_type_null)) {
        *dst = 0;
        return HQ_OK;
    }
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return fail(err, errsz, "rate must be a number of events per second (0: unlimited)");
    r = json_object_get_double(v);
    if (!isfinite(r) || r < 0 || r > HQ_REPLAY_RATE_MAX)
        return fail(err, errsz, "rate must be from 0 (unlimited) to 1000000 events per second");
    *dst = r;
    return HQ_OK;
}

/* One member of the request. */
static int member(struct hq_replay_req *r, const char *key, json_object *v, char *err,
                  size_t errsz)
{
    static const char *const names[] = {"consumer", "from", "to", "source", "type", "id", "grep"};
    char **dsts[] = {&r->consumer, &r->from, &r->to, &r->source, &r->type, &r->id, &r->grep};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(key, names[i]) == 0)
            return take_str(v, key, dsts[i], err, errsz);
    if (strcmp(key, "rate") == 0)
        return take_rate(v, &r->o.rate, err, errsz);
    if (strcmp(key, "dry_run") == 0)
        return take_bool(v, key, &r->o.dry_run, err, errsz);
    if (strcmp(key, "ignore_bindings") == 0)
        return take_bool(v, key, &r->o.ignore_bindings, err, errsz);
    if (strcmp(key, "restart") == 0)
        return take_bool(v, key, &r->o.restart, err, errsz);
    snprintf(err, errsz,
             "unknown member \"%.40s\" (consumer, from, to, source, type, id, grep, rate, "
             "dry_run, ignore_bindings, restart)", key);
    return HQ_EINVAL;
}

/* The rules of hookmq-replay's command line, in the request's words. */
static int check(struct hq_replay_req *r, int64_t now_ms, char *err, size_t errsz)
{
    struct hq_replay_opts *o = &r->o;

    if (!r->consumer || !hq_name_valid(r->consumer))
        return fail(err, errsz, "consumer: give the target consumer's name ([a-z0-9_-]{1,64})");
    if (r->source && !hq_name_valid(r->source))
        return fail(err, errsz, "source: not a source name ([a-z0-9_-]{1,64})");
    if ((r->from && hq_replay_set_time(o, false, r->from, now_ms) != HQ_OK) ||
        (r->to && hq_replay_set_time(o, true, r->to, now_ms) != HQ_OK))
        return fail(err, errsz, "from/to: not a time (RFC 3339 like 2026-11-29T10:00:00Z, or "
                                "relative like -2h, -15m, -7d, now)");
    if (!r->from && !r->id)
        return fail(err, errsz, "refusing an unbounded replay: give from (and usually to), or "
                                "id for one event");
    if (r->from && r->to && o->from_ms >= o->to_ms)
        return fail(err, errsz, "from must be before to");
    o->target = HQ_REPLAY_TARGET_CONSUMER;
    o->consumer = r->consumer;
    o->source = r->source;
    o->type_glob = r->type;
    o->id = r->id;
    o->grep = r->grep;
    return HQ_OK;
}

int hq_replay_req_parse(const char *json, size_t n, int64_t now_ms, struct hq_replay_req *out,
                        char *err, size_t errsz)
{
    json_object *o = NULL;
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    hq_replay_opts_init(&out->o);
    if (err && errsz)
        err[0] = '\0';
    if (!json || hq_json_parse_untrusted((const unsigned char *)json, n, 4, (void **)&o) != HQ_OK)
        o = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        rc = fail(err, errsz, "the body must be a JSON object {\"consumer\", \"from\", ...}");
        goto out;
    }
    {
        json_object_object_foreach(o, key, val)
        {
            if ((rc = member(out, key, val, err, errsz)) != HQ_OK)
                goto out;
        }
    }
    rc = check(out, now_ms, err, errsz);
out:
    json_object_put(o);
    if (rc != HQ_OK)
        hq_replay_req_free(out);
    return rc;
}

void hq_replay_req_free(struct hq_replay_req *r)
{
    if (!r)
        return;
    free(r->consumer);
    free(r->from);
    free(r->to);
    free(r->source);
    free(r->type);
    free(r->id);
    free(r->grep);
    memset(r, 0, sizeof(*r));
}
