/* handler_http.c: the built-in "http" handler: POSTs each event to a URL with libcurl.
 *
 * Options:
 *   url             = "https://..."  required; http:// or https:// only
 *   timeout         = "10s"          whole request (connect, send, answer)
 *   headers         = [ "Authorization: Bearer ...", ... ]  sent with every request
 *   forward_headers = true           send the provider headers kept by the gateway
 *   ca_file         = "/path"        CA bundle for TLS instead of the system store
 *   retry_statuses  = [ 401, 403, 404 ]  3xx/4xx answers that mean RETRY (this is the
 *                                    default: a receiver misconfigured for a while must not
 *                                    park every event; [] makes them REJECT)
 *
 * The request: POST <url>, the raw body byte for byte, Content-Type as received (none if the
 * event has none), every `http-<name>` message header as `<name>`, and Hookmq-Event-Id,
 * Hookmq-Source, Hookmq-Event-Type, Hookmq-Routing-Key, Hookmq-Attempt, Hookmq-Consumer,
 * Hookmq-Received-At. Header values holding control characters (CR, LF, ...) are never sent:
 * the header is skipped. Framing and hop-by-hop names (Host, Content-Length,
 * Transfer-Encoding, Connection, ...) and Hookmq-* names are never forwarded from the event.
 *
 * Durable steps (docs/plugins.md, "Durable steps"), when the host has them (ABI 1.1): the steps
 * the event carries go to the receiver in the request header Hookmq-Steps, a JSON object
 * {"name":"BASE64",...} (absent when there are none); the receiver returns the steps it
 * completed in the same form in a Hookmq-Steps response header, and they are saved with the
 * event (api->step_put) whatever the status; a malformed one is logged and ignored.
 *
 * Verdicts: 2xx ACK; 408, 429, 5xx, a timeout or a connection/TLS error RETRY (a Retry-After
 * of seconds or an HTTP-date becomes err->retry_after_ms), and the codes of retry_statuses
 * (401, 403, 404 unless set); 3xx (redirects are not followed) and every other 4xx REJECT.
 *
 * One CURL easy handle per state (that is, per handler thread), reused so connections are
 * kept alive. curl_global_init() runs once (pthread_once). TLS peer and host verification are
 * libcurl's defaults (on). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "hq_steps.h"
#include "hq_time.h"
#include "plugin.h"

#define HTTP_SNIPPET_MAX 200   /* response body bytes quoted in an error message */
#define HTTP_HEADER_MAX 8192   /* a header line longer than this is not sent */
#define HTTP_RETRY_AFTER_MAX_S (7LL * 24 * 3600)
#define HTTP_STATUS_MIN 300 /* retry_statuses: 3xx and 4xx (408, 429 and 5xx always retry) */
#define HTTP_STATUS_MAX 499
#define HTTP_STEPS_MAX (256 * 1024) /* the Hookmq-Steps request line (steps.max_bytes in base64) */

struct http_state {
    const struct hq_host_api *api;
    CURL *curl;
    char *url;
    char **headers; /* owned "Name: value" lines from the `headers` option, NULL-terminated */
    size_t n_headers;
    bool forward;
    bool retry_status[HTTP_STATUS_MAX + 1]; /* 3xx/4xx answers that mean RETRY */
    uint64_t timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
    char snippet[HTTP_SNIPPET_MAX + 1];
    size_t snippet_len;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_global_rc = CURLE_FAILED_INIT;

static void curl_global(void)
{
    curl_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool name_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* No CR, LF or other control characters (horizontal tab allowed). */
static bool value_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Names never taken from the event: framing, hop-by-hop, and our own. */
static bool name_reserved(const char *n)
{
    static const char *const reserved[] = {
        "host",         "content-length", "transfer-encoding", "connection",
        "keep-alive",   "te",             "trailer",           "upgrade",
        "expect",       "proxy-connection", "proxy-authorization", "content-type",
    };
    size_t i;

    if (strncasecmp(n, "hookmq-", 7) == 0)
        return true;
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(n, reserved[i]) == 0)
            return true;
    return false;
}

/* Is name set by the `headers` option? (then the option wins over a forwarded header) */
static bool name_static(const struct http_state *st, const char *name)
{
    size_t i, n = strlen(name);

    for (i = 0; i < st->n_headers; i++) {
        const char *h = st->headers[i];
        if (strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';'))
            return true;
    }
    return false;
}

