/* users: the RabbitMQ users and permissions of `hookmq-dlx definitions --users`.
 *
 * What each program does on the broker, and so what it needs (RabbitMQ's access-control
 * table: passive declares need no permission; basic.publish needs write on the exchange, the
 * default exchange being named "amq.default" for this purpose; basic.consume, basic.get and
 * queue.purge need read on the queue; queue.declare with arguments needs configure on the
 * queue, write on its dead-letter exchange and read on the queue; queue.bind needs write on
 * the queue and read on the exchange; exchange.declare with an alternate exchange needs
 * configure on it, write on the AE and read on it):
 *
 *   hookmq-gateway            publishes to the events exchange; passive declare at start-up
 *   hookmq-worker-<consumer>  consumes hookmq.<consumer>; republishes to its retry tiers and
 *                             DLQ through the default exchange; lifecycle records to
 *                             hookmq.lifecycle; with redrive, reads hookmq.<consumer>.dlq
 *   hookmq-archive            consumes hookmq.archive
 *   hookmq-replay             publishes to the events exchange or, for --to-consumer, the
 *                             default exchange; lifecycle records
 *   hookmq-dlx                the operator: apply declares and binds everything; status
 *                             re-declares with arguments (configure); list/show/redrive/purge
 *                             read the DLQs and republish through the default exchange
 *
 * Writing to the default exchange reaches any queue of the vhost by name: RabbitMQ cannot
 * narrow that by routing key (topic permissions apply to topic exchanges only). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_json.h"
#include "hq_lifecycle.h"
#include "hq_topology.h"
#include "users.h"

#define PROG "hookmq-dlx"
#define LINE_MAX_LEN 1024
#define RX_MAX 1024

struct pw {
    char *user, *password;
};

struct pwlist {
    struct pw *v;
    size_t n;
};

static void pw_free(struct pwlist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (l->v[i].password)
            memset(l->v[i].password, 0, strlen(l->v[i].password));
        free(l->v[i].user);
        free(l->v[i].password);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int pw_load(const char *path, struct pwlist *l)
{
    FILE *f = fopen(path, "r");
    char line[LINE_MAX_LEN + 2];
    int lineno = 0, rc = HQ_OK;

    if (!f) {
        fprintf(stderr, "%s:0: cannot open: %s\n", path, strerror(errno));
        return HQ_ECONFIG;
    }
    while (fgets(line, sizeof(line), f)) {
        size_t n = strlen(line);
        char *colon;
        struct pw *nv;

        lineno++;
        if (n > LINE_MAX_LEN) {
            fprintf(stderr, "%s:%d: line too long\n", path, lineno);
            rc = HQ_ECONFIG;
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        colon = strchr(line, ':');
        if (!colon || colon == line || colon[1] == '\0') {
            fprintf(stderr, "%s:%d: expected user:password\n", path, lineno);
            rc = HQ_ECONFIG;
            break;
        }
        *colon = '\0';
        nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
        if (!nv) {
            rc = HQ_ENOMEM;
            break;
        }
        l->v = nv;
        l->v[l->n].user = strdup(line);
        l->v[l->n].password = strdup(colon + 1);
        l->n++;
        memset(line, 0, sizeof(line));
        if (!l->v[l->n - 1].user || !l->v[l->n - 1].password) {
            rc = HQ_ENOMEM;
            break;
        }
    }
    memset(line, 0, sizeof(line));
    fclose(f);
    return rc;
}

static const char *pw_find(const struct pwlist *l, const char *user)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i].user, user) == 0)
            return l->v[i].password;
    return NULL;
}

void hq_dlx_worker_user(const char *consumer, char *out, size_t outsz)
{
    snprintf(out, outsz, "hookmq-worker-%s", consumer);
}

/* Append name to out as a regular expression matching it literally. */
static int rx_lit(char *out, size_t outsz, size_t *o, const char *name)
{
    for (; *name; name++) {
        if (strchr(".^$*+?()[]{}|\\/", *name)) {
            if (*o + 1 >= outsz)
                return HQ_ETOOBIG;
            out[(*o)++] = '\\';
        }
        if (*o + 1 >= outsz)
            return HQ_ETOOBIG;
        out[(*o)++] = *name;
    }
    out[*o] = '\0';
    return HQ_OK;
}

