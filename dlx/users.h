/* users: `hookmq-dlx definitions --users`, one RabbitMQ user per hookmq program with the
 * narrowest configure/write/read permissions (docs/operations.md, Least privilege). */
#ifndef HQ_DLX_USERS_H
#define HQ_DLX_USERS_H

#include "hq_buf.h"
#include "hq_config.h"
#include "hq_status.h"

/* Append to out a RabbitMQ definitions document (importable in the management UI or with
 * `rabbitmqctl import_definitions`) holding the users and their permissions on the vhost of
 * the first broker URI: hookmq-gateway, hookmq-worker-<consumer> for each consumer,
 * hookmq-archive, hookmq-replay and the operator hookmq-dlx.
 *
 * password_file (may be NULL): lines "user:password" ('#' comments, blank lines ignored);
 * users found there get a "password" member, the others none (see the note printed by the
 * caller). Errors reading it are reported on stderr with file:line and give HQ_ECONFIG.
 * Returns HQ_OK, HQ_ECONFIG, HQ_ENOMEM or HQ_ETOOBIG. */
HQ_MUST_CHECK int hq_dlx_users(const struct hq_config *cfg, const char *password_file,
                               struct hq_buf *out, size_t *n_without_password);

/* The user name hq_dlx_users gives a consumer's worker ("hookmq-worker-<name>") into out. */
void hq_dlx_worker_user(const char *consumer, char *out, size_t outsz);

#endif
