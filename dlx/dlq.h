/* dlq: the DLQ subcommands of hookmq-dlx (list, show, redrive, purge) and status.
 *
 * dlx/main.c hands the whole command line over when its subcommand is one of these. */
#ifndef HQ_DLX_DLQ_H
#define HQ_DLX_DLQ_H

#include <stdbool.h>
#include <stdio.h>

/* If the subcommand of argv (the first argument that is not an option or the value of
 * -c/--config) is list, show, redrive, purge or status: run it, set *exit_code (docs/interface.md:
 * 0 ok, 1 runtime failure, 2 usage or configuration error, 3 topology: missing queue or
 * drift) and return true. Otherwise return false and touch nothing. */
bool hq_dlx_dlq_dispatch(int argc, char **argv, int *exit_code);

/* The lines of the main --help describing these subcommands. */
void hq_dlx_dlq_usage(FILE *f);

#endif
