/* Test plugin "badabi": a table built for ABI major 99 (it does not refuse the host itself,
 * so the host's own check is what stops it). */
#include "tp.h"

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    (void)state;
    (void)ev;
    (void)err;
    return HQ_VERDICT_ACK;
}

static const struct hq_handler table = {
    .abi_major = 99,
    .abi_minor = 0,
    .struct_size = sizeof(struct hq_handler),
    .name = "badabi",
    .version = "test",
    .init = tp_init_none,
    .handle = handle,
    .fini = tp_fini_none,
};

HQ_HANDLER_EXPORT const struct hq_handler *hq_handler_get(uint32_t host_abi_major)
{
    (void)host_abi_major;
    return &table;
}
