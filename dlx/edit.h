/* edit: `hookmq-dlx edit NAME ID [--body FILE] [--header K=V]...` (edit.c). */
#ifndef HQ_DLX_EDIT_H
#define HQ_DLX_EDIT_H

#include <stdbool.h>
#include <stdio.h>

/* If the subcommand of argv is edit: run it, set *exit_code (0 edited, 1 not found or runtime
 * failure, 2 usage or configuration error, 3 a queue is missing) and return true. Otherwise
 * return false and touch nothing. */
bool hq_dlx_edit_dispatch(int argc, char **argv, int *exit_code);
/* The lines of the main --help describing edit. */
void hq_dlx_edit_usage(FILE *f);

#endif
