/* hookmq-send: sign a test webhook exactly as the provider would and POST it to the gateway.
 *
 *   hookmq-send [-c FILE] --source NAME (--sample NAME | --file F) [--url URL]
 *               [--bad-signature] [--stale] [--event-id ID] [--type TYPE] [--print]
 *   hookmq-send [-c FILE] [--source NAME] --check
 *
 * The source's scheme and first secret come from the config (the same file the gateway
 * reads); the signature headers come from hq_sig_sign() (core/sig.c), so what this tool
 * sends is what the verifier accepts, by construction of one code base, and the system tests
 * check it against a running gateway. Samples live in conf/samples/<scheme>/<name>.json (or
 * .form for form posts) and may contain {{placeholders}} that are filled in per send, so that
 * two sends never look like an exact replay to the gateway (conf/samples/README.md).
 *
 * This is a client tool outside the request path: it uses libcurl for HTTP(S), and core's
 * hq_sha256 (hq_codec.h) for the one SHA-256 twilio's JSON form needs (bodySHA256).
 *
 * --check validates the config (and, with --source, that the source exists and can be signed
 * for), prints one line and exits without sending anything.
 *
 * Exit codes: 0 the gateway answered 2xx (or --print, or --check found the config valid), 1 any
 * other answer or a transport failure, 2 usage, configuration or sample error. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "hq_buf.h"
#include "hq_codec.h"
#include "hq_config.h"
#include "hq_fs.h"
#include "hq_log.h"
#include "hq_scheme.h"
#include "hq_sig.h"
#include "hq_status.h"
#include "hq_time.h"

#define PROG "hookmq-send"

#ifndef HQ_SAMPLES_SRC_DIR
#define HQ_SAMPLES_SRC_DIR "conf/samples"
#endif
#ifndef HQ_SAMPLES_DIR
#define HQ_SAMPLES_DIR "/usr/share/hookmq/samples"
#endif

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define BODY_MAX (64u << 20)  /* the largest max_body_bytes the config allows */
#define RESP_MAX (1u << 20)   /* response bodies we keep */
#define URL_MAX 4096
#define SIGN_OUT_MAX 32768    /* hq_sig_sign's "Name: value" lines */
#define EXTRA_HDRS_MAX 32
#define NAME_MAX_LEN 128      /* sample names */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [-c FILE] --source NAME (--sample NAME | --file F) [OPTIONS]\n"
            "       " PROG " [-c FILE] [--source NAME] --check\n"
            "\n"
            "Signs a webhook the way the source's provider does (scheme and first secret from\n"
            "the config) and POSTs it to http://<gateway.listen>/webhooks/<source>. Prints the\n"
            "HTTP status and the response body.\n"
            "\n"
            "  -c, --config FILE    config file (default: $HOOKMQ_CONFIG, then\n"
            "                       /etc/hookmq/hookmq.conf)\n"
            "  -s, --source NAME    the source to send to (its name in the config)\n"
            "      --sample NAME    a bundled sample of the source's scheme, e.g. push (github),\n"
            "                       invoice.payment_failed (stripe), orders/create (shopify),\n"
            "                       event_callback (slack); an unknown name lists the samples\n"
            "  -f, --file F         send the bytes of F as the body ({{placeholders}} are filled\n"
            "                       in as in samples; .form files are posted as a form)\n"
            "      --url URL        POST here instead (e.g. the public https:// URL of a proxy in\n"
            "                       front of the gateway); twilio and square sign the source's\n"
            "                       `url` (required) with this URL's query\n"
            "      --type TYPE      event type header for github, gitlab and shopify (default:\n"
            "                       the sample or file name)\n"
            "      --event-id ID    event id to use instead of a fresh one\n"
            "  -H, --header 'N: V'  add a request header (repeatable)\n"
            "      --content-type T content type (default: application/json, or\n"
            "                       application/x-www-form-urlencoded for .form files)\n"
            "      --bad-signature  corrupt the MAC (or token): the gateway answers 401\n"
            "      --stale          sign with a timestamp past the source's tolerance (schemes\n"
            "                       with a signed timestamp only): the gateway answers 401\n"
            "      --cacert FILE    CA certificates for an https:// --url\n"
            "      --timeout S      give up after S seconds (default 30)\n"
            "      --print          print the signed request instead of sending it (it contains\n"
            "                       the secret itself for the gitlab, token and basic schemes)\n"
            "      --check          validate the config (with --source: that the source exists\n"
            "                       and has a secret to sign with), print one line and exit\n"
            "                       (0 ok, 2 error); sends nothing\n"
            "  -h, --help           this help\n"
            "  -V, --version        print the version\n"
            "\n"
            "Samples (<scheme>/<name>.json or .form): $HOOKMQ_SAMPLES_DIR, else\n"
            "  " HQ_SAMPLES_SRC_DIR ",\n"
            "else <this program's dir>/../share/hookmq/samples, else " HQ_SAMPLES_DIR ".\n"
            "Exit codes: 0 answered 2xx (or --print, or --check found no error), 1 any other\n"
            "answer or no answer, 2 usage, configuration or sample error.\n");
}

