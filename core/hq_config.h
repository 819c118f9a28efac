/* hq_config: the one libconfig file all hookmq programs read (docs/config.md).
 *
 * Loading is table-driven and strict: unknown keys, wrong types and out-of-range values are
 * errors reported as "file:line: message" (line 0 when libconfig knows none). Secrets from
 * secret_files / secret_env are read at load time, so a reload (SIGHUP) re-reads them. */
#ifndef HQ_CONFIG_H
#define HQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_net.h"
#include "hq_log.h"

#define HQ_NAME_MAX 64 /* [a-z0-9_-]{1,64} for sources and consumers */

/* Is s a source or consumer name ([a-z0-9_-]{1,64})? */
bool hq_name_valid(const char *s);

enum hq_queue_type { HQ_QUEUE_QUORUM = 0, HQ_QUEUE_CLASSIC };

enum hq_scheme {
    HQ_SCHEME_STRIPE = 0,
    HQ_SCHEME_GITHUB,
    HQ_SCHEME_STANDARD,
    HQ_SCHEME_SHOPIFY,
    HQ_SCHEME_SLACK,
    HQ_SCHEME_GITLAB,
    HQ_SCHEME_TWILIO,
    HQ_SCHEME_PADDLE,
    HQ_SCHEME_SQUARE,
    HQ_SCHEME_ZOOM,
    HQ_SCHEME_MAILGUN,
    HQ_SCHEME_HMAC,
    HQ_SCHEME_TOKEN,
    HQ_SCHEME_BASIC,
    HQ_SCHEME_NONE,
    HQ_SCHEME_LINEAR,
    HQ_SCHEME__COUNT
};

enum hq_hmac_alg { HQ_ALG_SHA256 = 0, HQ_ALG_SHA1, HQ_ALG_SHA512 };
enum hq_encoding { HQ_ENC_HEX = 0, HQ_ENC_BASE64 };

/* "stripe" etc.; NULL for an out-of-range value. */
const char *hq_scheme_name(enum hq_scheme s);
/* HQ_OK and *out set, or HQ_ENOTFOUND. */
HQ_MUST_CHECK int hq_scheme_from_name(const char *name, enum hq_scheme *out);

struct hq_secret {
    unsigned char *data; /* owned; exactly as configured (file contents without one trailing
                            newline); NUL-terminated for convenience */
    size_t len;
};

struct hq_tls_cfg {
    bool enabled; /* the tls group is present */
    char *ca_file, *cert_file, *key_file;
    bool verify_peer; /* default true */
};

struct hq_broker_cfg {
    char **uris; /* >= 1; default "amqp://guest:guest@127.0.0.1:5672/%2f" */
    size_t n_uris;
    char *exchange; /* default "hookmq.events" */
    enum hq_queue_type queue_type;
    int heartbeat_s; /* default 10, 0..3600 (0 = off) */
    struct hq_tls_cfg tls;
};

struct hq_gateway_cfg {
    char *listen;         /* default "127.0.0.1:8080"; always "a.b.c.d:port" ("*" and
                             "localhost" are normalized to 0.0.0.0 / 127.0.0.1) */
    char *metrics_listen; /* NULL = off; same form as listen */
    uint64_t max_body_bytes;     /* default 1 MiB, 1..64 MiB */
    int max_in_flight;           /* default 1024, 1..1000000 */
    int confirm_timeout_ms;      /* default 2000, 10..600000 */
    char *spool_dir;             /* NULL = no spool */
    uint64_t spool_max_bytes;    /* default 1 GiB */
    struct hq_cidr_list trusted_proxies;
    int threads;            /* extension: HTTP threads = max connections, default 256 */
    int publishers;         /* extension: publisher connections, default 2 */
    int request_timeout_ms; /* extension: per-connection read timeout, default 10000 */
    int keep_alive_timeout_ms; /* extension: idle time between requests on a connection
                                  before it is closed, default 1000, 0 = no keep-alive */
};

struct hq_source_cfg {
    char name[HQ_NAME_MAX + 1];
    enum hq_scheme scheme;
    struct hq_secret *secrets; /* owned; secrets, then secret_files, then secret_env */
    size_t n_secrets;
    int tolerance_s;            /* -1 = scheme default (docs/signatures.md); 0 disables */
    char *header;               /* hmac: signature header; token: token header */
    enum hq_hmac_alg algorithm; /* hmac */
    enum hq_encoding encoding;  /* hmac */
    char *prefix;               /* hmac/token: literal prefix before the value ("" if unset;
                                   token: NULL if unset = the verifier's default) */
    char *url;                  /* twilio, square: public URL the provider signs */
    char *event_type;           /* selector "json:/ptr" | "header:Name" | "const:value"; NULL = default */
    char *event_id;             /* selector; NULL = scheme default */
    struct hq_cidr_list allow_from; /* n == 0: anyone */
    uint64_t replay_cache_bytes; /* this source's replay cache budget, default 4 MiB */
};

