/* Unit tests: core/config.c (the table-driven libconfig loader) and the example configs.
 *
 * Error cases assert the exact "file:line: path: " prefix, so a message that points at the
 * wrong line or key fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "hq_config.h"

static char tmpdir[256];

static void write_file(const char *name, const void *data, size_t n)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_str(const char *name, const char *s)
{
    write_file(name, s, strlen(s));
}

static const char *tmp_path(const char *name)
{
    static char path[8][512];
    static int k;

    k = (k + 1) % 8;
    snprintf(path[k], sizeof(path[k]), "%s/%s", tmpdir, name);
    return path[k];
}

static struct hq_config *load_ok(const char *text)
{
    struct hq_config *cfg = NULL;
    char err[512] = "";
    int rc = hq_config_load_string(text, "t.conf", &cfg, err, sizeof(err));

    if (rc != HQ_OK)
        fail_msg("load failed (%d): %s", rc, err);
    assert_non_null(cfg);
    return cfg;
}

/* Loading text must fail with a message that starts with want (and contains also, if set). */
static void expect_err2(const char *text, const char *want, const char *also)
{
    struct hq_config *cfg = NULL;
    char err[512] = "";
    int rc = hq_config_load_string(text, "t.conf", &cfg, err, sizeof(err));

    if (rc != HQ_ECONFIG)
        fail_msg("expected an error \"%s\", got rc %d for:\n%s", want, rc, text);
    assert_null(cfg);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, want);
    if (also && !strstr(err, also))
        fail_msg("error \"%s\" does not mention \"%s\"", err, also);
    if (strchr(err, '\n'))
        fail_msg("error \"%s\" is not one line", err);
}

