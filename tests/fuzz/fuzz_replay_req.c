/* fuzz_replay_req: the console's replay request (hq_replay_req_parse, core/replay_req.c) on
 * hostile bytes. Whatever parses is a bounded replay to a named consumer, within the rules of
 * hookmq-replay's command line, and has a spec and a replay id; whatever does not gives a
 * reason and leaves nothing allocated. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_config.h"
#include "hq_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hq_replay_req r;
    struct hq_buf spec = HQ_BUF_INIT(1u << 20);
    char err[256], id[HQ_REPLAY_ID_LEN + 1];
    int rc;

    rc = hq_replay_req_parse((const char *)data, size, 1795946400000LL, &r, err, sizeof(err));
    if (rc != HQ_OK) {
        check(rc == HQ_EINVAL || rc == HQ_ENOMEM, "status");
        check(rc != HQ_EINVAL || err[0], "a reason");
        check(!r.consumer && !r.from && !r.grep, "freed");
        return 0;
    }
    check(r.o.target == HQ_REPLAY_TARGET_CONSUMER && hq_name_valid(r.o.consumer), "consumer");
    check(r.o.from_text || r.o.id, "bounded");
    check(!r.o.from_text || !r.o.to_text || r.o.from_ms < r.o.to_ms, "window");
    check(!r.o.source || hq_name_valid(r.o.source), "source");
    check(r.o.rate >= 0 && r.o.rate <= HQ_REPLAY_RATE_MAX, "rate");
    check(hq_replay_spec(&r.o, &spec) == HQ_OK, "spec");
    hq_replay_id(spec.data, spec.len, id, NULL);
    check(strlen(id) == HQ_REPLAY_ID_LEN, "id");
    hq_buf_free(&spec);
    hq_replay_req_free(&r);
    return 0;
}
