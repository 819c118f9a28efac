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

/* The exit codes of every program (docs/interface.md): 0 ok, 1 a runtime failure, 2 a usage
 * or configuration error, 3 the topology: a broker object missing or differing from the
 * config. */
enum hq_exit { HQ_EXIT_OK = 0, HQ_EXIT_RUNTIME = 1, HQ_EXIT_USAGE = 2, HQ_EXIT_TOPOLOGY = 3 };

/* The one mapping from a status to an exit code: HQ_OK 0; HQ_ECONFIG and HQ_EINVAL 2;
 * HQ_ENOTFOUND and HQ_ECONFLICT 3; anything else 1. */
int hq_exit_code(int status);

/* hq_exit_code for a program that a SIGTERM or SIGINT may stop on the way (start-up retries, a
 * replay that resumes): HQ_ESHUTDOWN, stopped as asked, is 0; every other status as
 * hq_exit_code. */
int hq_exit_code_run(int status);

#endif