static void expect_err(const char *text, const char *want)
{
    expect_err2(text, want, NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/hq-test-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    struct hq_config *cfg = load_ok("");

    (void)state;
    assert_string_equal(cfg->path, "t.conf");
    assert_int_equal(cfg->broker.n_uris, 1);
    assert_string_equal(cfg->broker.uris[0], "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_string_equal(cfg->broker.exchange, "hookmq.events");
    assert_int_equal(cfg->broker.queue_type, HQ_QUEUE_QUORUM);
    assert_int_equal(cfg->broker.heartbeat_s, 10);
    assert_false(cfg->broker.tls.enabled);
    assert_true(cfg->broker.tls.verify_peer);
    assert_null(cfg->broker.tls.ca_file);
    assert_string_equal(cfg->gateway.listen, "127.0.0.1:8080");
    assert_null(cfg->gateway.metrics_listen);
    assert_true(cfg->gateway.max_body_bytes == 1048576);
    assert_int_equal(cfg->gateway.max_in_flight, 1024);
    assert_int_equal(cfg->gateway.confirm_timeout_ms, 2000);
    assert_null(cfg->gateway.spool_dir);
    assert_true(cfg->gateway.spool_max_bytes == 1073741824ULL);
    assert_int_equal(cfg->gateway.trusted_proxies.n, 0);
    assert_int_equal(cfg->gateway.threads, 256);
    assert_int_equal(cfg->gateway.publishers, 2);
    assert_int_equal(cfg->gateway.request_timeout_ms, 10000);
    assert_int_equal(cfg->gateway.keep_alive_timeout_ms, 1000);
    assert_int_equal(cfg->n_sources, 0);
    assert_int_equal(cfg->n_consumers, 0);
    assert_string_equal(cfg->archive.dir, "/var/lib/hookmq/archive");
    assert_int_equal(cfg->archive.keep_days, 90);
    assert_null(cfg->archive.metrics_listen);
    assert_int_equal(cfg->archive.batch_max, 256);
    assert_int_equal(cfg->archive.batch_ms, 50);
    assert_int_equal(cfg->log_level, HQ_LOG_INFO);
    assert_int_equal(cfg->log_format, HQ_LOG_TEXT);
    hq_config_free(cfg);
    hq_config_free(NULL);
}

static void test_source_and_consumer_defaults(void **state)
{
    struct hq_config *cfg =
        load_ok("sources = ( { name = \"gh\"; scheme = \"github\"; secrets = [ \"s\" ]; } );\n"
                "consumers = ( { name = \"c\"; bindings = [ \"#\" ]; handler = \"log\"; } );\n");
    const struct hq_source_cfg *s;
    const struct hq_consumer_cfg *c;

    (void)state;
    s = &cfg->sources[0];
    assert_string_equal(s->name, "gh");
    assert_int_equal(s->scheme, HQ_SCHEME_GITHUB);
    assert_int_equal(s->tolerance_s, -1);
    assert_true(s->replay_cache_bytes == 4194304); /* default 4 MiB */
    assert_int_equal(s->algorithm, HQ_ALG_SHA256);
    assert_int_equal(s->encoding, HQ_ENC_HEX);
    assert_null(s->header);
    assert_string_equal(s->prefix, "");
    assert_null(s->url);
    assert_null(s->event_type);
    assert_null(s->event_id);
    assert_int_equal(s->allow_from.n, 0);
    assert_int_equal(s->n_secrets, 1);
    c = &cfg->consumers[0];
    assert_int_equal(c->prefetch, 16);
    assert_int_equal(c->concurrency, 1);
    assert_true(c->max_per_second == 0.0);
    assert_int_equal(c->n_delays, 4);
    assert_true(c->delays_ms[0] == 10000 && c->delays_ms[1] == 60000 && c->delays_ms[2] == 600000 &&
                c->delays_ms[3] == 3600000);
    assert_int_equal(c->max_attempts, 6);
    assert_false(c->redrive);
    assert_false(c->dedupe);
    assert_null(c->dedupe_path);
    assert_null(c->metrics_listen);
    assert_int_equal(c->n_options, 0);
    assert_null(hq_consumer_opt(c, "command"));
    hq_config_free(cfg);
}

static const char full_config[] =
    "broker = {\n"
    "  uris = [ \"amqp://u:p@node1:5672/%2f\", \"amqp://u:p@node2/vh\" ];\n"
    "  exchange = \"my.events\";\n"
    "  queue_type = \"classic\";\n"
    "  heartbeat_s = 30;\n"
    "};\n"
    "gateway = {\n"
    "  listen = \"*:8081\";\n"
    "  metrics_listen = \"localhost:9464\";\n"
    "  max_body_bytes = 2097152;\n"
    "  max_in_flight = 10;\n"
    "  confirm_timeout_ms = 500;\n"
    "  spool_dir = \"/tmp/spool\";\n"
    "  spool_max_bytes = 5000000000L;\n"
    "  trusted_proxies = [ \"127.0.0.1/32\", \"::1\" ];\n"
    "  threads = 8;\n"
    "  publishers = 3;\n"
    "  request_timeout_ms = 1500;\n"
    "};\n"
    "sources = (\n"
    "  { name = \"github\"; scheme = \"github\"; secrets = [ \"s1\", \"s2\" ]; },\n"
    "  { name = \"stripe\"; scheme = \"stripe\"; secrets = [ \"whsec_x\" ]; tolerance_s = 0; },\n"
    "  { name = \"orders\"; scheme = \"hmac\"; secrets = [ \"k\" ]; header = \"X-Signature\";\n"
    "    algorithm = \"sha512\"; encoding = \"base64\"; prefix = \"sha512=\"; },\n"
    "  { name = \"calls\"; scheme = \"twilio\"; secrets = [ \"t\" ];\n"
    "    url = \"https://hooks.example.com/webhooks/calls\"; },\n"
    "  { name = \"partner\"; scheme = \"standard\";\n"
    "    secrets = [ \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" ];\n"
    "    event_type = \"json:/type\"; event_id = \"header:webhook-id\";\n"
    "    allow_from = [ \"203.0.113.0/24\", \"2001:db8::/32\" ]; },\n"
    "  { name = \"tok\"; scheme = \"token\"; secrets = [ \"t0k\" ]; header = \"X-Gitlab-Token\"; "
    "},\n"
    "  { name = \"open_1\"; scheme = \"none\"; event_type = \"const:ping\";\n"
    "    event_id = \"form:id\"; }\n"
    ");\n"
    "consumers = (\n"
    "  { name = \"billing\";\n"
    "    bindings = [ \"stripe.invoice.#\", \"stripe.*.paid\" ];\n"
    "    handler = \"exec\";\n"
    "    options = { command = \"/bin/true\"; timeout = \"30s\"; n = 5; big = 5000000000L;\n"
    "                f = 0.25; yes = true; codes = [ 75, 69 ]; mixed = ( \"a\", 1, false ); };\n"
    "    prefetch = 32; concurrency = 4; max_per_second = 2.5;\n"
    "    retry = { delays = [ \"200ms\", \"90s\" ]; max_attempts = 4; };\n"
    "    redrive = { after = \"1h\"; max_times = 2; };\n"
    "    dedupe = { window = \"2d\"; path = \"/tmp/dedupe\"; };\n"
    "    metrics_listen = \"127.0.0.1:9465\";\n"
    "  },\n"
    "  { name = \"plug\"; bindings = [ \"github.push\" ]; handler = \"./handlers/x.so\";\n"
    "    max_per_second = 3; }\n"
    ");\n"
    "archive = { dir = \"/tmp/archive\"; keep_days = 0; metrics_listen = \"127.0.0.1:9466\";\n"
    "            batch_max = 1; batch_ms = 0; };\n"
    "log = { format = \"json\"; level = \"debug\"; };\n";

static void test_full_config(void **state)
{
    struct hq_config *cfg = load_ok(full_config);
    const struct hq_source_cfg *s;
    const struct hq_consumer_cfg *c;
    const struct hq_opt *o;

    (void)state;
    assert_int_equal(cfg->broker.n_uris, 2);
    assert_string_equal(cfg->broker.uris[1], "amqp://u:p@node2/vh");
    assert_string_equal(cfg->broker.exchange, "my.events");
    assert_int_equal(cfg->broker.queue_type, HQ_QUEUE_CLASSIC);
    assert_int_equal(cfg->broker.heartbeat_s, 30);
    assert_string_equal(cfg->gateway.listen, "0.0.0.0:8081");
    assert_string_equal(cfg->gateway.metrics_listen, "127.0.0.1:9464");
    assert_true(cfg->gateway.max_body_bytes == 2097152);
    assert_int_equal(cfg->gateway.max_in_flight, 10);
    assert_int_equal(cfg->gateway.confirm_timeout_ms, 500);
    assert_string_equal(cfg->gateway.spool_dir, "/tmp/spool");
    assert_true(cfg->gateway.spool_max_bytes == 5000000000ULL);
    assert_int_equal(cfg->gateway.trusted_proxies.n, 2);
    assert_true(hq_cidr_list_match(&cfg->gateway.trusted_proxies, "::1"));
    assert_int_equal(cfg->gateway.threads, 8);
    assert_int_equal(cfg->gateway.publishers, 3);
    assert_int_equal(cfg->gateway.request_timeout_ms, 1500);

    assert_int_equal(cfg->n_sources, 7);
    s = hq_config_source(cfg, "github");
    assert_non_null(s);
    assert_int_equal(s->n_secrets, 2);
    assert_int_equal(s->secrets[1].len, 2);
    assert_string_equal((char *)s->secrets[1].data, "s2");
    s = hq_config_source(cfg, "stripe");
    assert_int_equal(s->tolerance_s, 0);
    s = hq_config_source(cfg, "orders");
    assert_int_equal(s->scheme, HQ_SCHEME_HMAC);
    assert_string_equal(s->header, "X-Signature");
    assert_int_equal(s->algorithm, HQ_ALG_SHA512);
    assert_int_equal(s->encoding, HQ_ENC_BASE64);
    assert_string_equal(s->prefix, "sha512=");
    s = hq_config_source(cfg, "calls");
    assert_string_equal(s->url, "https://hooks.example.com/webhooks/calls");
    s = hq_config_source(cfg, "partner");
    assert_int_equal(s->scheme, HQ_SCHEME_STANDARD);
    assert_string_equal(s->event_type, "json:/type");
    assert_string_equal(s->event_id, "header:webhook-id");
    assert_int_equal(s->allow_from.n, 2);
    assert_true(hq_cidr_list_match(&s->allow_from, "203.0.113.77"));
    assert_false(hq_cidr_list_match(&s->allow_from, "198.51.100.1"));
    s = hq_config_source(cfg, "tok");
    assert_string_equal(s->header, "X-Gitlab-Token");
    assert_null(s->prefix);
    s = hq_config_source(cfg, "open_1");
    assert_int_equal(s->scheme, HQ_SCHEME_NONE);
    assert_int_equal(s->n_secrets, 0);
    assert_string_equal(s->event_type, "const:ping");
    assert_null(hq_config_source(cfg, "nope"));
    assert_null(hq_config_source(cfg, NULL));

    assert_int_equal(cfg->n_consumers, 2);
    c = hq_config_consumer(cfg, "billing");
    assert_non_null(c);
    assert_int_equal(c->n_bindings, 2);
    assert_string_equal(c->bindings[1], "stripe.*.paid");
    assert_string_equal(c->handler, "exec");
    assert_int_equal(c->n_options, 8);
    o = hq_consumer_opt(c, "command");
    assert_string_equal(o->value, "/bin/true");
    assert_null(o->values);
    assert_string_equal(hq_consumer_opt(c, "timeout")->value, "30s");
    assert_string_equal(hq_consumer_opt(c, "n")->value, "5");
    assert_string_equal(hq_consumer_opt(c, "big")->value, "5000000000");
    assert_string_equal(hq_consumer_opt(c, "f")->value, "0.25");
    assert_string_equal(hq_consumer_opt(c, "yes")->value, "true");
    o = hq_consumer_opt(c, "codes");
    assert_null(o->value);
    assert_int_equal(o->n_values, 2);
    assert_string_equal(o->values[0], "75");
    assert_string_equal(o->values[1], "69");
    o = hq_consumer_opt(c, "mixed");
    assert_int_equal(o->n_values, 3);
    assert_string_equal(o->values[0], "a");
    assert_string_equal(o->values[1], "1");
    assert_string_equal(o->values[2], "false");
    assert_null(hq_consumer_opt(c, "missing"));
    assert_int_equal(c->prefetch, 32);
    assert_int_equal(c->concurrency, 4);
    assert_true(c->max_per_second == 2.5);
    assert_int_equal(c->n_delays, 2);
    assert_true(c->delays_ms[0] == 200 && c->delays_ms[1] == 90000);
    assert_int_equal(c->max_attempts, 4);
    assert_true(c->redrive);
    assert_true(c->redrive_after_ms == 3600000);
    assert_int_equal(c->redrive_max_times, 2);
    assert_true(c->dedupe);
    assert_true(c->dedupe_window_ms == 2 * 86400000ULL);
    assert_string_equal(c->dedupe_path, "/tmp/dedupe");
    assert_string_equal(c->metrics_listen, "127.0.0.1:9465");
    c = hq_config_consumer(cfg, "plug");
    assert_string_equal(c->handler, "./handlers/x.so");
    assert_true(c->max_per_second == 3.0);
    assert_null(hq_config_consumer(cfg, "nope"));

    assert_string_equal(cfg->archive.dir, "/tmp/archive");
    assert_int_equal(cfg->archive.keep_days, 0);
    assert_string_equal(cfg->archive.metrics_listen, "127.0.0.1:9466");
    assert_int_equal(cfg->archive.batch_max, 1);
    assert_int_equal(cfg->archive.batch_ms, 0);
    assert_int_equal(cfg->log_format, HQ_LOG_JSON);
    assert_int_equal(cfg->log_level, HQ_LOG_DEBUG);
    hq_config_free(cfg);
}

static void test_example_configs(void **state)
{
    struct hq_config *cfg = NULL;
    char err[512] = "";
    const struct hq_source_cfg *s;
    const struct hq_consumer_cfg *c;

    (void)state;
    if (hq_config_load(HQ_TEST_DATA "/../../conf/hookmq.conf.example", &cfg, err, sizeof(err)) !=
        HQ_OK)
        fail_msg("%s", err);
    assert_string_equal(cfg->broker.uris[0], "amqp://guest:guest@127.0.0.1:5699/%2f");
    assert_string_equal(cfg->gateway.spool_dir, ".run/spool");
    assert_string_equal(cfg->archive.dir, ".run/archive");
    s = hq_config_source(cfg, "github");
    assert_non_null(s);
    assert_int_equal(s->scheme, HQ_SCHEME_GITHUB);
    assert_string_equal((char *)s->secrets[0].data, "dev-github-secret");
    s = hq_config_source(cfg, "stripe");
    assert_non_null(s);
    assert_string_equal((char *)s->secrets[0].data, "whsec_dev_stripe_secret");
    s = hq_config_source(cfg, "demo");
    assert_non_null(s);
    assert_int_equal(s->scheme, HQ_SCHEME_HMAC);
    c = hq_config_consumer(cfg, "log-all");
    assert_non_null(c);
    assert_string_equal(c->handler, "log");
    assert_string_equal(c->bindings[0], "#");
    c = hq_config_consumer(cfg, "billing");
    assert_non_null(c);
    assert_string_equal(c->handler, "exec");
    assert_non_null(hq_consumer_opt(c, "command"));
    assert_true(strncmp(c->dedupe_path, ".run/", 5) == 0);
    hq_config_free(cfg);

    /* the minimal config reads its one secret from the environment */
    cfg = NULL;
    setenv("GITHUB_WEBHOOK_SECRET", "from-env", 1);
    if (hq_config_load(HQ_TEST_DATA "/../../conf/hookmq.conf.minimal", &cfg, err, sizeof(err)) !=
        HQ_OK)
        fail_msg("%s", err);
    assert_int_equal(cfg->n_sources, 1);
    assert_string_equal((char *)cfg->sources[0].secrets[0].data, "from-env");
    assert_true(cfg->n_consumers >= 1);
    hq_config_free(cfg);
    unsetenv("GITHUB_WEBHOOK_SECRET");
}

static void test_data_dir_configs(void **state)
{
    struct hq_config *cfg = NULL;
    char err[512] = "";

    (void)state;
    if (hq_config_load(HQ_TEST_DATA "/config/good-include.conf", &cfg, err, sizeof(err)) != HQ_OK)
        fail_msg("%s", err);
    assert_int_equal(cfg->n_sources, 2);
    assert_non_null(hq_config_source(cfg, "included"));
    assert_string_equal((char *)hq_config_source(cfg, "included")->secrets[0].data,
                        "included-secret");
    hq_config_free(cfg);

    cfg = NULL;
    assert_int_equal(
        hq_config_load(HQ_TEST_DATA "/config/bad-include.conf", &cfg, err, sizeof(err)),
        HQ_ECONFIG);
    assert_null(cfg);
    /* the error is in the included file, named with its directory */
    if (!strstr(err, "/config/inc/bad-source.conf:3: sources[0].scheme: "))
        fail_msg("%s", err);
}

/* ------------------------------------------------------------------------------------------ */

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_err("gateway = {\n  listen = ;\n};\n", "t.conf:2: syntax error");
    expect_err("a = [ 1, 2, ];\n", "t.conf:1: syntax error"); /* trailing comma */
    /* libconfig 1.7 accepts trailing commas, 1.5 does not: refused with either */
    expect_err("a = ( 1, \"x\", # note\n /* c */ );\n", "t.conf:2: syntax error: a comma before ')'");
    expect_err("a = [ 1, 2,\n];\n", "t.conf:2: syntax error: a comma before ']'");
    expect_err("\n\nlog = { level = = \"info\"; };\n", "t.conf:3: syntax error");
    expect_err("log = { level = \"info\"; };\nlog = { };\n", "t.conf:2: duplicate setting");
    expect_err("gateway = { listen = \"unterminated; };\n", "t.conf:");
    expect_err("x = [ 1, \"a\" ];\n", "t.conf:1: mismatched element type");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_err("brokr = { };\n", "t.conf:1: brokr: unknown key (did you mean \"broker\"?)");
    expect_err("\ngateway = {\n  listen = \"127.0.0.1:1\";\n  max_body = 5;\n};\n",
               "t.conf:4: gateway.max_body: unknown key");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"x\" ];\n"
               "  secert_files = [ ]; } );\n",
               "t.conf:2: sources[0].secert_files: unknown key (did you mean \"secret_files\"?)");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { delay = [ \"1s\" ]; }; } );\n",
               "t.conf:2: consumers[0].retry.delay: unknown key (did you mean \"delays\"?)");
    expect_err("log = { colour = true; };\n", "t.conf:1: log.colour: unknown key");
    expect_err("broker = { tls = { verify = false; }; };\n",
               "t.conf:1: broker.tls.verify: unknown");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_err("gateway = {\n  max_in_flight = \"10\";\n};\n",
               "t.conf:2: gateway.max_in_flight: must be an integer (got a string)");
    expect_err("gateway = { max_in_flight = 10.0; };\n",
               "t.conf:1: gateway.max_in_flight: must be an integer, not a float");
    expect_err("gateway = { max_body_bytes = 1e6; };\n",
               "t.conf:1: gateway.max_body_bytes: must be an integer, not a float");
    expect_err("gateway = { listen = 8080; };\n",
               "t.conf:1: gateway.listen: must be a string (got an integer)");
    expect_err("gateway = \"x\";\n", "t.conf:1: gateway: must be a group");
    expect_err("sources = { };\n", "t.conf:1: sources: must be a list");
    expect_err("consumers = [ ];\n", "t.conf:1: consumers: must be a list");
    expect_err("sources = ( \"github\" );\n", "t.conf:1: sources[0]: must be a group");
    expect_err("broker = { tls = { verify_peer = 1; }; };\n",
               "t.conf:1: broker.tls.verify_peer: must be true or false");
    expect_err("broker = { uris = \"amqp://h/\"; };\n", "t.conf:1: broker.uris: must be an array");
    expect_err("gateway = { trusted_proxies = \"10.0.0.0/8\"; };\n",
               "t.conf:1: gateway.trusted_proxies: must be an array of CIDR strings");
    expect_err("gateway = { trusted_proxies = [ 10 ]; };\n",
               "t.conf:1: gateway.trusted_proxies[0]: must be a string");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  max_per_second = \"5\"; } );\n",
               "t.conf:2: consumers[0].max_per_second: must be a number");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = [ ]; } );\n",
               "t.conf:2: consumers[0].retry: must be a group");
    expect_err("log = { level = 3; };\n", "t.conf:1: log.level: must be a string");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_err("sources = (\n"
               "  { name = \"a\"; scheme = \"stripe\"; secrets = [ \"x\" ]; },\n"
               "  { name = \"b\"; scheme = \"stripe\"; secrets = [ \"x\" ];\n"
               "    tolerance_s = 90000; }\n"
               ");\n",
               "t.conf:4: sources[1].tolerance_s: must be between 0 and 86400");
    expect_err("sources = ( { name = \"a\"; scheme = \"stripe\"; secrets = [ \"x\" ];\n"
               "  tolerance_s = -1; } );\n",
               "t.conf:2: sources[0].tolerance_s: must be between 0 and 86400");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"x\" ];\n"
               "  replay_cache_bytes = 65535; } );\n",
               "t.conf:2: sources[0].replay_cache_bytes: must be between 65536 and 1073741824");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"x\" ];\n"
               "  replay_cache_bytes = 1073741825L; } );\n",
               "t.conf:2: sources[0].replay_cache_bytes: must be between 65536 and 1073741824");
    {
        struct hq_config *c = load_ok("sources = ( { name = \"a\"; scheme = \"github\"; "
                                      "secrets = [ \"x\" ]; replay_cache_bytes = 65536; } );\n");
        assert_true(c->sources[0].replay_cache_bytes == 65536);
        hq_config_free(c);
    }
    expect_err("broker = { heartbeat_s = 3601; };\n",
               "t.conf:1: broker.heartbeat_s: must be between 0 and 3600");
    expect_err("gateway = { max_body_bytes = 0; };\n",
               "t.conf:1: gateway.max_body_bytes: must be between 1 and 67108864");
    expect_err("gateway = { max_body_bytes = 67108865; };\n",
               "t.conf:1: gateway.max_body_bytes: must be between 1 and 67108864");
    expect_err("gateway = { max_body_bytes = -1; };\n",
               "t.conf:1: gateway.max_body_bytes: must be between 1 and 67108864");
    expect_err("gateway = { max_in_flight = 0; };\n",
               "t.conf:1: gateway.max_in_flight: must be between 1 and 1000000");
    expect_err("gateway = { confirm_timeout_ms = 9; };\n",
               "t.conf:1: gateway.confirm_timeout_ms: must be between 10 and 600000");
    expect_err("gateway = { spool_max_bytes = 1000; };\n",
               "t.conf:1: gateway.spool_max_bytes: must be between 1048576 and");
    expect_err("gateway = { threads = 0; };\n", "t.conf:1: gateway.threads: must be between");
    expect_err("gateway = { publishers = 65; };\n",
               "t.conf:1: gateway.publishers: must be between");
    expect_err("gateway = { request_timeout_ms = 2000;\n  keep_alive_timeout_ms = 3000; };\n",
               "t.conf:2: gateway.keep_alive_timeout_ms: must not exceed request_timeout_ms "
               "(2000)");
    {
        /* the default never exceeds a small request_timeout_ms */
        struct hq_config *c3 = NULL;
        char err3[512];
        assert_int_equal(hq_config_load_string("gateway = { request_timeout_ms = 500; };", "t.conf",
                                               &c3, err3, sizeof(err3)),
                         HQ_OK);
        assert_int_equal(c3->gateway.keep_alive_timeout_ms, 500);
        hq_config_free(c3);
    }
    expect_err("gateway = { request_timeout_ms = 99; };\n",
               "t.conf:1: gateway.request_timeout_ms: must be between 100 and 600000");
    expect_err("archive = { keep_days = -1; };\n", "t.conf:1: archive.keep_days: must be between");
    expect_err("archive = { batch_max = 0; };\n", "t.conf:1: archive.batch_max: must be between");
    expect_err("archive = { batch_ms = 10001; };\n", "t.conf:1: archive.batch_ms: must be between");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  prefetch = 0; } );\n",
               "t.conf:2: consumers[0].prefetch: must be between 1 and 65535");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  concurrency = 257; } );\n",
               "t.conf:2: consumers[0].concurrency: must be between 1 and 256");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  prefetch = 2; concurrency = 4; } );\n",
               "t.conf:2: consumers[0].concurrency: concurrency (4) must not exceed prefetch (2)");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  max_per_second = -0.5; } );\n",
               "t.conf:2: consumers[0].max_per_second: must be between 0 and 1000000");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { max_attempts = 0; }; } );\n",
               "t.conf:2: consumers[0].retry.max_attempts: must be between 1 and 1000");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  redrive = { after = \"1h\"; max_times = 0; }; } );\n",
               "t.conf:2: consumers[0].redrive.max_times: must be between 1 and 1000");
}