static int rx_raw(char *out, size_t outsz, size_t *o, const char *s)
{
    size_t n = strlen(s);

    if (*o + n >= outsz)
        return HQ_ETOOBIG;
    memcpy(out + *o, s, n + 1);
    *o += n;
    return HQ_OK;
}

/* "^(a|b|c)$" for literal names (NULL-terminated list), "^a$" for one, "^$" for none. */
static int rx_names(char *out, size_t outsz, const char *const *names)
{
    size_t o = 0, i, n = 0;
    int rc;

    while (names[n])
        n++;
    if ((rc = rx_raw(out, outsz, &o, n > 1 ? "^(" : "^")) != HQ_OK)
        return rc;
    for (i = 0; i < n; i++) {
        if (i > 0 && (rc = rx_raw(out, outsz, &o, "|")) != HQ_OK)
            return rc;
        if ((rc = rx_lit(out, outsz, &o, names[i])) != HQ_OK)
            return rc;
    }
    return rx_raw(out, outsz, &o, n > 1 ? ")$" : "$");
}

/* Every hookmq object, plus the events exchange when it is not named hookmq.*. */
static int rx_hookmq(char *out, size_t outsz, const char *exchange, bool default_exchange)
{
    size_t o = 0;
    int rc = rx_raw(out, outsz, &o, "^(hookmq\\..*");

    if (rc == HQ_OK && strncmp(exchange, "hookmq.", 7) != 0) {
        rc = rx_raw(out, outsz, &o, "|");
        if (rc == HQ_OK)
            rc = rx_lit(out, outsz, &o, exchange);
    }
    if (rc == HQ_OK && default_exchange)
        rc = rx_raw(out, outsz, &o, "|amq\\.default");
    if (rc == HQ_OK)
        rc = rx_raw(out, outsz, &o, ")$");
    return rc;
}

/* Append a string literal. */
#define lit(b, s) hq_buf_append((b), (s), sizeof(s) - 1)

/* One member of an object: sep, "key": and v as a JSON string. */
static int member(struct hq_buf *b, const char *sep, const char *key, const char *v)
{
    int rc = hq_buf_appendf(b, "%s\"%s\": ", sep, key);

    return rc == HQ_OK ? hq_json_str(b, v, strlen(v)) : rc;
}

struct user {
    char name[HQ_NAME_MAX + 32];
    char configure[RX_MAX], write[RX_MAX], read[RX_MAX];
};

static int emit(struct hq_buf *out, const struct user *u, size_t n, const char *vhost,
                const struct pwlist *pw, size_t *nopw)
{
    size_t i;
    int rc = lit(out, "{\n  \"users\": [\n");

    for (i = 0; rc == HQ_OK && i < n; i++) {
        const char *p = pw_find(pw, u[i].name);
        rc = member(out, "    {", "name", u[i].name);
        if (rc == HQ_OK && p)
            rc = member(out, ", ", "password", p);
        if (!p)
            (*nopw)++;
        if (rc == HQ_OK)
            rc = hq_buf_appendf(out, ", \"tags\": \"\"}%s\n", i + 1 < n ? "," : "");
    }
    if (rc == HQ_OK)
        rc = lit(out, "  ],\n  \"permissions\": [\n");
    for (i = 0; rc == HQ_OK && i < n; i++) {
        rc = member(out, "    {", "user", u[i].name);
        if (rc == HQ_OK)
            rc = member(out, ", ", "vhost", vhost);
        if (rc == HQ_OK)
            rc = member(out, ", ", "configure", u[i].configure);
        if (rc == HQ_OK)
            rc = member(out, ", ", "write", u[i].write);
        if (rc == HQ_OK)
            rc = member(out, ", ", "read", u[i].read);
        if (rc == HQ_OK)
            rc = hq_buf_appendf(out, "}%s\n", i + 1 < n ? "," : "");
    }
    if (rc == HQ_OK)
        rc = lit(out, "  ]\n}\n");
    return rc;
}

