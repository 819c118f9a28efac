/* replay_args: hookmq-replay's command line (docs/replay.md), in the small replay library
 * that replay_main.c and the unit tests link. */
#ifndef HQ_REPLAY_ARGS_H
#define HQ_REPLAY_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "hq_replay.h"

/* Parse argv[1..argc) into *o (zeroed first). Options: -c/--config FILE, --from T, --to T,
 * --source S, --type GLOB, --id ID, --grep TEXT, --to-consumer NAME, --to-exchange,
 * --ignore-bindings, --rate N, --window N, --dry-run, --restart, --quiet/-q, --no-lifecycle,
 * --checkpoint-dir DIR, -h/--help, -V/--version; "--opt=value" works for options with a
 * value. Names are matched exactly (no abbreviations: "--to" is the time filter). Times go
 * through hq_time_parse(now_ms). Rules: exactly one target; --from or --id required (an
 * unbounded replay is refused); --from before --to; --to without --from needs --id;
 * --ignore-bindings only with --to-consumer; no option twice; no positional arguments;
 * no empty values. HQ_OK, or HQ_EINVAL with a one-line reason in err. */
HQ_MUST_CHECK int hq_replay_parse_args(int argc, char **argv, int64_t now_ms,
                                       struct hq_replay_opts *o, char *err, size_t errsz);

#endif
