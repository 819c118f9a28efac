/* fuzz_archive_record: hq_arec_parse on hostile lines (what a damaged or tampered archive
 * segment holds), and the segment index parser on hostile index files.
 *
 * Invariants for a line that parses: its body is exact (re-encoding the message rebuilt by
 * hq_arec_to_msg gives a record that parses to the same body, headers and ids), and the
 * stored line is what was given. An input that starts like an index header ({"v":) is also
 * parsed as an index, once as is and once with its trailing checksum patched to match, so
 * that mutations reach the checks behind the checksum; whatever loads must be consistent. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq__archive.h"
#include "hq_archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void record(const char *p, size_t n)
{
    struct hq_arec r, r2;
    struct hq_msg m;
    struct hq_buf b = HQ_BUF_INIT(64u << 20);
    struct hq_afilter f;

    if (hq_arec_parse(p, n, &r) != HQ_OK)
        return;
    check(r.line && r.line_len <= n, "line kept");
    check(r.source && r.type && r.id && r.routing_key && r.properties_json && r.headers_json,
          "fields set");
    hq_afilter_init(&f);
    f.grep = "a";
    f.type_glob = "*[a-";
    (void)hq_afilter_match(&f, &r);
    if (hq_arec_to_msg(&r, &m) == HQ_OK) {
        check(m.body_len == r.body_len && (!m.body_len || memcmp(m.body, r.body, m.body_len) == 0),
              "to_msg body");
        if (hq_arec_encode_msg(r.kind, &m, 2, 1, &b) == HQ_OK) {
            check(hq_arec_parse((const char *)b.data, b.len, &r2) == HQ_OK, "re-encoded parses");
            check(r2.body_len == r.body_len &&
                      (!r2.body_len || memcmp(r2.body, r.body, r.body_len) == 0),
                  "body round trip");
            check(r2.kind == r.kind, "kind round trip");
            {
                struct hq_msg m2;

                if (hq_arec_to_msg(&r2, &m2) == HQ_OK) {
                    size_t i;

                    check(m2.n_headers == m.n_headers, "header count round trip");
                    for (i = 0; i < m.n_headers; i++) {
                        const struct hq_hdr *h = hq_msg_header(&m2, m.headers[i].key);

                        check(h && h->type == m.headers[i].type, "header round trip");
                        if (h->type == HQ_HDR_STR)
                            check(strcmp(h->str, m.headers[i].str) == 0, "header value");
                        else
                            check(h->num == m.headers[i].num, "header number");
                    }
                    check((!m.message_id && !m2.message_id) ||
                              (m.message_id && m2.message_id &&
                               strcmp(m.message_id, m2.message_id) == 0),
                          "message_id round trip");
                    hq_msg_free(&m2);
                }
            }
            hq_arec_free(&r2);
        }
        hq_msg_free(&m);
    }
    hq_buf_free(&b);
    hq_arec_free(&r);
}

static void index_file(const char *p, size_t n)
{
    struct hq__aidx x;
    uint32_t frames[16];
    uint64_t i;

    if (hq__aidx_parse(p, n, false, true, 0, &x) != HQ_OK)
        return;
    for (i = 0; i < x.n_frames; i++)
        check(x.frames[i].records == 0 || x.frames[i].min_at <= x.frames[i].max_at, "frame range");
    for (i = 0; i < x.n_counts; i++)
        check(x.counts[i].dup <= x.counts[i].n, "dup <= n");
    {
        size_t k, got = hq__aidx_lookup(&x, "evt-1", frames, 16);
        for (k = 0; k < got; k++)
            check(frames[k] < x.n_frames, "lookup frame in range");
    }
    hq__aidx_free(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;

    record(p, size);
    if (size >= 6 && memcmp(data, "{\"v\":", 5) == 0) {
        char *copy;

        index_file(p, size);
        if (size > 8 && (copy = malloc(size)) != NULL) {
            uint64_t h;
            int k;

            memcpy(copy, data, size);
            h = hq_fnv1a64(HQ_FNV1A64_INIT, copy, size - 8);
            for (k = 0; k < 8; k++)
                copy[size - 8 + (size_t)k] = (char)(h >> (8 * k));
            index_file(copy, size);
            free(copy);
        }
    }
    return 0;
}
