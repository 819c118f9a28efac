/* hq_steps: the durable steps of an event (docs/plugins.md, "Durable steps"): completed step
 * results that travel with the event's retry and DLQ copies in the `hookmq-steps` header, an
 * AMQP field table of step name -> bytes.
 *
 * Inside hookmq the table is held as a header of type HQ_HDR_TABLE whose str is its text form
 * "name:BASE64,name:BASE64" (names are 1..64 bytes of [A-Za-z0-9._-] not starting with '.', so
 * a name is also a safe file name; values standard padded base64): every copy, free and journal of struct hq_msg handles it as a string, and only the
 * wire codec (amqp.c publish, consume.c decode) turns it into a field table and back. */
#ifndef HQ_STEPS_H
#define HQ_STEPS_H

#include <stdbool.h>
#include <stddef.h>
#include "hq_buf.h"
#include "hq_status.h"

#define HQ_STEPS_HEADER "hookmq-steps"
#define HQ_STEP_NAME_MAX 64u

/* One step: its name (NUL-terminated, name_len bytes) and its bytes. */
struct hq_step {
    const char *name;
    size_t name_len;
    const unsigned char *val;
    size_t len;
};

/* A parsed list. Caller frees with hq_steps_free(). */
struct hq_steps {
    struct hq_step *v;
    size_t n;
    void *mem; /* owns v, the names and the values */
};

/* Is name[0..n) a valid step name (1..64 bytes of [A-Za-z0-9._-], not starting with '.')? */
bool hq_step_name_ok(const char *name, size_t n);

/* Parse the text form (NULL or "" = no steps). HQ_EINVAL for malformed text (bad name, bad
 * base64, duplicate name), HQ_ENOMEM. *out is zeroed on failure. */
HQ_MUST_CHECK int hq_steps_parse(const char *text, struct hq_steps *out);
void hq_steps_free(struct hq_steps *s); /* NULL-safe; leaves *s zeroed */

/* Append one entry "name:BASE64" (with a ',' before it when out is not empty) to out. The
 * name must be valid (HQ_EINVAL). */
HQ_MUST_CHECK int hq_steps_append(struct hq_buf *out, const char *name, size_t name_len,
                                  const unsigned char *val, size_t len);

/* The JSON form (the http handler's Hookmq-Steps header, docs/plugins.md): an object
 * {"name":"BASE64",...}. hq_steps_json_add appends one member to out, which the caller opened
 * with "{" (a ',' is put before every member but the first) and closes with "}". */
HQ_MUST_CHECK int hq_steps_json_add(struct hq_buf *out, const char *name, size_t name_len,
                                    const unsigned char *val, size_t len);
/* Parse the JSON form (strict JSON, an object whose members are valid step names with base64
 * strings; {} = no steps). HQ_EINVAL when malformed, HQ_ENOMEM. Caller frees *out with
 * hq_steps_free(); zeroed on failure. */
HQ_MUST_CHECK int hq_steps_parse_json(const char *text, size_t n, struct hq_steps *out);

/* Bytes a step counts against steps.max_bytes: its name plus its value. */
static inline size_t hq_step_cost(size_t name_len, size_t len)
{
    return name_len + len;
}

#endif
