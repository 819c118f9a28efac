/* Test plugin "nullget": hq_handler_get refuses every host (returns NULL). */
#include "hookmq/handler.h"

HQ_HANDLER_EXPORT const struct hq_handler *hq_handler_get(uint32_t host_abi_major)
{
    (void)host_abi_major;
    return NULL;
}