struct opts {
    const char *config, *source, *sample, *file, *url, *type, *event_id, *content_type;
    const char *cacert;
    const char *headers[EXTRA_HDRS_MAX];
    size_t n_headers;
    long timeout_s;
    bool bad_signature, stale, print, check;
};

/* HQ_OK, HQ_EINVAL (message printed), or HQ_ENOTFOUND for --help/--version (handled). */
static int parse_args(int argc, char **argv, struct opts *o, int *early_exit)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->timeout_s = 30;
    *early_exit = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            *early_exit = EXIT_OK;
            return HQ_OK;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf(PROG " %s\n", HQ_VERSION);
            *early_exit = EXIT_OK;
            return HQ_OK;
        }
        if (strcmp(a, "--bad-signature") == 0) {
            o->bad_signature = true;
            continue;
        }
        if (strcmp(a, "--stale") == 0) {
            o->stale = true;
            continue;
        }
        if (strcmp(a, "--print") == 0) {
            o->print = true;
            continue;
        }
        if (strcmp(a, "--check") == 0) {
            o->check = true;
            continue;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            dst = &o->config;
        else if (strcmp(a, "-s") == 0 || strcmp(a, "--source") == 0)
            dst = &o->source;
        else if (strcmp(a, "--sample") == 0)
            dst = &o->sample;
        else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0)
            dst = &o->file;
        else if (strcmp(a, "--url") == 0)
            dst = &o->url;
        else if (strcmp(a, "--type") == 0)
            dst = &o->type;
        else if (strcmp(a, "--event-id") == 0)
            dst = &o->event_id;
        else if (strcmp(a, "--content-type") == 0)
            dst = &o->content_type;
        else if (strcmp(a, "--cacert") == 0)
            dst = &o->cacert;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, PROG ": %s needs a value\n", a);
                return HQ_EINVAL;
            }
            *dst = argv[++i];
            continue;
        }
        if (strcmp(a, "-H") == 0 || strcmp(a, "--header") == 0) {
            if (i + 1 >= argc || !strchr(argv[i + 1], ':')) {
                fprintf(stderr, PROG ": %s needs 'Name: value'\n", a);
                return HQ_EINVAL;
            }
            if (o->n_headers == EXTRA_HDRS_MAX) {
                fprintf(stderr, PROG ": at most %d --header options\n", EXTRA_HDRS_MAX);
                return HQ_EINVAL;
            }
            o->headers[o->n_headers++] = argv[++i];
            continue;
        }
        if (strcmp(a, "--timeout") == 0) {
            char *end = NULL;
            if (i + 1 >= argc) {
                fprintf(stderr, PROG ": --timeout needs a value\n");
                return HQ_EINVAL;
            }
            errno = 0;
            o->timeout_s = strtol(argv[++i], &end, 10);
            if (errno || !end || *end || o->timeout_s < 1 || o->timeout_s > 3600) {
                fprintf(stderr, PROG ": --timeout takes 1..3600 seconds\n");
                return HQ_EINVAL;
            }
            continue;
        }
        fprintf(stderr, PROG ": unknown argument '%s'\n", a);
        return HQ_EINVAL;
    }
    if (o->check) {
        if (o->sample || o->file || o->print || o->bad_signature || o->stale) {
            fprintf(stderr, PROG ": --check takes only -c FILE and --source NAME\n");
            return HQ_EINVAL;
        }
        return HQ_OK;
    }
    if (!o->source) {
        fprintf(stderr, PROG ": --source is required\n");
        return HQ_EINVAL;
    }
    if (!o->sample == !o->file) {
        fprintf(stderr, PROG ": give exactly one of --sample and --file\n");
        return HQ_EINVAL;
    }
    if (o->bad_signature && o->stale) {
        fprintf(stderr, PROG ": --bad-signature and --stale show different failures: pick one\n");
        return HQ_EINVAL;
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Random values */

static int random_bytes(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = getrandom(p, n, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return HQ_EIO;
        }
        p += k;
        n -= (size_t)k;
    }
    return HQ_OK;
}

