/* archive.h: internals of hookmq-archive, shared by archive_main.c (command line),
 * archive_run.c (the firehose logger), archive_query.c (query, history, stats) and
 * (/metrics: core/hq_metrics_http.h). Not an installed interface. */
#ifndef HQ_ARCHIVE_PROG_H
#define HQ_ARCHIVE_PROG_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_archive.h"
#include "hq_config.h"
#include "hq_metrics.h"

#define AR_PROG "hookmq-archive"

enum ar_cmd { AR_RUN = 0, AR_QUERY, AR_HISTORY, AR_STATS };
enum ar_format { AR_FMT_DEFAULT = 0, AR_FMT_JSON, AR_FMT_TABLE };

struct ar_args {
    enum ar_cmd cmd;
    const char *config;      /* -c */
    const char *dir;         /* --dir: read this archive directory instead of archive.dir */
    /* run */
    bool firehose;           /* --firehose-trace */
    const char *firehose_key;
    /* query / history / stats */
    const char *from, *to, *source, *type, *id, *grep, *kind;
    enum ar_format format;
    uint64_t limit;          /* 0 = no limit */
    bool verbose;
};

/* archive_run.c: `hookmq-archive [run]`. cfg is owned by the caller. */
int ar_run(struct hq_config *cfg, const char *config_path, const struct ar_args *a);

/* archive_query.c: `query`, `history ID`, `stats`. dir: the archive directory. */
int ar_query(const char *dir, const struct ar_args *a);
int ar_history(const char *dir, const struct ar_args *a);
int ar_stats(const char *dir, const struct ar_args *a);


#endif
