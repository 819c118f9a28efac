/* hq_status: the one error-code enum of hookmq (0 = ok, negative = error). */
#ifndef HQ_STATUS_H
#define HQ_STATUS_H

#define HQ_MUST_CHECK __attribute__((warn_unused_result))

enum hq_status {
    HQ_OK = 0,
    HQ_ENOMEM = -1,     /* allocation failed */
    HQ_EINVAL = -2,     /* bad argument or malformed input */
    HQ_ETOOBIG = -3,    /* input larger than its cap */
    HQ_EIO = -4,        /* file or socket I/O failed (see errno / log) */
    HQ_ETIMEDOUT = -5,  /* a deadline passed */
    HQ_ENOTFOUND = -6,  /* a named thing does not exist */
    HQ_EAUTH = -7,      /* signature / token verification failed */
    HQ_ESTALE = -8,     /* timestamp outside the tolerance window */
    HQ_EBROKER = -9,    /* the broker refused (nack, channel/connection close) */
    HQ_EDOWN = -10,     /* no broker connection */
    HQ_ECONFLICT = -11, /* an existing broker object differs from the config */
    HQ_EFULL = -12,     /* a bounded resource (queue, spool) is full */
    HQ_ECONFIG = -13,   /* configuration error (message already printed with file:line) */
    HQ_EBLOCKED = -14,  /* broker connection blocked by a resource alarm */
    HQ_ESHUTDOWN = -15, /* the component is stopping */
};

/* Static description of a status; never NULL. */
const char *hq_strerror(int status);

/* A program's exit code for status (docs/interface.md): 0 for HQ_OK, 2 for a usage or
 * configuration error (HQ_ECONFIG, HQ_EINVAL), 3 for a topology problem (HQ_ENOTFOUND,
 * HQ_ECONFLICT), 1 for any other failure. */
int hq_exit_code(int status);

#endif
