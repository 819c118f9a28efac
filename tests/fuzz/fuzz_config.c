/* fuzz_config: hq_config_load_string on arbitrary text (the libconfig parser, the integer-literal
 * scanner, every validator). Whatever loads must also satisfy the loader's invariants: names
 * valid and unique, ranges kept, defaults filled, the error message one line with "name:line:".
 *
 * Input: the config text (the API takes a C string: it ends at the first NUL byte). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libconfig 1.5 leaks its string buffer on some syntax errors (strbuf_append in the scanner);
 * that is not ours to fix, and a config is parsed once per start or SIGHUP. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig.so\n";
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void check_loaded(const struct hq_config *cfg)
{
    size_t i, j;

    check(cfg->broker.n_uris >= 1 && cfg->broker.uris && cfg->broker.exchange, "broker");
    check(cfg->gateway.listen != NULL, "listen");
    check(cfg->gateway.max_body_bytes >= 1 && cfg->gateway.max_body_bytes <= (64u << 20),
          "max_body_bytes");
    check(cfg->archive.dir != NULL, "archive.dir");
    for (i = 0; i < cfg->n_sources; i++) {
        const struct hq_source_cfg *s = &cfg->sources[i];
        check(s->name[0] != '\0' && hq_scheme_name(s->scheme) != NULL, "source");
        check(s->prefix != NULL || s->scheme == HQ_SCHEME_TOKEN, "prefix");
        check(s->scheme == HQ_SCHEME_NONE ? s->n_secrets == 0 : s->n_secrets >= 1, "secrets");
        for (j = 0; j < s->n_secrets; j++)
            check(s->secrets[j].len > 0 && s->secrets[j].data[s->secrets[j].len] == '\0', "secret");
        for (j = 0; j < i; j++)
            check(strcmp(cfg->sources[j].name, s->name) != 0, "unique source");
        check(hq_config_source(cfg, s->name) != NULL, "lookup");
    }
    for (i = 0; i < cfg->n_consumers; i++) {
        const struct hq_consumer_cfg *c = &cfg->consumers[i];
        check(c->n_bindings >= 1 && c->handler != NULL, "consumer");
        check(c->n_delays >= 1 && c->n_delays <= 16, "delays");
        check(c->concurrency <= c->prefetch, "concurrency");
        for (j = 0; j < c->n_options; j++)
            check(c->options[j].key &&
                      (c->options[j].value != NULL) != (c->options[j].values != NULL),
                  "option: a value or values");
        check(hq_config_consumer(cfg, c->name) != NULL, "lookup");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, err[512];
    struct hq_config *cfg = NULL;
    int rc;

    if (size > 65536)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    err[0] = '\0';
    rc = hq_config_load_string(text, "fuzz.conf", &cfg, err, sizeof(err));
    if (rc == HQ_OK) {
        check(cfg != NULL, "cfg");
        check_loaded(cfg);
        hq_config_free(cfg);
    } else {
        check(cfg == NULL, "no cfg on error");
        check(rc == HQ_ECONFIG || rc == HQ_ENOMEM, "status");
        check(strncmp(err, "fuzz.conf:", 10) == 0, "message starts with file:");
        check(strchr(err, '\n') == NULL, "one line");
    }
    free(text);
    return 0;
}
