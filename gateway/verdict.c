/* verdict.c: the one mapping from the status of a request-handling stage (body read,
 * signature verification, event extraction) to the HTTP answer. A failure of the request
 * (bad signature, malformed body) is a 4xx; a failure on our side (out of memory, an OpenSSL
 * error) is 503 + Retry-After, so the provider retries instead of dropping the event. */
#include "gw.h"

struct gw_verdict gw_verdict(enum gw_stage stage, int rc, const char *reason)
{
    struct gw_verdict v = {503, "internal", GW_RETRY_AFTER_INTERNAL_S};

    if (rc == HQ_OK)
        return (struct gw_verdict){0, NULL, 0};
    switch (stage) {
    case GW_STAGE_BODY:
        if (rc == HQ_ETOOBIG)
            v = (struct gw_verdict){413, NULL, 0};
        else if (rc == HQ_ETIMEDOUT)
            v = (struct gw_verdict){408, "body_timeout", 0};
        else if (rc == HQ_EIO)
            v = (struct gw_verdict){400, "incomplete_body", 0};
        break;
    case GW_STAGE_VERIFY:
        if (rc == HQ_EAUTH || rc == HQ_ESTALE)
            v = (struct gw_verdict){401, reason ? reason : "unknown", 0};
        break;
    case GW_STAGE_EXTRACT:
        if (rc == HQ_EINVAL)
            v = (struct gw_verdict){400, reason ? reason : "bad_event", 0};
        break;
    }
    return v;
}