struct hq_opt {
    const char *key;
    const char *value;          /* scalar as text (numbers and booleans too); NULL for arrays */
    const char *const *values;  /* array/list elements as text; NULL for scalars */
    size_t n_values;
};

struct hq_consumer_cfg {
    char name[HQ_NAME_MAX + 1];
    char **bindings; /* >= 1 topic patterns */
    size_t n_bindings;
    char *handler;   /* exec | http | log | path to a .so */
    struct hq_opt *options; /* owned (strings too) */
    size_t n_options;
    int prefetch;        /* default 16, 1..65535 */
    int concurrency;     /* default 1, 1..256 */
    double max_per_second; /* default 0 = unlimited */
    uint64_t *delays_ms; /* retry.delays; default [10s, 1m, 10m, 1h] */
    size_t n_delays;
    int max_attempts;    /* default 6, 1..1000 */
    bool redrive;        /* redrive group present */
    uint64_t redrive_after_ms;
    int redrive_max_times;
    bool dedupe;         /* dedupe group present */
    uint64_t dedupe_window_ms;
    char *dedupe_path;
    char *metrics_listen; /* NULL = off */
    int steps_max_bytes;  /* steps.max_bytes: durable steps per event, default 65536 */
};

struct hq_archive_cfg {
    char *dir;          /* default "/var/lib/hookmq/archive" */
    int keep_days;      /* default 90, 0 = keep forever */
    char *metrics_listen;
    int batch_max;      /* extension: group commit count, default 256 */
    int batch_ms;       /* extension: group commit delay, default 50 */
};

enum hq_console_role { HQ_ROLE_VIEWER = 0, HQ_ROLE_OPERATOR };

struct hq_console_user {
    char name[HQ_NAME_MAX + 1];
    char *password_hash;       /* owned; hq_passwd.h format (checked at load) */
    enum hq_console_role role; /* required */
};

/* The console group (hookmq-console, docs/console.md). */
struct hq_console_cfg {
    char *listen;                 /* default "127.0.0.1:8088" */
    struct hq_console_user *users; /* owned */
    size_t n_users;
    uint64_t session_ttl_ms;      /* default 8h, 1m..30d */
    bool read_only;               /* default false: true refuses every action */
    bool secure_cookie;           /* extension: mark the session cookie Secure (served behind a
                                     TLS proxy); default false */
    int threads;                  /* extension: HTTP threads, default 16 */
};

struct hq_config {
    char *path; /* the file loaded */
    struct hq_broker_cfg broker;
    struct hq_gateway_cfg gateway;
    struct hq_source_cfg *sources;
    size_t n_sources;
    struct hq_consumer_cfg *consumers;
    size_t n_consumers;
    struct hq_archive_cfg archive;
    enum hq_log_level log_level;
    enum hq_log_format log_format;
    struct hq_console_cfg console; /* addition (after the original members) */
};

/* Load and validate path. On success *out is a new config the caller frees with
 * hq_config_free(). On error returns HQ_ECONFIG (or HQ_ENOMEM) and writes one line
 * "file:line: message" into err (errsz >= 256 recommended); *out is untouched. */
HQ_MUST_CHECK int hq_config_load(const char *path, struct hq_config **out, char *err, size_t errsz);
/* Same, from an in-memory text; name is used in messages. */
HQ_MUST_CHECK int hq_config_load_string(const char *text, const char *name, struct hq_config **out,
                                        char *err, size_t errsz);
void hq_config_free(struct hq_config *cfg); /* NULL-safe */

/* The path a program uses: cli_path, else $HOOKMQ_CONFIG, else /etc/hookmq/hookmq.conf. */
const char *hq_config_default_path(const char *cli_path);

/* Lookups; NULL when absent. Borrowed until hq_config_free(cfg). */
const struct hq_source_cfg *hq_config_source(const struct hq_config *cfg, const char *name);
const struct hq_consumer_cfg *hq_config_consumer(const struct hq_config *cfg, const char *name);
/* First option named key, or NULL. */
const struct hq_opt *hq_consumer_opt(const struct hq_consumer_cfg *c, const char *key);

#endif
