/* edit: `hookmq-dlx edit NAME ID [--body FILE] [--header K=V]...`: edit and retry one parked
 * event from the command line, as the console does (docs/dlq.md, docs/console.md): the first
 * message of hookmq.NAME.dlq with event id ID goes back to hookmq.NAME with the new body
 * and/or headers (hq_dlq_edit_copy: hookmq-edited-from = the original body's SHA-256,
 * hookmq-edited-by = the OS user), confirmed before it leaves the DLQ; a lifecycle record of
 * kind "edit" names the user. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edit.h"
#include "hq_amqp.h"
#include "hq_buf.h"
#include "hq_config.h"
#include "hq_consume.h"
#include "hq_dlq.h"
#include "hq_lifecycle.h"
#include "hq_log.h"

#define PROG "hookmq-dlx"
#define MAX_HEADERS 64
#define BODY_MAX (64u << 20)
#define CONFIRM_TIMEOUT_MS 5000

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_TOPOLOGY = 3 };

static const char usage_text[] =
    "usage: " PROG " edit NAME ID [-c FILE] [--body FILE] [--header K=V]...\n"
    "\n"
    "Edit and retry: the first message of hookmq.NAME.dlq whose event id is ID goes back to\n"
    "hookmq.NAME as a redrive sends it, with its body replaced by the bytes of FILE (- for\n"
    "standard input) and/or each header K set to V, and with hookmq-edited-from (sha256: and\n"
    "the hex SHA-256 of the original body) and hookmq-edited-by (your OS user name). It leaves\n"
    "the DLQ only after the broker confirmed the edited copy; the original stays in the\n"
    "archive; a lifecycle record of kind \"edit\" names you and what changed. hookmq-* and x-*\n"
    "headers cannot be edited. The same as the console's edit (docs/console.md).\n"
    "\n"
    "Exit status: 0 edited, 1 no such message (or runtime failure; the event stays parked),\n"
    "2 usage or configuration error, 3 a queue does not exist (run apply).\n";

void hq_dlx_edit_usage(FILE *f)
{
    fprintf(f, "  edit NAME ID [--body FILE] [--header K=V]...\n"
               "                                  edit and retry one DLQ message (docs/dlq.md)\n");
}

struct eopts {
    const char *config, *name, *id, *body_file;
    char *keys[MAX_HEADERS], *vals[MAX_HEADERS];
    size_t n;
    bool help;
};

static int parse(int argc, char **argv, struct eopts *o)
{
    int i, npos = 0;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
        } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            o->config = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            o->config = a + 9;
        } else if (strcmp(a, "--body") == 0 && i + 1 < argc) {
            o->body_file = argv[++i];
        } else if (strcmp(a, "--header") == 0 && i + 1 < argc) {
            const char *kv = argv[++i], *eq = strchr(kv, '=');

            if (!eq || eq == kv || o->n == MAX_HEADERS) {
                fprintf(stderr, PROG ": edit: --header takes NAME=VALUE (at most %d)\n",
                        MAX_HEADERS);
                return HQ_EINVAL;
            }
            o->keys[o->n] = strndup(kv, (size_t)(eq - kv));
            o->vals[o->n] = strdup(eq + 1);
            if (!o->keys[o->n] || !o->vals[o->n])
                return HQ_ENOMEM;
            if (!hq_dlq_edit_header_allowed(o->keys[o->n])) {
                fprintf(stderr, PROG ": edit: header '%s' may not be edited (hookmq-* and x-* "
                                "are not; printable, no spaces)\n", o->keys[o->n]);
                o->n++;
                return HQ_EINVAL;
            }
            o->n++;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, PROG ": edit: unknown or incomplete option %s\n", a);
            return HQ_EINVAL;
        } else if (npos == 0 && strcmp(a, "edit") == 0) {
            npos++;
        } else if (npos == 1) {
            o->name = a;
            npos++;
        } else if (npos == 2) {
            o->id = a;
            npos++;
        } else {
            fprintf(stderr, PROG ": edit: unexpected argument %s\n", a);
            return HQ_EINVAL;
        }
    }
    if (o->help)
        return HQ_OK;
    if (!o->name || !o->id) {
        fprintf(stderr, PROG ": edit: give the consumer NAME and the event ID\n");
        return HQ_EINVAL;
    }
    if (!o->body_file && o->n == 0) {
        fprintf(stderr, PROG ": edit: nothing to change: give --body FILE and/or --header K=V\n");
        return HQ_EINVAL;
    }
    return HQ_OK;
}

static void opts_free(struct eopts *o)
{
    size_t i;

    for (i = 0; i < o->n; i++) {
        free(o->keys[i]);
        free(o->vals[i]);
    }
}

static int read_file(const char *path, struct hq_buf *b)
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

static int run(const struct hq_config *cfg, const struct eopts *o)
{
    const struct hq_consumer_cfg *cc = hq_config_consumer(cfg, o->name);
    struct hq_buf body = HQ_BUF_INIT(BODY_MAX);
    struct passwd *pw = getpwuid(geteuid());
    char dlq[HQ_NAME_MAX + 32], work[HQ_NAME_MAX + 32];
    struct hq_dlq_edit e;
    struct hq_dlq_edit_outcome x;
    struct hq_lc_emitter *lc = NULL;
    struct hq_amqp *c = NULL;
    uint32_t depth = 0;
    size_t start = 0;
    int rc;

    if (!cc) {
        fprintf(stderr, PROG ": edit: no consumer '%s' in the config\n", o->name);
        return EXIT_USAGE;
    }
    if (o->body_file && (rc = read_file(o->body_file, &body)) != HQ_OK) {
        hq_buf_free(&body);
        return rc == HQ_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    if (hq_dlq_queue(cc->name, dlq, sizeof(dlq)) != HQ_OK ||
        hq_dlq_work_queue(cc->name, work, sizeof(work)) != HQ_OK) {
        hq_buf_free(&body);
        return EXIT_USAGE;
    }
    rc = hq_amqp_connect(&cfg->broker, PROG " edit", 10000, &start, &c);
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": edit: cannot connect to the broker: %s\n", hq_strerror(rc));
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (hq_amqp_queue_exists(c, dlq, &depth, NULL) != HQ_OK ||
        hq_amqp_queue_exists(c, work, NULL, NULL) != HQ_OK) {
        fprintf(stderr, PROG ": edit: %s or %s does not exist (run `" PROG " apply`)\n", dlq,
                work);
        rc = EXIT_TOPOLOGY;
        goto out;
    }
    if (hq_lc_start(&cfg->broker, PROG " edit (lifecycle)", 64, &lc) != HQ_OK)
        lc = NULL; /* best effort */
    memset(&e, 0, sizeof(e));
    e.consumer = cc->name;
    e.id = o->id;
    e.body = o->body_file ? body.data : NULL;
    e.body_len = body.len;
    e.keys = (const char *const *)o->keys;
    e.vals = (const char *const *)o->vals;
    e.n_headers = o->n;
    e.user = pw && pw->pw_name && pw->pw_name[0] ? pw->pw_name : "unknown";
    e.lc = lc;
    e.timeout_ms = CONFIRM_TIMEOUT_MS;
    rc = hq_dlq_edit(c, depth, &e, &x);
    if (!x.found) {
        fprintf(stderr, PROG ": edit: no message with event id '%s' in %s\n", o->id, dlq);
        rc = EXIT_RUNTIME;
    } else if (!x.done) {
        if (x.err != HQ_OK && x.err != HQ_EINVAL)
            fprintf(stderr, PROG ": edit: sending the edited event failed (%s): %s; it stays in "
                            "the DLQ\n", hq_strerror(x.err), x.error);
        rc = EXIT_RUNTIME;
    } else if (rc != HQ_OK) {
        rc = EXIT_RUNTIME;
    } else {
        printf("edited %s -> %s (%s)\n", o->id, work, x.summary);
        rc = EXIT_OK;
    }
