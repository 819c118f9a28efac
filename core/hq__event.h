/* hq__event: what the event files of core share (event.c: the envelope; event_codec.c: the
 * spool encoding; event_extract.c: type and id extraction). Internal to core. */
#ifndef HQ__EVENT_H
#define HQ__EVENT_H

#include <stdbool.h>
#include <stddef.h>

/* Caps. AMQP short strings (routing key, message_id, content_type) hold at most 255 bytes and
 * field-table keys at most 128. */
#define HQ__EV_SHORTSTR_MAX 255u
#define HQ__EV_KEY_MAX 128u
#define HQ__EV_MAX_HEADERS 1024u
#define HQ__EV_HDR_VAL_MAX (1024u * 1024u)    /* one string header of a message */
#define HQ__EV_BODY_MAX (64u * 1024u * 1024u) /* message body */

/* A header key: 1..HQ__EV_KEY_MAX bytes (false for NULL). */
bool hq__event_valid_key(const char *key);

/* Header arrays hold hq__event_hdr_cap(n_headers) slots: 8, then powers of two. Every array a
 * message may later grow (msg_push, hq_msg_copy, hq_msg_decode) is allocated with this rule,
 * so a push reallocates only when n_headers reaches a power of two >= 8, not on every header. */
size_t hq__event_hdr_cap(size_t n);

/* An extracted type or id (or a kept content type): 1..max bytes of well-formed UTF-8 without
 * control characters (C0, DEL; this also excludes NUL). */
bool hq__event_valid_value(const char *s, size_t n, size_t max);

#endif
