/* dlq_edit: "edit and retry" of a parked event (hq_dlq.h, hq_dlq_edit_copy): the redriven
 * copy with a new body and/or headers, marked with the original's digest and the editor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hq_codec.h"
#include "hq_dlq.h"

/* Remove header key from m (all occurrences). */
static void drop_header(struct hq_msg *m, const char *key)
{
    size_t i = 0;

    while (i < m->n_headers) {
        if (strcmp(m->headers[i].key, key) == 0) {
            free(m->headers[i].key);
            free(m->headers[i].str);
            memmove(&m->headers[i], &m->headers[i + 1],
                    (m->n_headers - i - 1) * sizeof(m->headers[0]));
            m->n_headers--;
        } else {
            i++;
        }
    }
}

bool hq_dlq_edit_header_allowed(const char *key)
{
    size_t n = key ? strlen(key) : 0, i;

    if (n == 0 || n > 128 || strncmp(key, "hookmq-", 7) == 0 || strncmp(key, "x-", 2) == 0)
        return false;
    for (i = 0; i < n; i++)
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
            return false;
    return true;
}

int hq_dlq_edit_copy(const struct hq_delivery *d, const unsigned char *body, size_t body_len,
                     const char *const *keys, const char *const *vals, size_t n_headers,
                     const char *user, struct hq_msg *out, char *summary, size_t summarysz)
{
    unsigned char md[32];
    char digest[8 + 65];
    unsigned int mdlen = 0;
    size_t i;
    int rc;

    if (!user || !*user)
        return HQ_EINVAL;
    for (i = 0; i < n_headers; i++)
        if (!hq_dlq_edit_header_allowed(keys[i]) || !vals[i])
            return HQ_EINVAL;
    if (EVP_Digest(d->msg.body ? d->msg.body : (const unsigned char *)"", d->msg.body_len, md,
                   &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
        return HQ_EIO;
    memcpy(digest, "sha256:", 7);
    hq_hex_encode(md, sizeof(md), digest + 7);
    if ((rc = hq_dlq_redrive_copy(d, out)) != HQ_OK)
        return rc;
    if (body) {
        unsigned char *nb = malloc(body_len ? body_len : 1);

        if (!nb) {
            rc = HQ_ENOMEM;
            goto fail;
        }
        memcpy(nb, body, body_len);
        free(out->body);
        out->body = nb;
        out->body_len = body_len;
    }
    for (i = 0; i < n_headers; i++) {
        drop_header(out, keys[i]);
        if ((rc = hq_msg_add_str(out, keys[i], vals[i])) != HQ_OK)
            goto fail;
    }
    drop_header(out, "hookmq-edited-from");
    drop_header(out, "hookmq-edited-by");
    if ((rc = hq_msg_add_str(out, "hookmq-edited-from", digest)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-edited-by", user)) != HQ_OK)
        goto fail;
    if (summary && summarysz) {
        int w = snprintf(summary, summarysz, "edited by %s from %s:", user, digest);

        if (body && w > 0 && (size_t)w < summarysz)
            w += snprintf(summary + w, summarysz - (size_t)w, " body %zu -> %zu bytes",
                          d->msg.body_len, body_len);
        for (i = 0; i < n_headers && w > 0 && (size_t)w < summarysz; i++)
            w += snprintf(summary + w, summarysz - (size_t)w, "%s header %s", (body || i) ? "," : "",
                          keys[i]);
        if (!body && !n_headers && w > 0 && (size_t)w < summarysz)
            snprintf(summary + w, summarysz - (size_t)w, " unchanged");
    }
    return HQ_OK;
fail:
    hq_msg_free(out);
    return rc;
}
