/* session: the console's sessions and the log-in rate limit (console.h). Both tables live in
 * memory behind one mutex each; they are small (sessions: the number of users logged in;
 * the limiter: the clients and names that failed in the last minute). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "hq_codec.h"
#include "hq_passwd.h"
#include "hq_time.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct cs_session *sessions; /* token[0] == '\0': free slot */
static size_t n_sessions;

int cs_sessions_init(size_t max)
{
    sessions = calloc(max, sizeof(*sessions));
    if (!sessions)
        return HQ_ENOMEM;
    n_sessions = max;
    return HQ_OK;
}

void cs_sessions_free(void)
{
    free(sessions);
    sessions = NULL;
    n_sessions = 0;
}

static int new_token(char out[CS_TOKEN_HEX + 1])
{
    unsigned char raw[CS_TOKEN_HEX / 2];
    int rc = hq_random_bytes(raw, sizeof(raw));

    if (rc == HQ_OK)
        hq_hex_encode(raw, sizeof(raw), out);
    return rc;
}

int cs_session_new(const char *user, enum hq_console_role role, uint64_t ttl_ms,
                   struct cs_session *out)
{
    int64_t now = hq_now_ms();
    size_t i, slot = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = new_token(out->token)) != HQ_OK || (rc = new_token(out->csrf)) != HQ_OK)
        return rc;
    snprintf(out->user, sizeof(out->user), "%s", user);
    out->role = role;
    out->expires_ms = now + (int64_t)ttl_ms;
    pthread_mutex_lock(&lock);
    /* a free or expired slot, else the one that expires first */
    for (i = 0; i < n_sessions; i++) {
        if (!sessions[i].token[0] || sessions[i].expires_ms <= now) {
            slot = i;
            break;
        }
        if (sessions[i].expires_ms < sessions[slot].expires_ms)
            slot = i;
    }
    sessions[slot] = *out;
    pthread_mutex_unlock(&lock);
    return HQ_OK;
}

bool cs_session_get(const char *token, struct cs_session *out)
{
    int64_t now = hq_now_ms();
    bool found = false;
    size_t i;

    if (!token || strlen(token) != CS_TOKEN_HEX)
        return false;
    pthread_mutex_lock(&lock);
    for (i = 0; i < n_sessions; i++) {
        struct cs_session *s = &sessions[i];

        if (!s->token[0])
            continue;
        if (s->expires_ms <= now) {
            memset(s, 0, sizeof(*s));
            continue;
        }
        if (!found && hq_ct_equal(s->token, token, CS_TOKEN_HEX)) {
            *out = *s;
            found = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}

void cs_session_end(const char *token)
{
    size_t i;

    if (!token || strlen(token) != CS_TOKEN_HEX)
        return;
    pthread_mutex_lock(&lock);
    for (i = 0; i < n_sessions; i++)
        if (sessions[i].token[0] && hq_ct_equal(sessions[i].token, token, CS_TOKEN_HEX))
            memset(&sessions[i], 0, sizeof(sessions[i]));
    pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------------ log-in rate limit */

#define LIMIT_SLOTS 1024
#define KEY_MAX 80

struct limit {
    char key[KEY_MAX]; /* "a:<client>" or "u:<user>"; "" = free */
    int64_t at[CS_LOGIN_FAILURES_ADDR]; /* failure times, a ring of max entries */
    unsigned max;                       /* CS_LOGIN_FAILURES_USER or _ADDR */
    unsigned n, next;
};

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct limit limits[LIMIT_SLOTS];

static void limit_key(char *out, char kind, const char *v)
{
    snprintf(out, KEY_MAX, "%c:%s", kind, v ? v : "");
}

/* The slot of key, or NULL (create: a free slot, else the one whose last failure is oldest). */
static struct limit *limit_find(const char *key, bool create, int64_t now)
{
    struct limit *victim = NULL;
    size_t i;

    for (i = 0; i < LIMIT_SLOTS; i++) {
        struct limit *l = &limits[i];
        int64_t last;

        if (l->key[0] && strcmp(l->key, key) == 0)
            return l;
        if (!create)
            continue;
        last = l->n ? l->at[(l->next + l->max - 1) % l->max] : 0;
        if (!l->key[0] || now - last >= CS_LOGIN_WINDOW_MS) {
            if (!victim || victim->key[0])
                victim = l;
        } else if (!victim) {
            victim = l;
        }
    }
    if (victim) {
        memset(victim, 0, sizeof(*victim));
        snprintf(victim->key, KEY_MAX, "%s", key);
    }
    return victim;
}

/* seconds until key may try again (0 = now) */
static int limit_wait(const char *key, int64_t now)
{
    struct limit *l = limit_find(key, false, now);
    int64_t oldest;

    if (!l || l->n < l->max)
        return 0;
    oldest = l->at[l->next]; /* the ring is full: next is the oldest */
    if (now - oldest >= CS_LOGIN_WINDOW_MS)
        return 0;
    return (int)((CS_LOGIN_WINDOW_MS - (now - oldest) + 999) / 1000);
}

bool cs_login_allowed(const char *client, const char *user, int *retry_s)
{
    int64_t now = hq_mono_ms();
    char k[KEY_MAX];
    int a, u;

    pthread_mutex_lock(&limit_lock);
    limit_key(k, 'a', client);
    a = limit_wait(k, now);
    limit_key(k, 'u', user);
    u = limit_wait(k, now);
    pthread_mutex_unlock(&limit_lock);
    *retry_s = a > u ? a : u;
    return *retry_s == 0;
}

static void add_failure(const char *key, unsigned max, int64_t now)
{
    struct limit *l = limit_find(key, true, now);

    if (!l)
        return;
    l->max = max;
    l->at[l->next] = now;
    l->next = (l->next + 1) % max;
    if (l->n < max)
        l->n++;
}

void cs_login_failed(const char *client, const char *user)
{
    int64_t now = hq_mono_ms();
    char k[KEY_MAX];

    pthread_mutex_lock(&limit_lock);
    limit_key(k, 'a', client);
    add_failure(k, CS_LOGIN_FAILURES_ADDR, now);
    limit_key(k, 'u', user);
    add_failure(k, CS_LOGIN_FAILURES_USER, now);
    pthread_mutex_unlock(&limit_lock);
}

void cs_login_succeeded(const char *client, const char *user)
{
    struct limit *l;
    char k[KEY_MAX];

    (void)client; /* other names tried from the same address still count */
    pthread_mutex_lock(&limit_lock);
    limit_key(k, 'u', user);
    if ((l = limit_find(k, false, 0)) != NULL)
        memset(l, 0, sizeof(*l));
    pthread_mutex_unlock(&limit_lock);
}