/* Append a prepared line as is; false on allocation failure (*list unchanged). */
static bool add_raw(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);

    if (!n)
        return false;
    *list = n;
    return true;
}

/* Append "name: value" (or "name;" for an empty value: curl's way to send it empty) to *list.
 * Returns false only on allocation failure; invalid or too long headers are skipped. */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[HTTP_HEADER_MAX];
    int len;

    if (!value)
        value = "";
    if (!name_ok(name, strlen(name)) || !value_ok(value))
        return true;
    if (*value)
        len = snprintf(line, sizeof(line), "%s: %s", name, value);
    else
        len = snprintf(line, sizeof(line), "%s;", name);
    if (len < 0 || (size_t)len >= sizeof(line))
        return true;
    return add_raw(list, line);
}

static void http_fini(void *state)
{
    struct http_state *st = state;
    size_t i;

    if (!st)
        return;
    if (st->curl)
        curl_easy_cleanup(st->curl);
    free(st->url);
    for (i = 0; i < st->n_headers; i++)
        free(st->headers[i]);
    free(st->headers);
    free(st);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct http_state *st = userdata;
    size_t n = size * nmemb, room = HTTP_SNIPPET_MAX - st->snippet_len;

    if (room > 0) {
        size_t k = n < room ? n : room;
        memcpy(st->snippet + st->snippet_len, ptr, k);
        st->snippet_len += k;
        st->snippet[st->snippet_len] = '\0';
    }
    return n; /* the rest is read and dropped, bounded by the timeout */
}