out:
    hq_amqp_close(c);
    hq_lc_stop(lc, 3000);
    hq_buf_free(&body);
    return rc;
}

bool hq_dlx_edit_dispatch(int argc, char **argv, int *exit_code)
{
    struct hq_config *cfg = NULL;
    struct eopts o;
    char err[1024];
    int i, rc;

    for (i = 1; i < argc; i++) { /* the subcommand: the first argument not an option */
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            continue;
        break;
    }
    if (i >= argc || strcmp(argv[i], "edit") != 0)
        return false;
    rc = parse(argc, argv, &o);
    if (rc == HQ_OK && o.help) {
        fputs(usage_text, stdout);
        *exit_code = EXIT_OK;
        goto out;
    }
    if (rc != HQ_OK) {
        fprintf(stderr, "%.*s\n", (int)strcspn(usage_text, "\n"), usage_text);
        *exit_code = EXIT_USAGE;
        goto out;
    }
    hq_log_setup(PROG, HQ_LOG_WARN, HQ_LOG_TEXT);
    if (hq_config_load(hq_config_default_path(o.config), &cfg, err, sizeof(err)) != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        *exit_code = EXIT_USAGE;
        goto out;
    }
    *exit_code = run(cfg, &o);
out:
    hq_config_free(cfg);
    opts_free(&o);
    return true;
}