/* u: the user name with permissions matching exactly the names (NULL-terminated lists). */
static int user_of(struct user *u, const char *name, const char *const *configure,
                   const char *const *write, const char *const *read)
{
    int rc;

    snprintf(u->name, sizeof(u->name), "%s", name);
    if ((rc = rx_names(u->configure, RX_MAX, configure)) != HQ_OK ||
        (rc = rx_names(u->write, RX_MAX, write)) != HQ_OK)
        return rc;
    return rx_names(u->read, RX_MAX, read);
}

int hq_dlx_users(const struct hq_config *cfg, const char *password_file, struct hq_buf *out,
                 size_t *n_without_password)
{
    struct pwlist pw = {NULL, 0};
    struct user *u = NULL;
    const char *ex = cfg->broker.exchange, *none[] = {NULL};
    char vhost[256];
    size_t n = 0, i;
    int rc;

    *n_without_password = 0;
    if (password_file && (rc = pw_load(password_file, &pw)) != HQ_OK)
        goto out;
    hq_topology_vhost(cfg, vhost, sizeof(vhost));
    u = calloc(cfg->n_consumers + 4, sizeof(*u));
    if (!u) {
        rc = HQ_ENOMEM;
        goto out;
    }

    /* gateway: write to the events exchange, nothing else */
    {
        const char *w[] = {ex, NULL};
        if ((rc = user_of(&u[n++], "hookmq-gateway", none, w, none)) != HQ_OK)
            goto out;
    }
    /* one user per consumer: its work queue (and DLQ with redrive) */
    for (i = 0; i < cfg->n_consumers; i++) {
        const struct hq_consumer_cfg *c = &cfg->consumers[i];
        char work[HQ_NAME_MAX + 16], dlq[HQ_NAME_MAX + 20];
        const char *w[] = {"amq.default", HQ_LIFECYCLE_EXCHANGE, NULL};
        const char *r[] = {work, c->redrive ? dlq : NULL, NULL};
        char name[sizeof(u->name)];

        snprintf(work, sizeof(work), "hookmq.%s", c->name);
        snprintf(dlq, sizeof(dlq), "hookmq.%s.dlq", c->name);
        hq_dlx_worker_user(c->name, name, sizeof(name));
        if ((rc = user_of(&u[n++], name, none, w, r)) != HQ_OK)
            goto out;
    }
    /* archive: consume hookmq.archive */
    {
        const char *r[] = {"hookmq.archive", NULL};
        if ((rc = user_of(&u[n++], "hookmq-archive", none, none, r)) != HQ_OK)
            goto out;
    }
    /* replay: publish to the events exchange or a work queue, lifecycle records */
    {
        const char *w[] = {"amq.default", ex, HQ_LIFECYCLE_EXCHANGE, NULL};
        if ((rc = user_of(&u[n++], "hookmq-replay", none, w, none)) != HQ_OK)
            goto out;
    }
    /* the operator: everything hookmq, nothing else */
    snprintf(u[n].name, sizeof(u[n].name), "hookmq-dlx");
    if ((rc = rx_hookmq(u[n].configure, RX_MAX, ex, false)) != HQ_OK ||
        (rc = rx_hookmq(u[n].write, RX_MAX, ex, true)) != HQ_OK ||
        (rc = rx_hookmq(u[n].read, RX_MAX, ex, false)) != HQ_OK)
        goto out;
    n++;

    rc = emit(out, u, n, vhost, &pw, n_without_password);
out:
    free(u);
    pw_free(&pw);
    return rc;
}