static void test_64bit_literals(void **state)
{
    struct hq_config *cfg;

    (void)state;
    /* libconfig 1.5 would read this as 705032704 */
    expect_err2("gateway = {\n  spool_max_bytes = 5000000000;\n};\n",
                "t.conf:2: gateway.spool_max_bytes: 5000000000 does not fit in a 32-bit integer",
                "write 5000000000L");
    /* another setting on the same line is not blamed */
    expect_err("gateway = { max_in_flight = 5; spool_max_bytes = 4294967296; };\n",
               "t.conf:1: gateway.spool_max_bytes: 4294967296 does not fit");
    expect_err("gateway = { max_in_flight = 2147483648; };\n",
               "t.conf:1: gateway.max_in_flight: 2147483648 does not fit in a 32-bit integer");
    expect_err("broker = { heartbeat_s = 0x80000000; };\n",
               "t.conf:1: broker.heartbeat_s: 0x80000000 does not fit in a 32-bit integer");
    expect_err("broker = { heartbeat_s = -5000000000; };\n",
               "t.conf:1: broker.heartbeat_s: -5000000000 does not fit");
    expect_err("gateway = { spool_max_bytes = 99999999999999999999L; };\n",
               "t.conf:1: gateway.spool_max_bytes: 99999999999999999999L does not fit in a "
               "64-bit integer");
    expect_err("gateway = { spool_max_bytes = 0xFFFFFFFFFFFFFFFFL; };\n",
               "t.conf:1: gateway.spool_max_bytes: 0xFFFFFFFFFFFFFFFFL does not fit");
    /* inside arrays and options too */
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  options = { codes = [ 1, 3000000000 ]; }; } );\n",
               "t.conf:2: consumers[0].options.codes[1]: 3000000000 does not fit");
    /* the value on a later line than its name; several literals on a line */
    expect_err("gateway = {\n  spool_max_bytes =\n    5000000000;\n};\n",
               "t.conf:2: gateway.spool_max_bytes: 5000000000 does not fit");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  options = { x = 1; codes = [ 1, 2,\n 3, 3000000000 ]; y = 2; }; } );\n",
               "t.conf:3: consumers[0].options.codes[3]: 3000000000 does not fit");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  options = { x = 1L; y = 5000000000L; z = 99999999999999999999L; }; } );\n",
               "t.conf:2: consumers[0].options.z: 99999999999999999999L does not fit");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  options = { s = \"5000000000\"; x = 0x7fffffff; y = 1e99; z = 0x100000000; };"
               " } );\n",
               "t.conf:2: consumers[0].options.z: 0x100000000 does not fit");
    /* int64 given for a 64-bit key: fine; for a 32-bit key: a range error */
    cfg = load_ok("gateway = { spool_max_bytes = 5000000000L; max_body_bytes = 65536L; };\n");
    assert_true(cfg->gateway.spool_max_bytes == 5000000000ULL);
    assert_true(cfg->gateway.max_body_bytes == 65536);
    hq_config_free(cfg);
    expect_err("gateway = { max_body_bytes = 5000000000L; };\n",
               "t.conf:1: gateway.max_body_bytes: must be between 1 and 67108864");
    expect_err("gateway = { max_in_flight = 5000000000L; };\n",
               "t.conf:1: gateway.max_in_flight: must be between 1 and 1000000");
    /* the limits themselves are fine; numbers inside strings and names are not literals */
    cfg = load_ok("gateway = { spool_dir = \"/x/5000000000\"; confirm_timeout_ms = 0x10; };\n"
                  "# 5000000000 in a comment\n/* 9999999999 */ // 7777777777\n");
    assert_int_equal(cfg->gateway.confirm_timeout_ms, 16);
    hq_config_free(cfg);
}