/* n random bytes as lower-case hex into out (>= 2n+1). */
static int random_hex(size_t n, char *out)
{
    unsigned char b[64];

    if (n > sizeof(b) || random_bytes(b, n) != HQ_OK)
        return HQ_EIO;
    hq_hex_encode(b, n, out);
    return HQ_OK;
}

/* A random (version 4) UUID into out[37]. */
static int random_uuid(char out[37])
{
    unsigned char b[16];
    char h[33];

    if (random_bytes(b, sizeof(b)) != HQ_OK)
        return HQ_EIO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    hq_hex_encode(b, sizeof(b), h);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Placeholders */

/* The values filled into {{name}} for one send. One value per name per send. */
struct fill {
    char event_id[256];
    char unique[25];        /* 24 hex */
    char uuid[37];
    char sha[41];           /* 40 hex, a commit id */
    char number[20];        /* 15 digits, no leading zero */
    char timestamp[24];     /* Unix seconds of the (possibly stale) send time */
    char timestamp_ms[24];
    char iso_time[40];      /* RFC 3339 UTC */
    char mailgun_token[51]; /* 50 hex */
    char mailgun_signature[65];
};

static const char *fill_value(const struct fill *f, const char *name, size_t n)
{
    static const struct {
        const char *name;
        size_t off;
    } map[] = {
        {"event_id", offsetof(struct fill, event_id)},
        {"unique", offsetof(struct fill, unique)},
        {"uuid", offsetof(struct fill, uuid)},
        {"sha", offsetof(struct fill, sha)},
        {"number", offsetof(struct fill, number)},
        {"timestamp", offsetof(struct fill, timestamp)},
        {"timestamp_ms", offsetof(struct fill, timestamp_ms)},
        {"iso_time", offsetof(struct fill, iso_time)},
        {"mailgun_token", offsetof(struct fill, mailgun_token)},
        {"mailgun_signature", offsetof(struct fill, mailgun_signature)},
    };
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strlen(map[i].name) == n && strncmp(map[i].name, name, n) == 0)
            return (const char *)f + map[i].off;
    return NULL;
}

/* Replace every known {{name}} of in with its value into out (reset first). Unknown
 * {{...}} stay as they are. */
static int fill_in(const struct hq_buf *in, const struct fill *f, struct hq_buf *out)
{
    const char *p = in->data ? (const char *)in->data : "", *end = p + in->len;
    int rc = HQ_OK;

    hq_buf_reset(out);
    rc = hq_buf_append(out, "", 0);
    while (rc == HQ_OK && p < end) {
        const char *open = memmem(p, (size_t)(end - p), "{{", 2), *close, *v = NULL;

        if (!open) {
            rc = hq_buf_append(out, p, (size_t)(end - p));
            break;
        }
        close = memmem(open + 2, (size_t)(end - open - 2), "}}", 2);
        if (close && close - open - 2 <= 32)
            v = fill_value(f, open + 2, (size_t)(close - open - 2));
        if (!v) {
            rc = hq_buf_append(out, p, (size_t)(open + 2 - p));
            p = open + 2;
            continue;
        }
        rc = hq_buf_append(out, p, (size_t)(open - p));
        if (rc == HQ_OK)
            rc = hq_buf_append(out, v, strlen(v));
        p = close + 2;
    }
    return rc;
}

/* A fresh event id in the provider's usual shape (its row of the scheme table). */
static int default_event_id(const struct hq_scheme_ops *ops, char *out, size_t outsz)
{
    char hex[33], u[37];
    size_t i;

    if (ops->id_hex > 0 && ops->id_hex <= 32 && ops->id_hex % 2 == 0) {
        if (random_hex((size_t)ops->id_hex / 2, hex) != HQ_OK)
            return HQ_EIO;
        for (i = 0; ops->id_upper && hex[i]; i++)
            hex[i] = (char)toupper((unsigned char)hex[i]);
        snprintf(out, outsz, "%s%s", ops->id_prefix ? ops->id_prefix : "", hex);
        return HQ_OK;
    }
    if (random_uuid(u) != HQ_OK)
        return HQ_EIO;
    snprintf(out, outsz, "%s", u);
    return HQ_OK;
}

