/* Test plugin "short": a table whose struct_size ends before fini (a truncated or foreign
 * table); the host must refuse it without reading past struct_size. */
#include <stddef.h>

#include "tp.h"

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    (void)state;
    (void)ev;
    (void)err;
    return HQ_VERDICT_ACK;
}

static const struct hq_handler table = {
    .abi_major = HQ_HANDLER_ABI_MAJOR,
    .abi_minor = HQ_HANDLER_ABI_MINOR,
    .struct_size = (uint32_t)offsetof(struct hq_handler, fini),
    .name = "short",
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