static void test_names(void **state)
{
    struct hq_config *cfg;

    (void)state;
    expect_err("sources = ( { name = \"GitHub\"; scheme = \"github\"; secrets = [ \"x\" ]; } );\n",
               "t.conf:1: sources[0].name: invalid name \"GitHub\"");
    expect_err("sources = ( { name = \"\"; scheme = \"github\"; secrets = [ \"x\" ]; } );\n",
               "t.conf:1: sources[0].name: invalid name");
    expect_err("sources = ( { name = \"a.b\"; scheme = \"github\"; secrets = [ \"x\" ]; } );\n",
               "t.conf:1: sources[0].name: invalid name");
    expect_err("sources = ( { name = "
               "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\";"
               " scheme = \"github\"; secrets = [ \"x\" ]; } );\n",
               "t.conf:1: sources[0].name: invalid name"); /* 65 */
    cfg = load_ok(
        "sources = ( { name = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\";"
        " scheme = \"github\"; secrets = [ \"x\" ]; } );\n"); /* 64 */
    assert_int_equal(strlen(cfg->sources[0].name), 64);
    hq_config_free(cfg);
    expect_err("sources = ( { scheme = \"github\"; secrets = [ \"x\" ]; } );\n",
               "t.conf:1: sources[0].name: missing (required)");
    expect_err("sources = ( { name = \"a\"; secrets = [ \"x\" ]; } );\n",
               "t.conf:1: sources[0].scheme: missing (required)");
    expect_err("sources = (\n  { name = \"a\"; scheme = \"github\"; secrets = [ \"x\" ]; },\n"
               "  { name = \"a\"; scheme = \"stripe\"; secrets = [ \"x\" ]; }\n);\n",
               "t.conf:3: sources[1].name: duplicate source name \"a\" (also sources[0])");
    expect_err("consumers = (\n  { name = \"c\"; bindings = [ \"#\" ]; handler = \"log\"; },\n"
               "  { name = \"c\"; bindings = [ \"#\" ]; handler = \"log\"; }\n);\n",
               "t.conf:3: consumers[1].name: duplicate consumer name \"c\"");
    expect_err(
        "consumers = ( { name = \"archive\"; bindings = [ \"#\" ]; handler = \"log\"; } );\n",
        "t.conf:1: consumers[0].name: \"archive\" is reserved");
    expect_err(
        "consumers = ( { name = \"unrouted\"; bindings = [ \"#\" ]; handler = \"log\"; } );\n",
        "t.conf:1: consumers[0].name: \"unrouted\" is reserved");
    expect_err("consumers = ( { name = \"events\"; bindings = [ \"#\" ]; handler = \"log\"; } );\n",
               "t.conf:1: consumers[0].name: \"events\" is reserved");
    expect_err(
        "consumers = ( { name = \"lifecycle\"; bindings = [ \"#\" ]; handler = \"log\"; } );\n",
        "t.conf:1: consumers[0].name: \"lifecycle\" is reserved");
    /* a source and a consumer may share a name */
    cfg =
        load_ok("sources = ( { name = \"x\"; scheme = \"none\"; } );\n"
                "consumers = ( { name = \"x\"; bindings = [ \"x.#\" ]; handler = \"log\"; } );\n");
    hq_config_free(cfg);
}

static void test_listen(void **state)
{
    struct hq_config *cfg;

    (void)state;
    expect_err2("gateway = { listen = \"0.0.0.0:8443s\"; };\n",
                "t.conf:1: gateway.listen: \"0.0.0.0:8443s\": TLS listeners",
                "terminate TLS in a reverse proxy");
    expect_err2("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
                "  metrics_listen = \"127.0.0.1:9443s\"; } );\n",
                "t.conf:2: consumers[0].metrics_listen: ", "TLS listeners");
    expect_err("gateway = { listen = \"8080\"; };\n",
               "t.conf:1: gateway.listen: \"8080\": must be");
    expect_err("gateway = { listen = \"127.0.0.1:0\"; };\n", "t.conf:1: gateway.listen: ");
    expect_err("gateway = { listen = \"127.0.0.1:65536\"; };\n", "t.conf:1: gateway.listen: ");
    expect_err("gateway = { listen = \"127.0.0.1:\"; };\n", "t.conf:1: gateway.listen: ");
    expect_err("gateway = { listen = \"127.0.0.1:80x\"; };\n", "t.conf:1: gateway.listen: ");
    expect_err("gateway = { listen = \"127.0.0.1:8080r\"; };\n", "t.conf:1: gateway.listen: ");
    expect_err("gateway = { listen = \"example.com:80\"; };\n", "t.conf:1: gateway.listen: ");
    expect_err("gateway = { listen = \"1.2.3:80\"; };\n", "t.conf:1: gateway.listen: ");
    expect_err2("gateway = { listen = \"[::1]:8080\"; };\n", "t.conf:1: gateway.listen: ", "IPv6");
    expect_err("gateway = { listen = \"127.0.0.1:80,127.0.0.1:81\"; };\n",
               "t.conf:1: gateway.listen: ");
    expect_err("gateway = { listen = \"127.0.0.1:9000\"; metrics_listen = \"localhost:9000\"; };\n",
               "t.conf:1: gateway.metrics_listen: same address as gateway.listen");
    expect_err("archive = { metrics_listen = \":9000\"; };\n",
               "t.conf:1: archive.metrics_listen: ");
    cfg = load_ok("gateway = { listen = \"localhost:65535\"; metrics_listen = \"*:1\"; };\n");
    assert_string_equal(cfg->gateway.listen, "127.0.0.1:65535");
    assert_string_equal(cfg->gateway.metrics_listen, "0.0.0.0:1");
    hq_config_free(cfg);
}

