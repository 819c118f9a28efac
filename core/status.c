/* status: descriptions of enum hq_status, and the exit code of each. */
#include "hq_status.h"

const char *hq_strerror(int status)
{
    switch (status) {
    case HQ_OK: return "ok";
    case HQ_ENOMEM: return "out of memory";
    case HQ_EINVAL: return "invalid argument or malformed input";
    case HQ_ETOOBIG: return "input too large";
    case HQ_EIO: return "I/O error";
    case HQ_ETIMEDOUT: return "timed out";
    case HQ_ENOTFOUND: return "not found";
    case HQ_EAUTH: return "authentication failed";
    case HQ_ESTALE: return "timestamp outside tolerance";
    case HQ_EBROKER: return "refused by the broker";
    case HQ_EDOWN: return "broker not connected";
    case HQ_ECONFLICT: return "topology conflict";
    case HQ_EFULL: return "full";
    case HQ_ECONFIG: return "configuration error";
    case HQ_EBLOCKED: return "broker blocked by a resource alarm";
    case HQ_ESHUTDOWN: return "shutting down";
    }
    return "unknown status";
}

int hq_exit_code(int status)
{
    switch (status) {
    case HQ_OK: return HQ_EXIT_OK;
    case HQ_ECONFIG:
    case HQ_EINVAL: return HQ_EXIT_USAGE;
    case HQ_ENOTFOUND:
    case HQ_ECONFLICT: return HQ_EXIT_TOPOLOGY;
    default: return HQ_EXIT_RUNTIME;
    }
}

int hq_exit_code_run(int status)
{
    return status == HQ_ESHUTDOWN ? HQ_EXIT_OK : hq_exit_code(status);
}
