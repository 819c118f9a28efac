/* fuzz_steps: the two parsers of durable steps on hostile bytes (core/steps.c): the text form
 * of the hookmq-steps header and the JSON form of the http handler's Hookmq-Steps response
 * header. Whatever parses must re-encode and parse again to the same steps. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_steps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void same(const struct hq_steps *a, const struct hq_steps *b)
{
    size_t i;

    check(a->n == b->n, "count");
    for (i = 0; i < a->n; i++) {
        check(a->v[i].name_len == b->v[i].name_len &&
                  strcmp(a->v[i].name, b->v[i].name) == 0,
              "name");
        check(a->v[i].len == b->v[i].len &&
                  (a->v[i].len == 0 || memcmp(a->v[i].val, b->v[i].val, a->v[i].len) == 0),
              "value");
    }
}

/* Re-encode s in both forms and parse them again. */
static void roundtrip(const struct hq_steps *s)
{
    struct hq_buf text = HQ_BUF_INIT(1u << 24), json = HQ_BUF_INIT(1u << 24);
    struct hq_steps again;
    size_t i;

    check(hq_buf_append(&json, "{", 1) == HQ_OK, "json open");
    for (i = 0; i < s->n; i++) {
        check(hq_step_name_ok(s->v[i].name, s->v[i].name_len), "parsed name valid");
        check(hq_steps_append(&text, s->v[i].name, s->v[i].name_len, s->v[i].val, s->v[i].len) ==
                  HQ_OK,
              "text append");
        check(hq_steps_json_add(&json, s->v[i].name, s->v[i].name_len, s->v[i].val,
                                s->v[i].len) == HQ_OK,
              "json add");
    }
    check(hq_buf_append(&json, "}", 1) == HQ_OK, "json close");
    check(hq_steps_parse(text.data ? (const char *)text.data : "", &again) == HQ_OK, "text again");
    same(s, &again);
    hq_steps_free(&again);
    check(hq_steps_parse_json((const char *)json.data, json.len, &again) == HQ_OK, "json again");
    same(s, &again);
    hq_steps_free(&again);
    hq_buf_free(&text);
    hq_buf_free(&json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct hq_steps s;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (!memchr(data, '\0', size) && hq_steps_parse(text, &s) == HQ_OK) {
        roundtrip(&s);
        hq_steps_free(&s);
    }
    if (hq_steps_parse_json(text, size, &s) == HQ_OK) {
        roundtrip(&s);
        hq_steps_free(&s);
    }
    free(text);
    return 0;
}