static void test_broker(void **state)
{
    struct hq_config *cfg;
    char ca[600];

    (void)state;
    expect_err("broker = { uris = [ ]; };\n", "t.conf:1: broker.uris: must not be empty");
    expect_err("broker = {\n  uris = [ \"amqp://h/\",\n  \"http://h/\" ];\n};\n",
               "t.conf:3: broker.uris[1]: must start with amqp:// or amqps://");
    expect_err("broker = { uris = [ \"amqp://\" ]; };\n", "t.conf:1: broker.uris[0]: needs a host");
    expect_err("broker = { uris = [ \"amqp://user:pw@/vh\" ]; };\n",
               "t.conf:1: broker.uris[0]: needs a host");
    expect_err("broker = { uris = [ \"amqp://h:0/\" ]; };\n",
               "t.conf:1: broker.uris[0]: port must be");
    expect_err("broker = { uris = [ \"amqp://h:99999/\" ]; };\n",
               "t.conf:1: broker.uris[0]: port must be");
    expect_err("broker = { uris = [ \"amqp://h /\" ]; };\n", "t.conf:1: broker.uris[0]: ");
    /* the password never appears in a message */
    {
        struct hq_config *c2 = NULL;
        char err[512];
        assert_int_equal(
            hq_config_load_string("broker = { uris = [ \"amqp://u:hunter2@h:x/\" ]; };", "t.conf",
                                  &c2, err, sizeof(err)),
            HQ_ECONFIG);
        assert_null(strstr(err, "hunter2"));
    }
    expect_err("broker = { uris = [ \"amqps://h/\" ]; };\n",
               "t.conf:1: broker.uris: amqps:// needs a broker.tls group");
    expect_err(
        "broker = { uris = [ \"amqps://a/\", \"amqp://b/\" ]; tls = { verify_peer = false; }; };\n",
        "t.conf:1: broker.uris: do not mix amqp:// and amqps://");
    expect_err("broker = {\n  tls = { verify_peer = false; };\n};\n",
               "t.conf:2: broker.tls: set, but no broker URI uses amqps://");
    expect_err("broker = { uris = [ \"amqps://h/\" ];\n  tls = { verify_peer = true; }; };\n",
               "t.conf:2: broker.tls.ca_file: required while verify_peer is true");
    expect_err("broker = { uris = [ \"amqps://h/\" ];\n  tls = { ca_file = "
               "\"/nonexistent/ca.pem\"; }; };\n",
               "t.conf:2: broker.tls.ca_file: cannot use /nonexistent/ca.pem");
    expect_err("broker = { uris = [ \"amqps://h/\" ];\n"
               "  tls = { verify_peer = false; cert_file = \"/etc/hostname\"; }; };\n",
               "t.conf:2: broker.tls.key_file: cert_file and key_file go together");
    write_str("ca.pem", "x");
    snprintf(ca, sizeof(ca),
             "broker = { uris = [ \"amqps://u:p@rabbit.example.com:5671/%%2f\" ];\n"
             "  tls = { ca_file = \"%s\"; cert_file = \"%s\"; key_file = \"%s\"; }; };\n",
             tmp_path("ca.pem"), tmp_path("ca.pem"), tmp_path("ca.pem"));
    cfg = load_ok(ca);
    assert_true(cfg->broker.tls.enabled);
    assert_true(cfg->broker.tls.verify_peer);
    assert_string_equal(cfg->broker.tls.ca_file, tmp_path("ca.pem"));
    assert_non_null(cfg->broker.tls.key_file);
    hq_config_free(cfg);
    cfg =
        load_ok("broker = { uris = [ \"amqps://[::1]:5671\" ]; tls = { verify_peer = false; }; };");
    assert_false(cfg->broker.tls.verify_peer);
    hq_config_free(cfg);
    expect_err("broker = { exchange = \"amq.topic\"; };\n",
               "t.conf:1: broker.exchange: names starting with \"amq.\" are reserved");
    expect_err("broker = { exchange = \"a b\"; };\n", "t.conf:1: broker.exchange: exchange names");
    expect_err("broker = { exchange = \"\"; };\n", "t.conf:1: broker.exchange: must not be empty");
    expect_err("broker = { exchange = \"hookmq.unrouted\"; };\n", "t.conf:1: broker.exchange: ");
    expect_err2("broker = { queue_type = \"mirrored\"; };\n",
                "t.conf:1: broker.queue_type: \"mirrored\" is not one of: quorum, classic", NULL);
}

