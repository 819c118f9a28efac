/* Test plugin "nosym": a valid shared object that exports no hq_handler_get. */
#include "hookmq/handler.h"

HQ_HANDLER_EXPORT int hq_handler_get_typo(void);

HQ_HANDLER_EXPORT int hq_handler_get_typo(void)
{
    return 42;
}