static int fill_make(struct fill *f, const struct hq_source_cfg *src, const char *event_id,
                     int64_t ts, bool bad_signature)
{
    unsigned char r[8];
    uint64_t num;
    char mac_in[80];

    memset(f, 0, sizeof(*f));
    if (event_id)
        snprintf(f->event_id, sizeof(f->event_id), "%s", event_id);
    else if (default_event_id(hq_scheme_ops(src->scheme), f->event_id, sizeof(f->event_id)) != HQ_OK)
        return HQ_EIO;
    if (random_hex(12, f->unique) != HQ_OK || random_uuid(f->uuid) != HQ_OK ||
        random_hex(20, f->sha) != HQ_OK || random_hex(25, f->mailgun_token) != HQ_OK ||
        random_bytes(r, sizeof(r)) != HQ_OK)
        return HQ_EIO;
    memcpy(&num, r, sizeof(num));
    num = 100000000000000ULL + num % 900000000000000ULL;
    snprintf(f->number, sizeof(f->number), "%" PRIu64, num);
    snprintf(f->timestamp, sizeof(f->timestamp), "%" PRId64, ts);
    snprintf(f->timestamp_ms, sizeof(f->timestamp_ms), "%" PRId64, ts * 1000);
    {
        time_t t = (time_t)ts;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(f->iso_time, sizeof(f->iso_time), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    /* Mailgun signs timestamp + token with the webhook signing key; the result goes into the
     * body's "signature" object (the MAC does not cover event-data). */
    if (src->n_secrets > 0) {
        int n = snprintf(mac_in, sizeof(mac_in), "%s%s", f->timestamp, f->mailgun_token);
        if (n > 0 && (size_t)n < sizeof(mac_in))
            hq_sig_hmac_sha256_hex(&src->secrets[0], (const unsigned char *)mac_in, (size_t)n,
                                   f->mailgun_signature);
    }
    if (bad_signature && f->mailgun_signature[0]) {
        char *c = &f->mailgun_signature[10];
        *c = *c == '0' ? '1' : '0';
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Files */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Sample names: shopify topics are written with '/' ("orders/create") and stored with '-'
 * ("orders-create.json"). Anything else outside [A-Za-z0-9_.-], or a leading '.', is refused. */
static int sample_file_name(const char *name, char *out, size_t outsz)
{
    size_t i, n = strlen(name);

    if (n == 0 || n >= outsz || n > NAME_MAX_LEN || name[0] == '.')
        return HQ_EINVAL;
    for (i = 0; i < n; i++) {
        char c = name[i];
        if (c == '/')
            c = '-';
        else if (!isalnum((unsigned char)c) && c != '_' && c != '.' && c != '-')
            return HQ_EINVAL;
        out[i] = c;
    }
    out[n] = '\0';
    return HQ_OK;
}

/* <dir of this executable>/../share/hookmq/samples: where an installed hookmq-send finds the
 * samples whatever prefix it was installed with (the .deb's /usr, cmake --install --prefix). */
static const char *exe_samples_dir(void)
{
    static char dir[URL_MAX];
    static bool done;
    char exe[URL_MAX];
    ssize_t n;
    char *slash;

    if (done)
        return dir[0] ? dir : NULL;
    done = true;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    n = snprintf(dir, sizeof(dir), "%s/../share/hookmq/samples", exe);
    if (n < 0 || (size_t)n >= sizeof(dir))
        dir[0] = '\0';
    return dir[0] ? dir : NULL;
}

/* The sample directories, in the order they are searched; NULL past the last. */
static const char *sample_dirs(size_t i)
{
    const char *env = getenv("HOOKMQ_SAMPLES_DIR"), *exe = exe_samples_dir();
    const char *dirs[4];
    size_t n = 0;

    if (env && *env)
        dirs[n++] = env;
    dirs[n++] = HQ_SAMPLES_SRC_DIR;
    if (exe)
        dirs[n++] = exe;
    dirs[n++] = HQ_SAMPLES_DIR;
    return i < n ? dirs[i] : NULL;
}

/* Find <dir>/<scheme>/<name>.json or .form in the sample directories; the path goes to out. */
static int find_sample(const char *scheme, const char *name, char *out, size_t outsz)
{
    static const char *const ext[] = {".json", ".form"};
    char file[NAME_MAX_LEN + 1];
    const char *dir;
    size_t i, e;

    if (sample_file_name(name, file, sizeof(file)) != HQ_OK)
        return HQ_EINVAL;
    for (i = 0; (dir = sample_dirs(i)) != NULL; i++) {
        for (e = 0; e < 2; e++) {
            FILE *f;
            int n = snprintf(out, outsz, "%s/%s/%s%s", dir, scheme, file, ext[e]);
            if (n < 0 || (size_t)n >= outsz)
                continue;
            f = fopen(out, "rb");
            if (f) {
                fclose(f);
                return HQ_OK;
            }
        }
    }
    return HQ_ENOTFOUND;
}

/* Print the samples available for scheme (first directory that has any). */
static void list_samples(FILE *f, const char *scheme)
{
    const char *dir;
    size_t i;

    for (i = 0; (dir = sample_dirs(i)) != NULL; i++) {
        char path[URL_MAX];
        DIR *d;
        struct dirent *de;
        int shown = 0;

        snprintf(path, sizeof(path), "%s/%s", dir, scheme);
        d = opendir(path);
        if (!d)
            continue;
        while ((de = readdir(d)) != NULL) {
            const char *n = de->d_name;
            size_t len = strlen(n);
            if (n[0] == '.')
                continue;
            if (has_suffix(n, ".json"))
                len -= 5;
            else if (has_suffix(n, ".form"))
                len -= 5;
            else
                continue;
            if (!shown++)
                fprintf(f, "samples for scheme %s:", scheme);
            fprintf(f, " %.*s", (int)len, n);
        }
        closedir(d);
        if (shown) {
            fprintf(f, "  (in %s)\n", path);
            return;
        }
    }
    fprintf(f, "no samples found for scheme %s (looked in $HOOKMQ_SAMPLES_DIR, %s, "
               "<bin>/../share/hookmq/samples, %s)\n", scheme, HQ_SAMPLES_SRC_DIR, HQ_SAMPLES_DIR);
}

/* "push" from "/x/y/push.json". */
static void base_name(const char *path, char *out, size_t outsz)
{
    const char *b = strrchr(path, '/');
    size_t n;

    b = b ? b + 1 : path;
    n = strcspn(b, ".");
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* Headers */

struct hdrs {
    char *name[64];
    char *value[64];
    size_t n;
};

static int hdr_add(struct hdrs *h, const char *name, size_t nn, const char *value, size_t vn)
{
    if (h->n == 64)
        return HQ_ETOOBIG;
    h->name[h->n] = strndup(name, nn);
    h->value[h->n] = strndup(value, vn);
    if (!h->name[h->n] || !h->value[h->n]) {
        free(h->name[h->n]);
        free(h->value[h->n]);
        return HQ_ENOMEM;
    }
    h->n++;
    return HQ_OK;
}

static int hdr_add_str(struct hdrs *h, const char *name, const char *value)
{
    return hdr_add(h, name, strlen(name), value, strlen(value));
}

/* Add "Name: value" (a --header or a line of hq_sig_sign's output). */
static int hdr_add_line(struct hdrs *h, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    size_t nn, vs;

    if (!colon || colon == line)
        return HQ_EINVAL;
    nn = (size_t)(colon - line);
    vs = nn + 1;
    while (vs < n && (line[vs] == ' ' || line[vs] == '\t'))
        vs++;
    return hdr_add(h, line, nn, line + vs, n - vs);
}

static void hdrs_free(struct hdrs *h)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        /* token, basic and gitlab put the secret itself into a header */
        if (h->value[i])
            memset(h->value[i], 0, strlen(h->value[i]));
        free(h->name[i]);
        free(h->value[i]);
    }
    h->n = 0;
}

/* Headers hq_sig_sign emits that carry ids or timestamps, not the MAC or token. */
static bool is_signature_header(const char *name)
{
    static const char *const not_sig[] = {
        "X-GitHub-Delivery", "webhook-id", "webhook-timestamp", "X-Shopify-Webhook-Id",
        "X-Slack-Request-Timestamp", "x-zm-request-timestamp", "X-Gitlab-Event-UUID",
    };
    size_t i;

    for (i = 0; i < sizeof(not_sig) / sizeof(not_sig[0]); i++)
        if (strcasecmp(name, not_sig[i]) == 0)
            return false;
    return true;
}

/* Change one character of the MAC/token in v, staying in its alphabet (hex stays hex,
 * base64 stays base64), so the verifier sees a well-formed but wrong value. The character
 * is the third from the end ignoring base64 padding: never a padding bit, never the prefix. */
static void corrupt(char *v)
{
    size_t n = strlen(v), pos;
    char c;

    while (n > 0 && v[n - 1] == '=')
        n--;
    if (n == 0)
        return;
    pos = n >= 3 ? n - 3 : n - 1;
    c = v[pos];
    if (c >= '0' && c <= '8')
        c++;
    else if (c == '9')
        c = '0';
    else if (c >= 'a' && c <= 'e')
        c++;
    else if (c == 'f')
        c = 'a';
    else if (c >= 'A' && c <= 'E')
        c++;
    else if (c == 'F')
        c = 'A';
    else if ((c >= 'g' && c < 'z') || (c >= 'G' && c < 'Z'))
        c++;
    else if (c == 'z')
        c = 'g';
    else if (c == 'Z')
        c = 'G';
    else if (c == '+')
        c = '/';
    else if (c == '/')
        c = '+';
    else
        c = c == 'x' ? 'y' : 'x';
    v[pos] = c;
}

/* The provider's own event-type header, for schemes that send the type in a header. */
static int add_type_header(struct hdrs *h, const struct hq_scheme_ops *ops, const char *type)
{
    char buf[256];
    size_t i, o = 0;
    bool up = true;

    if (!ops->type_header)
        return HQ_OK;
    switch (ops->type_style) {
    case HQ_TYPE_TOPIC:
        /* orders-create -> orders/create (topics have one '/' and never a '-') */
        snprintf(buf, sizeof(buf), "%s", type);
        if (!strchr(buf, '/')) {
            char *d = strchr(buf, '-');
            if (d)
                *d = '/';
        }
        return hdr_add_str(h, ops->type_header, buf);
    case HQ_TYPE_HOOK_TITLE:
        /* push -> "Push Hook", merge_request -> "Merge Request Hook"; a type that already
         * ends in " Hook" is taken as it is */
        if (has_suffix(type, " Hook"))
            return hdr_add_str(h, ops->type_header, type);
        for (i = 0; type[i] && o + 6 < sizeof(buf); i++) {
            char c = type[i];
            if (c == '_' || c == '-' || c == ' ') {
                buf[o++] = ' ';
                up = true;
                continue;
            }
            buf[o++] = up ? (char)toupper((unsigned char)c) : c;
            up = false;
        }
        memcpy(buf + o, " Hook", 6);
        return hdr_add_str(h, ops->type_header, buf);
    case HQ_TYPE_AS_IS:
    default:
        return hdr_add_str(h, ops->type_header, type);
    }
}

/* Provider headers that are not part of the signature but that the provider sends: the
 * scheme's sample_headers lines, placeholders filled in. */
static int add_provider_headers(struct hdrs *h, const struct hq_scheme_ops *ops,
                                const struct fill *f)
{
    struct hq_buf in = HQ_BUF_INIT(4096), out = HQ_BUF_INIT(4096);
    const char *p;
    int rc = HQ_OK;

    if (!ops->sample_headers)
        return HQ_OK;
    rc = hq_buf_append(&in, ops->sample_headers, strlen(ops->sample_headers));
    if (rc == HQ_OK)
        rc = fill_in(&in, f, &out);
    if (rc == HQ_OK)
        rc = hq_buf_append(&out, "", 1);
    p = out.data ? (const char *)out.data : "";
    while (rc == HQ_OK && *p) {
        size_t n = strcspn(p, "\n");
        rc = hdr_add_line(h, p, n);
        p += n;
        if (*p == '\n')
            p++;
    }
    hq_buf_free(&in);
    hq_buf_free(&out);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct hq_buf *b = ud;
    size_t n = size * nmemb;

    if (hq_buf_append(b, p, n) != HQ_OK)
        return b->len < b->cap ? 0 : n; /* keep the first RESP_MAX bytes, drop the rest */
    return n;
}

/* POST; *status gets the HTTP status (0 when there was no answer, with the reason on stderr). */
static int post(const struct opts *o, const char *url, const struct hdrs *h,
                const struct hq_buf *body, struct hq_buf *resp, long *status)
{
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL, *tmp;
    char line[16384], errbuf[CURL_ERROR_SIZE] = "";
    CURLcode cc;
    size_t i;
    int rc = HQ_OK;

    *status = 0;
    if (!c)
        return HQ_ENOMEM;
    for (i = 0; i < h->n; i++) {
        snprintf(line, sizeof(line), "%s: %s", h->name[i], h->value[i]);
        tmp = curl_slist_append(list, line);
        if (!tmp) {
            rc = HQ_ENOMEM;
            goto out;
        }
        list = tmp;
    }
    /* no "Expect: 100-continue" round trip, no Accept header of curl's choosing */
    if (!(tmp = curl_slist_append(list, "Expect:")) || !(list = tmp) ||
        !(tmp = curl_slist_append(list, "Accept: application/json")) || !(list = tmp)) {
        rc = HQ_ENOMEM;
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data ? (const char *)body->data : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_USERAGENT, PROG "/" HQ_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->timeout_s < 10 ? o->timeout_s : 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (o->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, PROG ": POST %s failed: %s\n", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = HQ_EIO;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
out:
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

static int sha256_hex(const unsigned char *p, size_t n, char out[65])
{
    const void *piece = p;
    unsigned char d[32];

    if (hq_sha256(&piece, &n, 1, d) != HQ_OK)
        return HQ_EIO;
    hq_hex_encode(d, 32, out);
    return HQ_OK;
}

static bool is_form_type(const char *ct)
{
    return hq_media_type_is(ct, "application/x-www-form-urlencoded");
}

static bool scheme_has_timestamp(enum hq_scheme s)
{
    return hq_scheme_ops(s)->tolerance_s > 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct hq_config *cfg = NULL;
    const struct hq_source_cfg *src;
    struct hq_buf raw = HQ_BUF_INIT(BODY_MAX), body = HQ_BUF_INIT(BODY_MAX);
    struct hq_buf resp = HQ_BUF_INIT(RESP_MAX);
    struct hdrs h;
    struct fill f;
    char err[1024], path[URL_MAX], url[URL_MAX], sign_url[URL_MAX], type[NAME_MAX_LEN + 1];
    char *signed_hdrs = NULL, *file = NULL;
    size_t file_len = 0;
    const char *scheme, *ct, *event_id = NULL;
    int64_t ts;
    long status = 0;
    int rc, early, ex = EXIT_USAGE;
    bool curl_up = false;

    memset(&h, 0, sizeof(h));
    if (parse_args(argc, argv, &o, &early) != HQ_OK) {
        fprintf(stderr, "Try '" PROG " --help'.\n");
        return EXIT_USAGE;
    }
    if (early >= 0)
        return early;

    hq_log_setup(PROG, HQ_LOG_WARN, HQ_LOG_TEXT);
    rc = hq_config_load(hq_config_default_path(o.config), &cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    if (o.check && !o.source) {
        printf("%s: ok (%zu sources)\n", hq_config_default_path(o.config), cfg->n_sources);
        ex = EXIT_OK;
        goto out;
    }
    src = hq_config_source(cfg, o.source);
    if (!src) {
        size_t i;
        fprintf(stderr, PROG ": no source '%s' in %s (sources:", o.source, cfg->path);
        for (i = 0; i < cfg->n_sources; i++)
            fprintf(stderr, " %s", cfg->sources[i].name);
        fprintf(stderr, ")\n");
        goto out;
    }
    scheme = hq_scheme_name(src->scheme);
    if (src->scheme != HQ_SCHEME_NONE && src->n_secrets == 0) {
        fprintf(stderr, PROG ": source '%s' has no secret to sign with\n", src->name);
        goto out;
    }
    if (o.check) {
        printf("%s: ok (source %s, scheme %s)\n", hq_config_default_path(o.config), src->name,
               scheme);
        ex = EXIT_OK;
        goto out;
    }
    if (o.bad_signature && src->scheme == HQ_SCHEME_NONE) {
        fprintf(stderr, PROG ": source '%s' (scheme none) has no signature to corrupt\n",
                src->name);
        goto out;
    }
    ts = hq_now_ms() / 1000;
    if (o.stale) {
        int tol = hq_sig_tolerance(src);
        if (!scheme_has_timestamp(src->scheme)) {
            fprintf(stderr, PROG ": scheme %s signs no timestamp: --stale does not apply\n",
                    scheme);
            goto out;
        }
        if (tol <= 0) {
            fprintf(stderr, PROG ": source '%s' has tolerance_s = 0 (no timestamp check): "
                            "--stale would be accepted\n", src->name);
            goto out;
        }
        ts -= (int64_t)tol + 60;
    }

    /* the body */
    if (o.sample) {
        rc = find_sample(scheme, o.sample, path, sizeof(path));
        if (rc != HQ_OK) {
            fprintf(stderr, PROG ": %s sample '%s' for scheme %s\n",
                    rc == HQ_EINVAL ? "invalid" : "no", o.sample, scheme);
            list_samples(stderr, scheme);
            goto out;
        }
    } else {
        snprintf(path, sizeof(path), "%s", o.file);
    }
    rc = hq_read_file(path, raw.cap, &file, &file_len);
    if (rc == HQ_OK)
        rc = hq_buf_append(&raw, file, file_len);
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s: %s\n", path,
                rc == HQ_ENOTFOUND || rc == HQ_EIO ? strerror(errno) : hq_strerror(rc));
        goto out;
    }
    if (o.type)
        snprintf(type, sizeof(type), "%s", o.type);
    else if (o.sample)
        snprintf(type, sizeof(type), "%s", o.sample);
    else
        base_name(path, type, sizeof(type));
    ct = o.content_type ? o.content_type
                        : has_suffix(path, ".form") ? "application/x-www-form-urlencoded"
                                                    : "application/json";
    if (fill_make(&f, src, o.event_id, ts, o.bad_signature) != HQ_OK) {
        fprintf(stderr, PROG ": no randomness\n");
        ex = EXIT_FAIL;
        goto out;
    }
    event_id = f.event_id;
    if (fill_in(&raw, &f, &body) != HQ_OK) {
        fprintf(stderr, PROG ": %s: too large\n", path);
        goto out;
    }

    /* where it goes, and what twilio/square sign */
    if (o.url) {
        if (strlen(o.url) >= sizeof(url) - 80) {
            fprintf(stderr, PROG ": --url too long\n");
            goto out;
        }
        snprintf(url, sizeof(url), "%s", o.url);
    } else {
        const char *listen = cfg->gateway.listen;
        if (strncmp(listen, "0.0.0.0:", 8) == 0)
            snprintf(url, sizeof(url), "http://127.0.0.1:%s/webhooks/%s", listen + 8, src->name);
        else
            snprintf(url, sizeof(url), "http://%s/webhooks/%s", listen, src->name);
    }
    if (src->scheme == HQ_SCHEME_TWILIO && !is_form_type(ct)) {
        /* Twilio's JSON form: the URL carries the body's SHA-256 and is signed alone */
        char hex[65];
        size_t n = strlen(url);
        if (sha256_hex(body.data, body.len, hex) != HQ_OK) {
            ex = EXIT_FAIL;
            goto out;
        }
        snprintf(url + n, sizeof(url) - n, "%cbodySHA256=%s", strchr(url, '?') ? '&' : '?', hex);
    }
    snprintf(sign_url, sizeof(sign_url), "%s", url);

    /* the signature */
    signed_hdrs = malloc(SIGN_OUT_MAX);
    if (!signed_hdrs) {
        ex = EXIT_FAIL;
        goto out;
    }
    rc = hq_sig_sign(src, body.data, body.len, sign_url, ct, event_id, ts, signed_hdrs,
                     SIGN_OUT_MAX);
    if (rc != HQ_OK && !(src->scheme == HQ_SCHEME_MAILGUN && o.bad_signature)) {
        if (src->scheme == HQ_SCHEME_MAILGUN)
            fprintf(stderr, PROG ": mailgun signs inside the body: the body needs a \"signature\" "
                            "object with {{timestamp}}, {{mailgun_token}} and "
                            "{{mailgun_signature}} (see conf/samples/mailgun)\n");
        else
            fprintf(stderr, PROG ": cannot sign for source '%s' (scheme %s): %s\n", src->name,
                    scheme, hq_strerror(rc));
        goto out;
    }
    if (rc != HQ_OK)
        signed_hdrs[0] = '\0';

    rc = hdr_add_str(&h, "Content-Type", ct);
    if (rc == HQ_OK)
        rc = add_type_header(&h, hq_scheme_ops(src->scheme), type);
    if (rc == HQ_OK)
        rc = add_provider_headers(&h, hq_scheme_ops(src->scheme), &f);
    {
        const char *p = signed_hdrs;
        while (rc == HQ_OK && *p) {
            size_t n = strcspn(p, "\n");
            size_t first = h.n;
            rc = hdr_add_line(&h, p, n);
            if (rc == HQ_OK && o.bad_signature && is_signature_header(h.name[first]))
                corrupt(h.value[first]);
            p += n;
            if (*p == '\n')
                p++;
        }
        memset(signed_hdrs, 0, SIGN_OUT_MAX);
    }
    for (size_t i = 0; rc == HQ_OK && i < o.n_headers; i++)
        rc = hdr_add_line(&h, o.headers[i], strlen(o.headers[i]));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": bad header: %s\n", hq_strerror(rc));
        goto out;
    }

    if (o.print) {
        printf("POST %s\n", url);
        for (size_t i = 0; i < h.n; i++)
            printf("%s: %s\n", h.name[i], h.value[i]);
        printf("\n");
        if (body.len)
            fwrite(body.data, 1, body.len, stdout);
        if (body.len && body.data[body.len - 1] != '\n')
            printf("\n");
        ex = EXIT_OK;
        goto out;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, PROG ": libcurl initialisation failed\n");
        ex = EXIT_FAIL;
        goto out;
    }
    curl_up = true;
    rc = post(&o, url, &h, &body, &resp, &status);
    if (rc != HQ_OK) {
        ex = EXIT_FAIL;
        goto out;
    }
    printf("HTTP %ld\n", status);
    if (resp.len) {
        fwrite(resp.data, 1, resp.len, stdout);
        if (resp.data[resp.len - 1] != '\n')
            printf("\n");
    }
    ex = status >= 200 && status < 300 ? EXIT_OK : EXIT_FAIL;
out:
    fflush(stdout);
    if (curl_up)
        curl_global_cleanup();
    free(signed_hdrs);
    hdrs_free(&h);
    hq_buf_free(&raw);
    free(file);
    hq_buf_free(&body);
    hq_buf_free(&resp);
    hq_config_free(cfg);
    return ex;
}