static void test_schemes(void **state)
{
    struct hq_config *cfg;
    const struct hq_source_cfg *s;
    int i;
    enum hq_scheme sc;

    (void)state;
    for (i = 0; i < HQ_SCHEME__COUNT; i++) {
        assert_non_null(hq_scheme_name((enum hq_scheme)i));
        assert_int_equal(hq_scheme_from_name(hq_scheme_name((enum hq_scheme)i), &sc), HQ_OK);
        assert_int_equal(sc, i);
    }
    assert_string_equal(hq_scheme_name(HQ_SCHEME_STANDARD), "standard");
    assert_null(hq_scheme_name(HQ_SCHEME__COUNT));
    assert_null(hq_scheme_name((enum hq_scheme) - 1));
    assert_int_equal(hq_scheme_from_name("svix", &sc), HQ_ENOTFOUND);
    assert_int_equal(hq_scheme_from_name("Stripe", &sc), HQ_ENOTFOUND);
    assert_int_equal(hq_scheme_from_name(NULL, &sc), HQ_ENOTFOUND);

    expect_err2("sources = ( { name = \"a\"; scheme = \"svix\"; } );\n",
                "t.conf:1: sources[0].scheme: \"svix\" is not one of: stripe, github, standard",
                NULL);
    expect_err("sources = ( { name = \"a\";\n  scheme = \"hmac\"; secrets = [ \"k\" ]; } );\n",
               "t.conf:1: sources[0].header: required for scheme hmac");
    expect_err("sources = ( { name = \"a\"; scheme = \"hmac\"; secrets = [ \"k\" ];\n"
               "  header = \"X Sig\"; } );\n",
               "t.conf:2: sources[0].header: \"X Sig\" is not a valid HTTP header name");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"k\" ];\n"
               "  header = \"X-Sig\"; } );\n",
               "t.conf:2: sources[0].header: only for schemes hmac and token (this is github)");
    expect_err("sources = ( { name = \"a\"; scheme = \"stripe\"; secrets = [ \"k\" ];\n"
               "  algorithm = \"sha1\"; } );\n",
               "t.conf:2: sources[0].algorithm: only for scheme hmac (this is stripe)");
    expect_err("sources = ( { name = \"a\"; scheme = \"token\"; secrets = [ \"k\" ];\n"
               "  encoding = \"hex\"; } );\n",
               "t.conf:2: sources[0].encoding: only for scheme hmac");
    expect_err("sources = ( { name = \"a\"; scheme = \"hmac\"; secrets = [ \"k\" ];\n"
               "  header = \"X-Sig\"; algorithm = \"md5\"; } );\n",
               "t.conf:2: sources[0].algorithm: \"md5\" is not one of: sha256, sha1, sha512");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"k\" ];\n"
               "  tolerance_s = 10; } );\n",
               "t.conf:2: sources[0].tolerance_s: scheme github has no signed timestamp");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"k\" ];\n"
               "  url = \"https://x/\"; } );\n",
               "t.conf:2: sources[0].url: only for schemes twilio and square");
    expect_err("sources = ( { name = \"a\"; scheme = \"square\"; secrets = [ \"k\" ];\n"
               "  url = \"ftp://x/\"; } );\n",
               "t.conf:2: sources[0].url: must start with https:// or http://");
    /* twilio and square sign a URL: it is configured, never rebuilt from the request's Host */
    expect_err("sources = ( { name = \"calls\";\n"
               "  scheme = \"twilio\"; secrets = [ \"t\" ]; } );\n",
               "t.conf:1: sources[0].url: required for scheme twilio: the public URL the "
               "provider signs, e.g. \"https://hooks.example.com/webhooks/calls\"");
    expect_err("sources = ( { name = \"sq\"; scheme = \"square\";\n  secrets = [ \"k\" ]; } );\n",
               "t.conf:1: sources[0].url: required for scheme square");
    expect_err("sources = ( { name = \"a\";\n  scheme = \"github\"; } );\n",
               "t.conf:1: sources[0].secrets: scheme github needs at least one secret");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\";\n  secrets = [ ]; } );\n",
               "t.conf:2: sources[0].secrets: scheme github needs at least one secret");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"\" ]; } );\n",
               "t.conf:1: sources[0].secrets[0]: must not be empty");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\";\n  secrets = [ \"x\" ]; } );\n",
               "t.conf:2: sources[0].secrets: scheme none takes no secrets");
    /* Standard Webhooks secrets must decode; the message never shows the secret */
    expect_err("sources = ( { name = \"a\"; scheme = \"standard\";\n"
               "  secrets = [ \"whsec_not*base64!\" ]; } );\n",
               "t.conf:1: sources[0].secrets: secret 1 is not a Standard Webhooks secret");
    {
        struct hq_config *c2 = NULL;
        char err[512];
        assert_int_equal(hq_config_load_string("sources = ( { name = \"a\"; scheme = \"standard\"; "
                                               "secrets = [ \"whsec_not*base64!\" ]; } );",
                                               "t.conf", &c2, err, sizeof(err)),
                         HQ_ECONFIG);
        assert_null(strstr(err, "not*base64"));
    }
    expect_err(
        "sources = ( { name = \"a\"; scheme = \"standard\"; secrets = [ \"whsec_\" ]; } );\n",
        "t.conf:1: sources[0].secrets: secret 1 is not a Standard Webhooks secret");
    expect_err("sources = ( { name = \"a\"; scheme = \"standard\";\n"
               "  secrets = [ \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"x=y\" ]; } );\n",
               "t.conf:1: sources[0].secrets: secret 2 is not a Standard Webhooks secret");
    /* issue 11 item 11: a whsec_ secret in unpadded base64 (16 and 17 bytes: "==" and "="
     * dropped) loads, as the official libraries accept it */
    cfg = load_ok("sources = ( { name = \"a\"; scheme = \"standard\";\n"
                  "  secrets = [ \"whsec_AQIDBAUGBwgJCgsMDQ4PEA\",\n"
                  "              \"whsec_AQIDBAUGBwgJCgsMDQ4PEBE\",\n"
                  "              \"AQIDBAUGBwgJCgsMDQ4PEA\" ]; } );\n");
    assert_int_equal(hq_config_source(cfg, "a")->n_secrets, 3);
    hq_config_free(cfg);
    expect_err("sources = ( { name = \"a\"; scheme = \"basic\"; secrets = [ \"nocolon\" ]; } );\n",
               "t.conf:1: sources[0].secrets: secret 1 must be \"user:password\"");
    cfg = load_ok(
        "sources = ( { name = \"a\"; scheme = \"basic\"; secrets = [ \"u:p\" ]; },\n"
        "  { name = \"b\"; scheme = \"token\"; secrets = [ \"t\" ]; },\n"
        "  { name = \"c\"; scheme = \"token\"; secrets = [ \"t\" ]; header = \"X-T\";"
        "    prefix = \"Token \"; },\n"
        "  { name = \"d\"; scheme = \"standard\"; secrets = [ \"MfKQ9r8GKYqrTwjUPD8I\" ]; },\n"
        "  { name = \"e\"; scheme = \"square\"; secrets = [ \"s\" ];\n"
        "    url = \"https://hooks.example.com/webhooks/e\"; },\n"
        "  { name = \"f\"; scheme = \"paddle\"; secrets = [ \"s\" ]; tolerance_s = 5; }\n"
        ");\n");
    s = hq_config_source(cfg, "b");
    assert_string_equal(s->header, "Authorization");
    assert_null(s->prefix); /* the verifier's default: "Bearer ", case-insensitive */
    s = hq_config_source(cfg, "c");
    assert_string_equal(s->header, "X-T");
    assert_string_equal(s->prefix, "Token ");
    assert_string_equal(hq_config_source(cfg, "e")->url, "https://hooks.example.com/webhooks/e");
    assert_int_equal(hq_config_source(cfg, "f")->tolerance_s, 5);
    hq_config_free(cfg);
}

static void test_selectors(void **state)
{
    struct hq_config *cfg;

    (void)state;
    expect_err("sources = ( { name = \"a\"; scheme = \"none\";\n  event_type = \"jsn:/x\"; } );\n",
               "t.conf:2: sources[0].event_type: \"jsn:/x\": must be \"json:/pointer\"");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_type = \"json:type\"; } );\n",
               "t.conf:1: sources[0].event_type: \"json:type\": a json: selector needs");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_type = \"json:/a~2\"; } );\n",
               "t.conf:1: sources[0].event_type: ");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_id = \"header:\"; } );\n",
               "t.conf:1: sources[0].event_id: ");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_id = \"header:X Id\"; } );\n",
               "t.conf:1: sources[0].event_id: ");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_id = \"const:\"; } );\n",
               "t.conf:1: sources[0].event_id: ");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_id = \"form:\"; } );\n",
               "t.conf:1: sources[0].event_id: ");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_id = \"/id\"; } );\n",
               "t.conf:1: sources[0].event_id: ");
    expect_err("sources = ( { name = \"a\"; scheme = \"none\"; event_id = 5; } );\n",
               "t.conf:1: sources[0].event_id: must be a string");
    cfg =
        load_ok("sources = ( { name = \"a\"; scheme = \"none\"; event_type = \"json:/a~0b/~1c/0\";"
                " event_id = \"header:X-Request-Id\"; } );\n");
    assert_string_equal(cfg->sources[0].event_type, "json:/a~0b/~1c/0");
    hq_config_free(cfg);
}

static void test_cidrs(void **state)
{
    (void)state;
    expect_err2("sources = ( { name = \"a\"; scheme = \"none\";\n"
                "  allow_from = [ \"10.0.0.0/8\",\n \"10.0.0.1/8\" ]; } );\n",
                "t.conf:3: sources[0].allow_from[1]: invalid CIDR \"10.0.0.1/8\"", "host bits");
    expect_err("gateway = { trusted_proxies = [ \"300.0.0.1\" ]; };\n",
               "t.conf:1: gateway.trusted_proxies[0]: invalid CIDR");
    expect_err("gateway = { trusted_proxies = [ \"::1/200\" ]; };\n",
               "t.conf:1: gateway.trusted_proxies[0]: invalid CIDR");
    expect_err("gateway = { trusted_proxies = [ \"\" ]; };\n",
               "t.conf:1: gateway.trusted_proxies[0]: invalid CIDR");
}

static void test_consumers(void **state)
{
    (void)state;
    expect_err("consumers = ( { name = \"a\"; handler = \"log\"; } );\n",
               "t.conf:1: consumers[0].bindings: missing (required)");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; } );\n",
               "t.conf:1: consumers[0].handler: missing (required)");
    expect_err("consumers = ( { name = \"a\";\n  bindings = [ ]; handler = \"log\"; } );\n",
               "t.conf:2: consumers[0].bindings: must not be empty");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"a..b\" ]; handler = \"log\"; } );\n",
               "t.conf:1: consumers[0].bindings[0]: \"a..b\": empty word");
    expect_err(
        "consumers = ( { name = \"a\"; bindings = [ \"#\", \".a\" ]; handler = \"log\"; } );\n",
        "t.conf:1: consumers[0].bindings[1]: ");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"a.\" ]; handler = \"log\"; } );\n",
               "t.conf:1: consumers[0].bindings[0]: ");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"a.*b\" ]; handler = \"log\"; } );\n",
               "t.conf:1: consumers[0].bindings[0]: \"a.*b\": '*' and '#' must be whole words");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"a.b#\" ]; handler = \"log\"; } );\n",
               "t.conf:1: consumers[0].bindings[0]: ");
    expect_err(
        "consumers = ( { name = \"a\"; bindings = [ \"Stripe.#\" ]; handler = \"log\"; } );\n",
        "t.conf:1: consumers[0].bindings[0]: ");
    {
        char text[1024], word[300];
        memset(word, 'a', 256);
        word[256] = '\0';
        snprintf(text, sizeof(text),
                 "consumers = ( { name = \"a\"; bindings = [ \"%s\" ]; handler = \"log\"; } );\n",
                 word);
        expect_err(text, "t.conf:1: consumers[0].bindings[0]: ");
    }
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"python\"; } );\n",
               "t.conf:1: consumers[0].handler: must be exec, http, log or a path");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  options = { nested = { a = 1; }; }; } );\n",
               "t.conf:2: consumers[0].options.nested: options hold scalars and arrays");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  options = { l = ( 1, { a = 1; } ); }; } );\n",
               "t.conf:2: consumers[0].options.l[1]: options hold scalars");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"exec\";\n"
               "  options = { timeout = 30; }; } );\n",
               "t.conf:2: consumers[0].options.timeout: must be a string with a unit");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  redrive = { max_times = 2; }; } );\n",
               "t.conf:2: consumers[0].redrive.after: missing (required)");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  dedupe = { window = \"1h\"; }; } );\n",
               "t.conf:2: consumers[0].dedupe.path: missing (required)");
    /* durable steps: steps.max_bytes, default 65536, range 1..98304 */
    {
        struct hq_config *cfg =
            load_ok("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\"; },\n"
                    "  { name = \"b\"; bindings = [ \"#\" ]; handler = \"log\";\n"
                    "    steps = { max_bytes = 1024; }; } );\n");
        assert_int_equal(hq_config_consumer(cfg, "a")->steps_max_bytes, 65536);
        assert_int_equal(hq_config_consumer(cfg, "b")->steps_max_bytes, 1024);
        hq_config_free(cfg);
    }
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  steps = { max_bytes = 98305; }; } );\n",
               "t.conf:2: consumers[0].steps.max_bytes: ");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  steps = { max_bytes = 0; }; } );\n",
               "t.conf:2: consumers[0].steps.max_bytes: ");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  steps = { size = 5; }; } );\n",
               "t.conf:2: consumers[0].steps.size: ");
}