static bool scheme_ok(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

static int http_init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                     void **state)
{
    struct http_state *st;
    const char *ca_file = NULL;
    size_t i, k;
    bool ok;

    pthread_once(&curl_once, curl_global);
    if (curl_global_rc != CURLE_OK) {
        api->log(HQ_HLOG_ERROR, "http: curl_global_init failed: %s",
                 curl_easy_strerror(curl_global_rc));
        return -1;
    }
    st = calloc(1, sizeof(*st));
    if (!st)
        goto oom;
    st->api = api;
    st->forward = true;
    st->timeout_ms = 10000;
    st->retry_status[401] = st->retry_status[403] = st->retry_status[404] = true;
    for (i = 0; i < n; i++) {
        const struct hq_handler_opt *o = &opts[i];
        if (strcmp(o->key, "url") == 0) {
            if (!o->value || !scheme_ok(o->value) || !value_ok(o->value)) {
                api->log(HQ_HLOG_ERROR, "http: option url: expected an http:// or https:// URL");
                goto fail;
            }
            free(st->url);
            if (!(st->url = strdup(o->value)))
                goto oom;
        } else if (strcmp(o->key, "timeout") == 0) {
            if (!o->value || hq_duration_parse(o->value, &st->timeout_ms) != HQ_OK ||
                st->timeout_ms == 0 || st->timeout_ms > (uint64_t)LONG_MAX) {
                api->log(HQ_HLOG_ERROR, "http: option timeout: expected a duration like \"10s\"");
                goto fail;
            }
        } else if (strcmp(o->key, "headers") == 0) {
            if (!o->values) {
                api->log(HQ_HLOG_ERROR,
                         "http: option headers: expected an array of \"Name: value\"");
                goto fail;
            }
            st->headers = calloc(o->n_values + 1, sizeof(char *));
            if (!st->headers)
                goto oom;
            for (k = 0; k < o->n_values; k++) {
                const char *h = o->values[k], *colon = h ? strchr(h, ':') : NULL;
                if (!colon || !name_ok(h, (size_t)(colon - h)) || !value_ok(colon + 1) ||
                    strlen(h) >= HTTP_HEADER_MAX) {
                    api->log(HQ_HLOG_ERROR,
                             "http: option headers: element %zu is not \"Name: value\" without "
                             "control characters",
                             k + 1);
                    goto fail;
                }
                if (!(st->headers[st->n_headers] = strdup(h)))
                    goto oom;
                st->n_headers++;
            }
        } else if (strcmp(o->key, "forward_headers") == 0) {
            if (o->value && strcmp(o->value, "true") == 0) {
                st->forward = true;
            } else if (o->value && strcmp(o->value, "false") == 0) {
                st->forward = false;
            } else {
                api->log(HQ_HLOG_ERROR, "http: option forward_headers: expected true or false");
                goto fail;
            }
        } else if (strcmp(o->key, "ca_file") == 0) {
            if (!o->value || !*o->value) {
                api->log(HQ_HLOG_ERROR, "http: option ca_file: expected a path");
                goto fail;
            }
            ca_file = o->value;
        } else if (strcmp(o->key, "retry_statuses") == 0) {
            if (!o->values) {
                api->log(HQ_HLOG_ERROR, "http: option retry_statuses: expected an array of "
                                        "HTTP status codes 300..499");
                goto fail;
            }
            memset(st->retry_status, 0, sizeof(st->retry_status));
            for (k = 0; k < o->n_values; k++) {
                const char *v = o->values[k];
                char *end;
                long code;
                errno = 0;
                code = v ? strtol(v, &end, 10) : 0;
                if (!v || errno || end == v || *end || code < HTTP_STATUS_MIN ||
                    code > HTTP_STATUS_MAX) {
                    api->log(HQ_HLOG_ERROR,
                             "http: option retry_statuses: %s is not an HTTP status 300..499",
                             v ? v : "(null)");
                    goto fail;
                }
                st->retry_status[code] = true;
            }
        } else {
            api->log(HQ_HLOG_ERROR,
                     "http: unknown option %s (known: url, timeout, headers, forward_headers, "
                     "ca_file, retry_statuses)",
                     o->key);
            goto fail;
        }
    }
    if (!st->url) {
        api->log(HQ_HLOG_ERROR, "http: option url is required");
        goto fail;
    }

    st->curl = curl_easy_init();
    if (!st->curl)
        goto oom;
    /* Options that never change; handle() sets only the per-event ones. */
    ok = curl_easy_setopt(st->curl, CURLOPT_URL, st->url) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_ERRORBUFFER, st->errbuf) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_TIMEOUT_MS, (long)st->timeout_ms) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)st->timeout_ms) ==
             CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_USERAGENT, "hookmq/" HQ_VERSION) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_WRITEDATA, st) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
         curl_easy_setopt(st->curl, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    ok = ok && curl_easy_setopt(st->curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#else
    ok = ok && curl_easy_setopt(st->curl, CURLOPT_PROTOCOLS,
                                (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK;
#endif
    if (ok && ca_file)
        ok = curl_easy_setopt(st->curl, CURLOPT_CAINFO, ca_file) == CURLE_OK;
    if (!ok) {
        api->log(HQ_HLOG_ERROR, "http: libcurl refused an option (built without http/https?)");
        goto fail;
    }
    *state = st;
    return 0;
oom:
    api->log(HQ_HLOG_ERROR, "http: out of memory");
fail:
    http_fini(st);
    return -1;
}

/* Retry-After: delay-seconds or an HTTP-date, into ms from now (0 when absent, bad or past). */
static int64_t retry_after_ms(CURL *curl)
{
    struct curl_header *h = NULL;
    const char *v;
    int64_t ms = 0;

    if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h ||
        !h->value)
        return 0;
    v = h->value;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        char *end;
        long long s;
        errno = 0;
        s = strtoll(v, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            return 0;
        if (errno == ERANGE || s > HTTP_RETRY_AFTER_MAX_S)
            s = HTTP_RETRY_AFTER_MAX_S;
        ms = (int64_t)s * 1000;
    } else {
        time_t t = curl_getdate(v, NULL);
        if (t == (time_t)-1)
            return 0;
        ms = (int64_t)t * 1000 - hq_now_ms();
        if (ms < 0)
            ms = 0;
        if (ms > HTTP_RETRY_AFTER_MAX_S * 1000)
            ms = HTTP_RETRY_AFTER_MAX_S * 1000;
    }
    return ms;
}

/* "Hookmq-Steps: {...}" for the steps ev carries, into *hl (nothing when it carries none).
 * false on allocation failure. */
static bool steps_request(const struct http_state *st, const struct hq_event *ev,
                          struct curl_slist **hl)
{
    const struct hq_host_api *api = st->api;
    struct hq_buf json = HQ_BUF_INIT(HTTP_STEPS_MAX), line = HQ_BUF_INIT(HTTP_STEPS_MAX + 16);
    size_t i, n;
    bool ok = false;

    if (!HQ_HOST_HAS_STEPS(api) || (n = api->step_count(ev)) == 0)
        return true;
    if (hq_buf_append(&json, "{", 1) != HQ_OK)
        goto out;
    for (i = 0; i < n; i++) {
        const char *name = api->step_name(ev, i);
        const void *data;
        size_t len;
        int rc;

        if (!name || !api->step_get(ev, name, &data, &len))
            continue;
        rc = hq_steps_json_add(&json, name, strlen(name), data, len);
        if (rc == HQ_ENOMEM)
            goto out;
        if (rc != HQ_OK)
            api->log(HQ_HLOG_WARN, "http: step %s not sent (%s)", name, hq_strerror(rc));
    }
    ok = hq_buf_append(&json, "}", 1) == HQ_OK &&
         hq_buf_append(&line, "Hookmq-Steps: ", 14) == HQ_OK &&
         hq_buf_append(&line, json.data, json.len) == HQ_OK &&
         add_raw(hl, (const char *)line.data);
out:
    hq_buf_free(&json);
    hq_buf_free(&line);
    return ok;
}

/* Save the steps the receiver returned in its Hookmq-Steps response header. */
static void steps_response(const struct http_state *st, const struct hq_event *ev)
{
    const struct hq_host_api *api = st->api;
    struct curl_header *h = NULL;
    struct hq_steps steps;
    size_t i;
    int rc;

    if (!HQ_HOST_HAS_STEPS(api) ||
        curl_easy_header(st->curl, "Hookmq-Steps", 0, CURLH_HEADER, -1, &h) != CURLHE_OK ||
        !h || !h->value)
        return;
    rc = hq_steps_parse_json(h->value, strlen(h->value), &steps);
    if (rc != HQ_OK) {
        api->log(HQ_HLOG_WARN, "http: malformed Hookmq-Steps response header ignored (%s)",
                 hq_strerror(rc));
        return;
    }
    for (i = 0; i < steps.n; i++) {
        rc = api->step_put(ev, steps.v[i].name, steps.v[i].val, steps.v[i].len);
        if (rc != HQ_STEP_OK)
            api->log(HQ_HLOG_WARN, "http: step %s from the receiver not saved (status %d)",
                     steps.v[i].name, rc);
    }
    hq_steps_free(&steps);
}

/* The start of the response body, control characters shown as '?', for a message. */
static void snippet_text(const struct http_state *st, char *out, size_t outsz)
{
    size_t i, n = st->snippet_len < outsz - 1 ? st->snippet_len : outsz - 1;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)st->snippet[i];
        out[i] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static enum hq_verdict http_handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    struct http_state *st = state;
    struct curl_slist *hl = NULL;
    enum hq_verdict verdict = HQ_VERDICT_RETRY;
    char num[32], at[32], snip[HTTP_SNIPPET_MAX + 1];
    sigset_t pipeset, oldmask, pending;
    bool sigpipe_was_pending = false;
    long code = 0;
    CURLcode rc;
    size_t i;

    err->message[0] = '\0';
    err->retry_after_ms = 0;
    st->errbuf[0] = '\0';
    st->snippet_len = 0;
    st->snippet[0] = '\0';
    snprintf(num, sizeof(num), "%" PRIu32, ev->attempt);
    snprintf(at, sizeof(at), "%" PRId64, ev->received_at_ms);

    /* "Expect:" stops curl from waiting for 100-continue on large bodies. */
    if (!add_raw(&hl, "Expect:"))
        goto oom;
    /* curl would label a POST body application/x-www-form-urlencoded: send the event's type,
     * or none at all ("Content-Type:" removes the header). */
    if (ev->content_type && *ev->content_type && value_ok(ev->content_type) ? 
            !add_header(&hl, "Content-Type", ev->content_type)
            : !add_raw(&hl, "Content-Type:"))
        goto oom;
    if (st->forward) {
        for (i = 0; i < ev->n_headers; i++) {
            const char *k = ev->headers[i].key;
            if (!k || strncmp(k, "http-", 5) != 0 || name_reserved(k + 5) ||
                name_static(st, k + 5))
                continue;
            if (!add_header(&hl, k + 5, ev->headers[i].value))
                goto oom;
        }
    }
    if (!add_header(&hl, "Hookmq-Event-Id", ev->id) ||
        !add_header(&hl, "Hookmq-Source", ev->source) ||
        !add_header(&hl, "Hookmq-Event-Type", ev->type) ||
        !add_header(&hl, "Hookmq-Routing-Key", ev->routing_key) ||
        !add_header(&hl, "Hookmq-Attempt", num) ||
        !add_header(&hl, "Hookmq-Consumer", ev->consumer) ||
        !add_header(&hl, "Hookmq-Received-At", at))
        goto oom;
    for (i = 0; i < st->n_headers; i++)
        if (!add_raw(&hl, st->headers[i]))
            goto oom;
    if (!steps_request(st, ev, &hl))
        goto oom;

    if (curl_easy_setopt(st->curl, CURLOPT_HTTPHEADER, hl) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(ev->body ? ev->body_len : 0)) !=
            CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_POSTFIELDS,
                         ev->body ? (const void *)ev->body : (const void *)"") != CURLE_OK) {
        snprintf(err->message, sizeof(err->message), "http: cannot set up the request");
        goto out;
    }

    /* A TLS write to a reset connection may raise SIGPIPE: keep it off this thread and
     * consume one that this request caused. */
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipeset, &oldmask);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
        sigpipe_was_pending = true;
    rc = curl_easy_perform(st->curl);
    if (!sigpipe_was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipeset, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);

    if (rc != CURLE_OK) {
        verdict = HQ_VERDICT_RETRY;
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            char d[32];
            hq_duration_format(st->timeout_ms, d, sizeof(d));
            snprintf(err->message, sizeof(err->message), "POST %s: timed out after %s", st->url,
                     d);
        } else {
            snprintf(err->message, sizeof(err->message), "POST %s: %s%s%s", st->url,
                     curl_easy_strerror(rc), st->errbuf[0] ? ": " : "", st->errbuf);
        }
        goto out;
    }
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
    steps_response(st, ev);
    if (code >= 200 && code <= 299) {
        verdict = HQ_VERDICT_ACK;
        goto out;
    }
    if (code == 408 || code == 429 || (code >= 500 && code <= 599) || code < 200) {
        verdict = HQ_VERDICT_RETRY;
        err->retry_after_ms = retry_after_ms(st->curl);
    } else if (code >= HTTP_STATUS_MIN && code <= HTTP_STATUS_MAX && st->retry_status[code]) {
        verdict = HQ_VERDICT_RETRY; /* retry_statuses (401, 403, 404 by default) */
        err->retry_after_ms = retry_after_ms(st->curl);
    } else {
        verdict = HQ_VERDICT_REJECT; /* 3xx (not followed) and the other 4xx */
    }
    snippet_text(st, snip, sizeof(snip));
    snprintf(err->message, sizeof(err->message), "HTTP %ld%s%s", code, snip[0] ? ": " : "",
             snip);
    goto out;
oom:
    snprintf(err->message, sizeof(err->message), "http: out of memory");
    verdict = HQ_VERDICT_RETRY;
out:
    /* The list must outlive the transfer only; drop the pointer before freeing it. */
    curl_easy_setopt(st->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(hl);
    return verdict;
}

const struct hq_handler hq_builtin_http = {
    .abi_major = HQ_HANDLER_ABI_MAJOR,
    .abi_minor = HQ_HANDLER_ABI_MINOR,
    .struct_size = sizeof(struct hq_handler),
    .name = "http",
    .version = HQ_VERSION,
    .init = http_init,
    .handle = http_handle,
    .fini = http_fini,
};