static void test_durations(void **state)
{
    (void)state;
    expect_err2("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
                "  retry = { delays = [ \"10s\", \"10\" ]; }; } );\n",
                "t.conf:2: consumers[0].retry.delays[1]: invalid duration \"10\"", "ms, s, m, h");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { delays = [ \"1.5s\" ]; }; } );\n",
               "t.conf:2: consumers[0].retry.delays[0]: invalid duration");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { delays = [ 10 ]; }; } );\n",
               "t.conf:2: consumers[0].retry.delays[0]: must be a string with a unit");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { delays = [ \"8d\" ]; }; } );\n",
               "t.conf:2: consumers[0].retry.delays[0]: must be between 1ms and 7d");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { delays = [ \"0ms\" ]; }; } );\n",
               "t.conf:2: consumers[0].retry.delays[0]: must be between 1ms and 7d");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { delays = [ ]; }; } );\n",
               "t.conf:2: consumers[0].retry.delays: needs 1 to 16 delays");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  retry = { delays = [ \"1s\",\"1s\",\"1s\",\"1s\",\"1s\",\"1s\",\"1s\",\"1s\","
               "\"1s\",\"1s\",\"1s\",\"1s\",\"1s\",\"1s\",\"1s\",\"1s\",\"1s\" ]; }; } );\n",
               "t.conf:2: consumers[0].retry.delays: needs 1 to 16 delays");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  redrive = { after = \"0s\"; }; } );\n",
               "t.conf:2: consumers[0].redrive.after: must be between 1s and 30d");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  dedupe = { window = \"31d\"; path = \"/x\"; }; } );\n",
               "t.conf:2: consumers[0].dedupe.window: must be between 1s and 30d");
    expect_err("consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
               "  dedupe = { window = \"1 d\"; path = \"/x\"; }; } );\n",
               "t.conf:2: consumers[0].dedupe.window: invalid duration \"1 d\"");
}

static void test_secret_sources(void **state)
{
    struct hq_config *cfg;
    char text[2048];
    const struct hq_source_cfg *s;
    static char big[70000];

    (void)state;
    write_str("nl.key", "file-secret\n");
    write_str("crlf.key", "crlf-secret\r\n");
    write_str("two.key", "two\n\n");
    write_str("raw.key", "raw");
    write_str("empty.key", "");
    write_str("onlynl.key", "\n");
    write_file("nul.key", "a\0b", 3);
    memset(big, 'k', sizeof(big));
    write_file("big.key", big, sizeof(big));
    write_file("max.key", big, 65536);
    setenv("HQ_TEST_SECRET", "env-secret", 1);
    setenv("HQ_TEST_EMPTY", "", 1);
    unsetenv("HQ_TEST_UNSET");

    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\"; secrets = [ \"inline\" ];\n"
             "  secret_files = [ \"%s\", \"%s\", \"%s\", \"%s\", \"%s\" ];\n"
             "  secret_env = [ \"HQ_TEST_SECRET\" ]; } );\n",
             tmp_path("nl.key"), tmp_path("crlf.key"), tmp_path("two.key"), tmp_path("raw.key"),
             tmp_path("max.key"));
    cfg = load_ok(text);
    s = &cfg->sources[0];
    assert_int_equal(s->n_secrets, 7);
    assert_string_equal((char *)s->secrets[0].data, "inline");
    assert_string_equal((char *)s->secrets[1].data, "file-secret");
    assert_int_equal(s->secrets[1].len, 11);
    assert_string_equal((char *)s->secrets[2].data, "crlf-secret");
    assert_int_equal(s->secrets[2].len, 11);
    assert_string_equal((char *)s->secrets[3].data, "two\n"); /* only ONE newline stripped */
    assert_int_equal(s->secrets[3].len, 4);
    assert_string_equal((char *)s->secrets[4].data, "raw");
    assert_int_equal(s->secrets[5].len, 65536);
    assert_string_equal((char *)s->secrets[6].data, "env-secret");
    hq_config_free(cfg);

    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_env = [ \"HQ_TEST_SECRET\", \"HQ_TEST_UNSET\" ]; } );\n");
    expect_err(text, "t.conf:2: sources[0].secret_env[1]: environment variable HQ_TEST_UNSET is "
                     "not set");
    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_env = [ \"HQ_TEST_EMPTY\" ]; } );\n");
    expect_err(text, "t.conf:2: sources[0].secret_env[0]: environment variable HQ_TEST_EMPTY is "
                     "empty");
    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_files = [ \"%s\" ]; } );\n",
             tmp_path("missing.key"));
    expect_err2(text, "t.conf:2: sources[0].secret_files[0]: cannot read secret file ",
                "No such file or directory");
    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_files = [ \"%s\" ]; } );\n",
             tmp_path("empty.key"));
    expect_err(text, "t.conf:2: sources[0].secret_files[0]: the secret is empty");
    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_files = [ \"%s\" ]; } );\n",
             tmp_path("onlynl.key"));
    expect_err(text, "t.conf:2: sources[0].secret_files[0]: the secret is empty");
    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_files = [ \"%s\" ]; } );\n",
             tmp_path("nul.key"));
    expect_err(text, "t.conf:2: sources[0].secret_files[0]: the secret contains a NUL byte");
    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_files = [ \"%s\" ]; } );\n",
             tmp_path("big.key"));
    expect_err(text, "t.conf:2: sources[0].secret_files[0]: ");
    snprintf(text, sizeof(text),
             "sources = ( { name = \"a\"; scheme = \"github\";\n"
             "  secret_files = [ \"%s\" ]; } );\n",
             tmpdir);
    expect_err2(text, "t.conf:2: sources[0].secret_files[0]: ", "not a regular file");
    expect_err("sources = ( { name = \"a\"; scheme = \"github\";\n"
               "  secret_files = \"/etc/x\"; } );\n",
               "t.conf:2: sources[0].secret_files: must be an array of strings");
    unsetenv("HQ_TEST_SECRET");
    unsetenv("HQ_TEST_EMPTY");
}

static void test_files_and_includes(void **state)
{
    struct hq_config *cfg = NULL;
    char err[512], want[600];
    const char *main_conf;

    (void)state;
    mkdir(tmp_path("sub"), 0700);
    write_str("sub/src.conf", "sources = ( { name = \"inc\"; scheme = \"none\"; } );\n");
    write_str("main.conf", "log = { level = \"warn\"; };\n@include \"sub/src.conf\"\n");
    main_conf = tmp_path("main.conf");
    assert_int_equal(hq_config_load(main_conf, &cfg, err, sizeof(err)), HQ_OK);
    assert_string_equal(cfg->path, main_conf);
    assert_int_equal(cfg->log_level, HQ_LOG_WARN);
    assert_non_null(hq_config_source(cfg, "inc"));
    hq_config_free(cfg);

    /* an error in the included file names that file and its line */
    write_str("sub/bad.conf", "\n\nsources = ( { name = \"Bad\"; scheme = \"none\"; } );\n");
    write_str("main2.conf", "@include \"sub/bad.conf\"\n");
    cfg = NULL;
    assert_int_equal(hq_config_load(tmp_path("main2.conf"), &cfg, err, sizeof(err)), HQ_ECONFIG);
    assert_null(cfg);
    snprintf(want, sizeof(want), "%s/sub/bad.conf:3: sources[0].name: invalid name", tmpdir);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("%s", err);

    /* a 64-bit literal in an included file */
    write_str("sub/big.conf", "gateway = {\n spool_max_bytes = 8589934592; };\n");
    write_str("main3.conf", "log = { };\n@include \"sub/big.conf\"\n");
    assert_int_equal(hq_config_load(tmp_path("main3.conf"), &cfg, err, sizeof(err)), HQ_ECONFIG);
    snprintf(want, sizeof(want), "%s/sub/big.conf:2: gateway.spool_max_bytes: 8589934592 does",
             tmpdir);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("%s", err);

    /* ... also in an array beside 32-bit ones (libconfig 1.7 refuses such an array) */
    write_str("sub/mix.conf", "consumers = ( { name = \"a\"; bindings = [ \"#\" ]; handler = \"log\";\n"
                              "  options = { codes = [ 1, 3000000000 ]; }; } );\n");
    write_str("main6.conf", "@include \"sub/mix.conf\"\n");
    assert_int_equal(hq_config_load(tmp_path("main6.conf"), &cfg, err, sizeof(err)), HQ_ECONFIG);
    snprintf(want, sizeof(want), "%s/sub/mix.conf:2: ", tmpdir);
    if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, "3000000000 does not fit"))
        fail_msg("%s", err);

    /* a missing include is named */
    write_str("main4.conf", "\n@include \"nope.conf\"\n");
    assert_int_equal(hq_config_load(tmp_path("main4.conf"), &cfg, err, sizeof(err)), HQ_ECONFIG);
    snprintf(want, sizeof(want), "%s:2: @include %s/nope.conf: No such file",
             tmp_path("main4.conf"), tmpdir);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("%s", err);

    /* absolute include paths cannot work with libconfig 1.5 */
    write_str("main5.conf", "@include \"/etc/hostname\"\n");
    assert_int_equal(hq_config_load(tmp_path("main5.conf"), &cfg, err, sizeof(err)), HQ_ECONFIG);
    assert_non_null(strstr(err, ":1: @include \"/etc/hostname\": use a path relative"));

    /* an include cycle stops */
    write_str("loop.conf", "@include \"loop.conf\"\n");
    assert_int_equal(hq_config_load(tmp_path("loop.conf"), &cfg, err, sizeof(err)), HQ_ECONFIG);
    assert_non_null(strstr(err, "nested more than"));

    /* no includes from a string */
    expect_err("@include \"x.conf\"\n", "t.conf:1: @include is not supported here");

    /* unreadable main file */
    assert_int_equal(hq_config_load(tmp_path("none.conf"), &cfg, err, sizeof(err)), HQ_ECONFIG);
    snprintf(want, sizeof(want), "%s:0: cannot read: No such file", tmp_path("none.conf"));
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("%s", err);
    assert_int_equal(hq_config_load(tmpdir, &cfg, err, sizeof(err)), HQ_ECONFIG);
    assert_non_null(strstr(err, ":0: cannot read: not a regular file"));
    assert_int_equal(hq_config_load(NULL, &cfg, err, sizeof(err)), HQ_ECONFIG);
}

static void test_hostile_text(void **state)
{
    char *deep, err[64];
    struct hq_config *cfg = NULL;
    size_t i, n = 20000;

    (void)state;
    /* deep nesting */
    deep = malloc(2 * n + 16);
    assert_non_null(deep);
    memcpy(deep, "a = ", 4);
    for (i = 0; i < n; i++)
        deep[4 + i] = '(';
    for (i = 0; i < n; i++)
        deep[4 + n + i] = ')';
    memcpy(deep + 4 + 2 * n, ";", 2);
    assert_int_equal(hq_config_load_string(deep, "t.conf", &cfg, err, sizeof(err)), HQ_ECONFIG);
    assert_null(cfg);
    free(deep);
    /* a tiny error buffer truncates, still NUL-terminated */
    assert_int_equal(hq_config_load_string("brokr = 1;", "t.conf", &cfg, err, 8), HQ_ECONFIG);
    assert_int_equal(strlen(err), 7);
    assert_int_equal(hq_config_load_string("brokr = 1;", "t.conf", &cfg, NULL, 0), HQ_ECONFIG);
    /* control characters in strings */
    expect_err("gateway = { spool_dir = \"/a\\nb\"; };\n", "t.conf:1: gateway.spool_dir: contains");
    /* non-ASCII values are shown as '?' */
    expect_err("log = { level = \"\xc3\xa9\"; };\n", "t.conf:1: log.level: \"??\" is not one of");
    assert_int_equal(hq_config_load_string(NULL, "t.conf", &cfg, err, sizeof(err)), HQ_ECONFIG);
}

static void test_default_path(void **state)
{
    (void)state;
    unsetenv("HOOKMQ_CONFIG");
    assert_string_equal(hq_config_default_path("x.conf"), "x.conf");
    assert_string_equal(hq_config_default_path(NULL), "/etc/hookmq/hookmq.conf");
    setenv("HOOKMQ_CONFIG", "/tmp/env.conf", 1);
    assert_string_equal(hq_config_default_path(NULL), "/tmp/env.conf");
    assert_string_equal(hq_config_default_path(""), "/tmp/env.conf");
    assert_string_equal(hq_config_default_path("cli.conf"), "cli.conf");
    setenv("HOOKMQ_CONFIG", "", 1);
    assert_string_equal(hq_config_default_path(NULL), "/etc/hookmq/hookmq.conf");
    unsetenv("HOOKMQ_CONFIG");
}

/* the console group: users with checked password hashes and roles, TTL range, defaults */
static void test_console(void **state)
{
    static const char hash[] = "$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0ODw$"
                               "V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk";
    struct hq_config *cfg;
    char text[1024];

    (void)state;
    cfg = load_ok("log = { level = \"info\"; };");
    assert_string_equal(cfg->console.listen, "127.0.0.1:8088");
    assert_int_equal(cfg->console.n_users, 0);
    assert_true(cfg->console.session_ttl_ms == 8 * 3600 * 1000ULL);
    assert_false(cfg->console.read_only);
    hq_config_free(cfg);
    snprintf(text, sizeof(text),
             "console = { listen = \"127.0.0.1:9000\"; session_ttl = \"30m\"; read_only = true;\n"
             "  users = ( { name = \"ops\"; password_hash = \"%s\"; role = \"operator\"; },\n"
             "            { name = \"ro\"; password_hash = \"%s\"; role = \"viewer\"; } ); };",
             hash, hash);
    cfg = load_ok(text);
    assert_string_equal(cfg->console.listen, "127.0.0.1:9000");
    assert_int_equal(cfg->console.n_users, 2);
    assert_string_equal(cfg->console.users[0].name, "ops");
    assert_int_equal(cfg->console.users[0].role, HQ_ROLE_OPERATOR);
    assert_int_equal(cfg->console.users[1].role, HQ_ROLE_VIEWER);
    assert_string_equal(cfg->console.users[1].password_hash, hash);
    assert_true(cfg->console.session_ttl_ms == 30 * 60 * 1000ULL);
    assert_true(cfg->console.read_only);
    hq_config_free(cfg);

    expect_err2("console = { users = ( { name = \"ops\"; password_hash = \"hunter2\";\n"
                "role = \"viewer\"; } ); };",
                "t.conf:1: console.users[0].password_hash", "not a password hash");
    snprintf(text, sizeof(text),
             "console = { users = ( { name = \"ops\"; password_hash = \"%s\"; role = \"root\"; } ); };",
             hash);
    expect_err2(text, "t.conf:1: console.users[0].role", "viewer, operator");
    snprintf(text, sizeof(text),
             "console = { users = ( { name = \"ops\"; password_hash = \"%s\"; } ); };", hash);
    expect_err2(text, "t.conf:1: console.users[0]", "role");
    snprintf(text, sizeof(text),
             "console = { users = ( { name = \"a\"; password_hash = \"%s\"; role = \"viewer\"; },\n"
             "{ name = \"a\"; password_hash = \"%s\"; role = \"viewer\"; } ); };", hash, hash);
    expect_err2(text, "t.conf:2:", "duplicate user name");
    expect_err2("console = { session_ttl = \"500ms\"; };", "t.conf:1: console.session_ttl",
                "between 1s and 30d");
    expect_err2("console = { sesion_ttl = \"1h\"; };", "t.conf:1: console.sesion_ttl",
                "did you mean \"session_ttl\"");
    expect_err2("console = { users = { name = \"a\"; }; };", "t.conf:1: console.users", "list");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_source_and_consumer_defaults),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_example_configs),
        cmocka_unit_test(test_data_dir_configs),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_64bit_literals),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_broker),
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_consumers),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_secret_sources),
        cmocka_unit_test(test_files_and_includes),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_console),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
