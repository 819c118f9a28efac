/* config: load and validate the one libconfig file every hookmq program reads.
 *
 * The loader is table-driven: each group has a table of keys (name, kind, required, range,
 * where the value goes); anything not in a table is an error. Every error is one line
 * "file:line: path: message", e.g. "hookmq.conf:12: sources[1].tolerance_s: must be between 0
 * and 86400". Values of secrets and broker URIs never appear in messages.
 *
 * libconfig 1.5 pitfalls handled here (docs/broker-notes.md):
 * - An integer literal without an L suffix that does not fit in 32 bits silently wraps
 *   (5000000000 -> 705032704) and 64-bit literals saturate. Before libconfig parses the text, a
 *   small scanner that knows libconfig's lexical rules records every such literal; after the
 *   parse, the setting that came from that file and line is reported by its path.
 * - @include resolves against the include directory, which we set to the directory of the loaded
 *   file; the scanner follows includes first, so a missing include is reported by name.
 *   (libconfig 1.5 prefixes the include directory to absolute paths too: those are refused.)
 * - Floats given for integer keys, integers for string keys, etc. are type errors. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libconfig.h>
#include <openssl/crypto.h>

#include "hq_codec.h"
#include "hq_config.h"
#include "hq_passwd.h"
#include "hq_scheme.h"
#include "hq_time.h"

#define CONFIG_MAX_BYTES (4u << 20)   /* a config file (and each @include) */
#define SECRET_MAX_BYTES (64u << 10)  /* a secret file */
#define INCLUDE_MAX_DEPTH 10          /* as libconfig */
#define NEST_MAX_DEPTH 16             /* hookmq configs never nest deeper than ~4 */
#define MAX_SOURCES 1024
#define MAX_CONSUMERS 1024
#define MAX_SECRETS 32
#define MAX_URIS 16
#define MAX_CIDRS 1024
#define MAX_BINDINGS 256
#define MAX_OPTIONS 256
#define MAX_OPT_VALUES 1024
#define MAX_DELAYS 16
#define PATH_TEXT_MAX 4096

#define MS_S 1000ULL
#define MS_D (86400ULL * 1000ULL)

/* ------------------------------------------------------------------------------------------ */
/* "twilio and square": the schemes that sign the source's `url`, for error messages. */
static const char *url_scheme_names(char *out, size_t outsz)
{
    size_t used = 0, n = 0, total = 0;
    int i;

    for (i = 0; i < HQ_SCHEME__COUNT; i++)
        total += hq_scheme_ops((enum hq_scheme)i)->url;
    out[0] = '\0';
    for (i = 0; i < HQ_SCHEME__COUNT && used < outsz; i++) {
        const struct hq_scheme_ops *ops = hq_scheme_ops((enum hq_scheme)i);
        int w;
        if (!ops->url)
            continue;
        n++;
        w = snprintf(out + used, outsz - used, "%s%s", n == 1 ? "" : n == total ? " and " : ", ",
                     ops->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return out;
}

/* Schemes whose signature carries a timestamp (docs/signatures.md). */
static bool scheme_has_timestamp(enum hq_scheme s)
{
    const struct hq_scheme_ops *ops = hq_scheme_ops(s);

    return ops && ops->tolerance_s > 0;
}

/* ------------------------------------------------------------------------------------------ */
/* load context and error reporting */

struct badlit {
    char *file;     /* as libconfig records it: NULL for the main text, else the @include name */
    unsigned line;
    int bits;       /* 32: needs an L suffix; 64: does not fit at all */
    unsigned ord;   /* which integer literal on that line, from 0 */
    bool in_main;   /* in the main text, at main_text[off..off+len) */
    size_t off, len;
    char text[48];
};

struct ctx {
    const char *name;   /* main file name for messages */
    const char *incdir; /* include directory (NULL: includes refused) */
    const char *main_text;
    char *err;
    size_t errsz;
    int rc;             /* first error */
    struct badlit *bad;
    size_t n_bad;
    /* check_literals: the integer settings seen so far on the current file and line */
    const char *w_file;
    unsigned w_line, w_n;
    bool w_started;
    char fbuf[PATH_TEXT_MAX];
};

static const char *display_file(struct ctx *c, const char *sf)
{
    if (!sf)
        return c->name;
    if (sf[0] == '/' || !c->incdir || strcmp(c->incdir, ".") == 0)
        return sf;
    snprintf(c->fbuf, sizeof(c->fbuf), "%s%s%s", c->incdir,
             c->incdir[strlen(c->incdir) - 1] == '/' ? "" : "/", sf);
    return c->fbuf;
}

/* Path of a setting: "gateway.listen", "sources[1].secrets[0]". */
static void setting_path(const config_setting_t *s, char *buf, size_t sz)
{
    const config_setting_t *chain[NEST_MAX_DEPTH + 8];
    size_t n = 0, used = 0;

    buf[0] = '\0';
    while (s && !config_setting_is_root(s) && n < sizeof(chain) / sizeof(chain[0])) {
        chain[n++] = s;
        s = config_setting_parent(s);
    }
    while (n > 0) {
        const config_setting_t *e = chain[--n];
        const config_setting_t *p = config_setting_parent(e);
        int w;

        if (p && (config_setting_is_array(p) || config_setting_is_list(p)))
            w = snprintf(buf + used, sz - used, "[%d]", config_setting_index(e));
        else
            w = snprintf(buf + used, sz - used, "%s%s", used ? "." : "",
                         config_setting_name(e) ? config_setting_name(e) : "?");
        if (w < 0 || (size_t)w >= sz - used)
            return;
        used += (size_t)w;
    }
}

static void vfail_at(struct ctx *c, const char *file, unsigned line, const char *path,
                     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void vfail_at(struct ctx *c, const char *file, unsigned line, const char *path,
                     const char *fmt, va_list ap)
{
    char msg[512];

    if (c->rc != HQ_OK)
        return; /* keep the first error */
    c->rc = HQ_ECONFIG;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (c->err && c->errsz)
        snprintf(c->err, c->errsz, "%s:%u: %s%s%s", file, line, path ? path : "",
                 path && *path ? ": " : "", msg);
}

/* Error at setting s (NULL: the file itself, line 0); with key, the error names s.key (a key
 * that is missing) at s's line. Returns HQ_ECONFIG. */
static int cfail(struct ctx *c, const config_setting_t *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cfail(struct ctx *c, const config_setting_t *s, const char *key, const char *fmt, ...)
{
    char path[512];
    va_list ap;
    size_t n;

    path[0] = '\0';
    if (s)
        setting_path(s, path, sizeof(path));
    if (key) {
        n = strlen(path);
        snprintf(path + n, sizeof(path) - n, "%s%s", n ? "." : "", key);
    }
    va_start(ap, fmt);
    vfail_at(c, display_file(c, s ? config_setting_source_file(s) : NULL),
             s ? config_setting_source_line(s) : 0, path, fmt, ap);
    va_end(ap);
    return c->rc;
}

static int cfail_line(struct ctx *c, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cfail_line(struct ctx *c, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail_at(c, display_file(c, file), line, NULL, fmt, ap);
    va_end(ap);
    return c->rc;
}

static int coom(struct ctx *c)
{
    if (c->rc == HQ_OK) {
        c->rc = HQ_ENOMEM;
        if (c->err && c->errsz)
            snprintf(c->err, c->errsz, "%s:0: out of memory", c->name);
    }
    return c->rc;
}

/* A value safe to echo in a message: printable ASCII, truncated. Never used for secrets or URIs. */
static const char *shown(const char *s, char *buf, size_t sz)
{
    size_t i, o = 0;

    for (i = 0; s[i] && o + 4 < sz; i++)
        buf[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i])
        buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
    buf[o] = '\0';
    return buf;
}

static const char *type_name(int t)
{
    switch (t) {
    case CONFIG_TYPE_GROUP:
        return "a group { ... }";
    case CONFIG_TYPE_INT:
        return "an integer";
    case CONFIG_TYPE_INT64:
        return "a 64-bit integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ... ]";
    case CONFIG_TYPE_LIST:
        return "a list ( ... )";
    default:
        return "nothing";
    }
}

static char *cdup(struct ctx *c, const char *s)
{
    char *d = strdup(s);

    if (!d)
        coom(c);
    return d;
}

/* ------------------------------------------------------------------------------------------ */
/* integer-literal scanner (see the file comment) */

static bool is_name_start(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '*';
}

static bool is_name_char(char ch)
{
    return is_name_start(ch) || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alnum(char ch)
{
    return is_digit(ch) || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

enum lit_class { LIT_OTHER = 0, LIT_32, LIT_32_BAD, LIT_64, LIT_64_BAD };

/* Classify the number token s[0..n) as libconfig 1.5 reads it: an integer without L (32-bit,
 * wraps silently when too large), with L/LL (64-bit, saturates), or something else. */
static enum lit_class classify_number(const char *s, size_t n)
{
    bool neg = false, hex = false;
    size_t i = 0, nl = 0;
    uint64_t v = 0;
    bool over = false;

    while (n > 0 && s[n - 1] == 'L' && nl < 2) {
        n--;
        nl++;
    }
    if (n > 0 && s[n - 1] == 'L')
        return LIT_OTHER; /* LLL: not an integer token */
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (n - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        if (i != 0)
            return LIT_OTHER; /* libconfig has no signed hex */
        hex = true;
        i += 2;
    }
    if (i >= n)
        return LIT_OTHER;
    for (; i < n; i++) {
        int d = hex ? hexval(s[i]) : (is_digit(s[i]) ? s[i] - '0' : -1);
        unsigned base = hex ? 16 : 10;
        if (d < 0)
            return LIT_OTHER;
        if (v > (UINT64_MAX - (unsigned)d) / base)
            over = true;
        else
            v = v * base + (unsigned)d;
    }
    if (nl == 0) {
        if (over)
            return LIT_32_BAD;
        if (hex)
            return v > 0x7fffffffULL ? LIT_32_BAD : LIT_32;
        return v > (neg ? 0x80000000ULL : 0x7fffffffULL) ? LIT_32_BAD : LIT_32;
    }
    if (over)
        return LIT_64_BAD;
    if (hex)
        return v > (uint64_t)INT64_MAX ? LIT_64_BAD : LIT_64;
    return v > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX) ? LIT_64_BAD : LIT_64;
}

static int record_bad(struct ctx *c, const char *file, unsigned line, int bits, unsigned ord,
                      const char *s, size_t n)
{
    struct badlit *nb, *b;

    if (c->n_bad >= 1024)
        return HQ_OK; /* the first ones are reported anyway */
    nb = realloc(c->bad, (c->n_bad + 1) * sizeof(*nb));
    if (!nb)
        return coom(c);
    c->bad = nb;
    b = &nb[c->n_bad];
    memset(b, 0, sizeof(*b));
    if (file && !(b->file = cdup(c, file)))
        return c->rc;
    b->line = line;
    b->bits = bits;
    b->ord = ord;
    if (!file && c->main_text) {
        b->in_main = true;
        b->off = (size_t)(s - c->main_text);
        b->len = n;
    }
    if (n >= sizeof(b->text))
        n = sizeof(b->text) - 1;
    memcpy(b->text, s, n);
    b->text[n] = '\0';
    c->n_bad++;
    return HQ_OK;
}

static int read_capped_file(const char *path, size_t cap, char **out, size_t *outlen, int *err);
static int prescan(struct ctx *c, const char *text, size_t len, const char *file, int depth);

static int prescan_include(struct ctx *c, const char *name, const char *from, unsigned line,
                           int depth)
{
    char full[PATH_TEXT_MAX];
    char *text = NULL;
    size_t len = 0;
    int e = 0, rc;

    if (!c->incdir)
        return cfail_line(c, from, line, "@include is not supported here (load the file instead)");
    if (name[0] == '\0')
        return cfail_line(c, from, line, "@include: empty file name");
    if (name[0] == '/')
        return cfail_line(c, from, line,
                          "@include \"%s\": use a path relative to the directory of the main "
                          "config file (libconfig 1.5 cannot include absolute paths)",
                          name);
    if (depth >= INCLUDE_MAX_DEPTH)
        return cfail_line(c, from, line, "@include nested more than %d deep (a cycle?)",
                          INCLUDE_MAX_DEPTH);
    if ((size_t)snprintf(full, sizeof(full), "%s/%s", c->incdir, name) >= sizeof(full))
        return cfail_line(c, from, line, "@include: path too long");
    rc = read_capped_file(full, CONFIG_MAX_BYTES, &text, &len, &e);
    if (rc == HQ_ENOMEM)
        return coom(c);
    if (rc == HQ_ETOOBIG)
        return cfail_line(c, from, line, "@include %s: larger than %u bytes", full,
                          CONFIG_MAX_BYTES);
    if (rc != HQ_OK)
        return cfail_line(c, from, line, "@include %s: %s", full,
                          e ? strerror(e) : "not a regular file");
    rc = prescan(c, text, len, name, depth + 1);
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

/* Walk text with libconfig's lexical rules, recording integer literals that libconfig would
 * misread and following @include. file is NULL for the main text.
 *
 * Each literal is attributed to the line libconfig will record for its setting: the line of the
 * name for "name = value", the literal's own line for array and list elements. With the literal's
 * rank among the integers on that line, check_literals() finds its setting. (Ranks count every
 * integer, whatever its size: libconfig 1.7 (Debian 13) reads an integer without an L suffix
 * that does not fit in 32 bits as a 64-bit setting, where 1.5 (Debian 12) wraps it, so the
 * setting's type does not tell which literal it came from.) */
static int prescan(struct ctx *c, const char *text, size_t len, const char *file, int depth)
{
    size_t i = 0;
    unsigned line = 1, nint = 0, cnt_line = 0, name_line = 0, assign_line = 0;
    bool bol = true, after_name = false, assign = false, after_comma = false;

    while (i < len) {
        char ch = text[i];

        if (ch == '\0')
            return cfail_line(c, file, line, "NUL byte in the configuration text");
        if (ch == '\n') {
            line++;
            i++;
            bol = true;
            continue;
        }
        if (bol) {
            size_t j = i;
            bol = false;
            while (j < len && (text[j] == ' ' || text[j] == '\t'))
                j++;
            if (len - j > 8 && memcmp(text + j, "@include", 8) == 0 &&
                (text[j + 8] == ' ' || text[j + 8] == '\t')) {
                size_t k = j + 8, start;
                char name[PATH_TEXT_MAX];
                int rc;

                while (k < len && (text[k] == ' ' || text[k] == '\t'))
                    k++;
                if (k < len && text[k] == '"') {
                    start = ++k;
                    while (k < len && text[k] != '"' && text[k] != '\n' && text[k] != '\0')
                        k++;
                    if (k >= len || text[k] != '"')
                        return cfail_line(c, file, line, "@include: unterminated file name");
                    if (k - start >= sizeof(name))
                        return cfail_line(c, file, line, "@include: path too long");
                    memcpy(name, text + start, k - start);
                    name[k - start] = '\0';
                    rc = prescan_include(c, name, file, line, depth);
                    if (rc != HQ_OK)
                        return rc;
                    after_name = assign = after_comma = false;
                    i = k + 1;
                    continue;
                }
            }
        }
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f') {
            i++;
        } else if (ch == '#' || (ch == '/' && i + 1 < len && text[i + 1] == '/')) {
            while (i < len && text[i] != '\n')
                i++;
        } else if (ch == '/' && i + 1 < len && text[i + 1] == '*') {
            i += 2;
            while (i < len && !(text[i] == '*' && i + 1 < len && text[i + 1] == '/')) {
                if (text[i] == '\n')
                    line++;
                i++;
            }
            i = i < len ? i + 2 : len;
        } else if (ch == '"') {
            after_name = assign = false;
            i++;
            while (i < len && text[i] != '"') {
                if (text[i] == '\\' && i + 1 < len)
                    i++;
                if (text[i] == '\n')
                    line++;
                i++;
            }
            if (i < len)
                i++;
        } else if (is_name_start(ch)) {
            while (i < len && is_name_char(text[i]))
                i++;
            after_name = true;
            assign = false;
            name_line = line;
        } else if ((ch == '=' || ch == ':') && after_name) {
            i++;
            after_name = false;
            assign = true;
            assign_line = name_line;
        } else if (is_digit(ch) ||
                   ((ch == '-' || ch == '+' || ch == '.') && i + 1 < len &&
                    (is_digit(text[i + 1]) || (text[i + 1] == '.' && ch != '.')))) {
            size_t start = i;
            bool is_hex;
            enum lit_class cls;
            unsigned at = assign ? assign_line : line;

            after_name = assign = false;
            i++;
            is_hex = i < len && ch == '0' && (text[i] == 'x' || text[i] == 'X');
            while (i < len) {
                char d = text[i];
                if (is_alnum(d) || d == '.' ||
                    ((d == '-' || d == '+') && !is_hex &&
                     (text[i - 1] == 'e' || text[i - 1] == 'E')))
                    i++;
                else
                    break;
            }
            cls = classify_number(text + start, i - start);
            if (cls != LIT_OTHER && at != cnt_line) {
                cnt_line = at;
                nint = 0;
            }
            if (cls == LIT_32_BAD || cls == LIT_64_BAD) {
                if (record_bad(c, file, at, cls == LIT_32_BAD ? 32 : 64, nint, text + start,
                               i - start) != HQ_OK)
                    return c->rc;
            }
            if (cls != LIT_OTHER)
                nint++;
        } else {
            /* libconfig 1.7 (Debian 13) accepts "[ 1, 2, ]", 1.5 (Debian 12) does not: refuse
             * it on both, so that a config means the same everywhere */
            if ((ch == ']' || ch == ')') && after_comma)
                return cfail_line(c, file, line, "syntax error: a comma before '%c'", ch);
            after_comma = ch == ',';
            after_name = assign = false;
            i++;
            continue;
        }
        /* only blanks, newlines and comments may stand between a comma and what follows */
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\f' && ch != '#' && ch != '/')
            after_comma = false;
    }
    return HQ_OK;
}

/* Do two file names libconfig or the scanner recorded name the same file? (libconfig 1.7
 * records an included file by its path under the include directory, 1.5 as written.) */
static bool same_file(struct ctx *c, const char *a, const char *b)
{
    char fa[PATH_TEXT_MAX];

    if (!a || !b)
        return !a && !b;
    if (strcmp(a, b) == 0)
        return true;
    snprintf(fa, sizeof(fa), "%s", display_file(c, a));
    return strcmp(fa, display_file(c, b)) == 0;
}

/* After parsing: name the settings that hold a misread literal. */
static int check_literals(struct ctx *c, const config_setting_t *s, int depth)
{
    int t = config_setting_type(s), i, n;

    if (depth > NEST_MAX_DEPTH)
        return cfail(c, s, NULL, "nested more than %d levels deep", NEST_MAX_DEPTH);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        const char *sf = config_setting_source_file(s);
        unsigned line = config_setting_source_line(s), ord;
        size_t k;

        /* Settings are visited in document order, so the n-th integer setting on a line is
         * the n-th integer literal the scanner saw on it. */
        if (!c->w_started || line != c->w_line || (c->w_file == NULL) != (sf == NULL) ||
            (sf && strcmp(sf, c->w_file) != 0)) {
            c->w_started = true;
            c->w_file = sf;
            c->w_line = line;
            c->w_n = 0;
        }
        ord = c->w_n++;
        for (k = 0; k < c->n_bad; k++) {
            struct badlit *b = &c->bad[k];
            if (b->line != line || b->ord != ord || !same_file(c, sf, b->file))
                continue;
            if (b->bits == 32)
                return cfail(c, s, NULL,
                             "%s does not fit in a 32-bit integer (libconfig 1.5 would "
                             "silently wrap it): write %sL",
                             b->text, b->text);
            return cfail(c, s, NULL, "%s does not fit in a 64-bit integer", b->text);
        }
        return HQ_OK;
    }
    if (t == CONFIG_TYPE_GROUP || t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
        n = config_setting_length(s);
        for (i = 0; i < n; i++)
            if (check_literals(c, config_setting_get_elem(s, (unsigned)i), depth + 1) != HQ_OK)
                return c->rc;
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* value validators */

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

bool hq_name_valid(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || is_digit(ch) || ch == '_' || ch == '-'))
            return false;
    }
    return n >= 1 && n <= HQ_NAME_MAX;
}

/* RFC 9110 token characters (header field names). */
static bool is_tchar(char ch)
{
    return is_alnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool valid_header_name(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!is_tchar(s[n]))
            return false;
    return n >= 1 && n <= 128;
}

/* "json:/pointer" | "header:Name" | "const:text" | "form:field". NULL when valid, else why. */
static const char *selector_error(const char *s)
{
    size_t n = strlen(s);

    if (n > 1024)
        return "longer than 1024 bytes";
    if (has_ctl(s))
        return "contains control characters";
    if (strncmp(s, "json:", 5) == 0) {
        const char *p = s + 5;
        if (*p != '/')
            return "a json: selector needs a JSON pointer starting with '/', e.g. \"json:/type\"";
        for (; *p; p++)
            if (*p == '~' && p[1] != '0' && p[1] != '1')
                return "bad JSON pointer escape: '~' must be followed by 0 or 1";
        return NULL;
    }
    if (strncmp(s, "header:", 7) == 0)
        return valid_header_name(s + 7) ? NULL : "header: needs a valid header name";
    if (strncmp(s, "const:", 6) == 0)
        return s[6] ? NULL : "const: needs a value";
    if (strncmp(s, "form:", 5) == 0)
        return s[5] ? NULL : "form: needs a field name";
    return "must be \"json:/pointer\", \"header:Name\", \"const:text\" or \"form:field\"";
}

/* Topic binding pattern: words of [a-z0-9_-] or "*" or "#", separated by '.'. */
static const char *binding_error(const char *s)
{
    size_t n = strlen(s), wl = 0, i;
    bool wild = false;

    if (n == 0)
        return "must not be empty";
    if (n > 255)
        return "longer than 255 bytes";
    for (i = 0; i <= n; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (wl == 0)
                return "empty word (words are separated by single dots)";
            wl = 0;
            wild = false;
            continue;
        }
        if (ch == '*' || ch == '#') {
            if (wl != 0)
                return "'*' and '#' must be whole words";
            wild = true;
        } else if (wild) {
            return "'*' and '#' must be whole words";
        } else if (!((ch >= 'a' && ch <= 'z') || is_digit(ch) || ch == '_' || ch == '-')) {
            return "words may hold only a-z, 0-9, '_' and '-' (routing keys are lower-case)";
        }
        wl++;
    }
    return NULL;
}

/* "host:port" with host an IPv4 literal, "localhost" or "*"; normalized to "a.b.c.d:port". */
static const char *listen_error(const char *s, char *out, size_t outsz)
{
    const char *colon = strrchr(s, ':'), *p;
    char host[64];
    size_t hl;
    unsigned port = 0, nd = 0;
    struct in_addr a;

    if (strchr(s, ','))
        return "only one address may be given";
    if (s[0] == '[')
        return "IPv6 listeners are not supported (CivetWeb is built without IPv6)";
    if (!colon)
        return "must be \"host:port\", e.g. \"127.0.0.1:8080\"";
    hl = (size_t)(colon - s);
    if (hl == 0 || hl >= sizeof(host))
        return "must be \"host:port\" with host an IPv4 address, \"localhost\" or \"*\"";
    memcpy(host, s, hl);
    host[hl] = '\0';
    for (p = colon + 1; is_digit(*p) && nd < 6; p++, nd++)
        port = port * 10 + (unsigned)(*p - '0');
    if (nd > 0 && (*p == 's' || *p == 'S') && p[1] == '\0')
        return "TLS listeners (\"s\" port suffix) are not supported: terminate TLS in a "
               "reverse proxy";
    if (nd > 0 && (*p == 'r' || *p == 'R') && p[1] == '\0')
        return "redirect listeners (\"r\" port suffix) are not supported";
    if (nd == 0 || *p != '\0' || colon[1] == '0' || port < 1 || port > 65535)
        return "port must be a number between 1 and 65535";
    if (strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (inet_pton(AF_INET, host, &a) != 1)
        return strchr(host, ':') ? "IPv6 listeners are not supported (CivetWeb is built "
                                   "without IPv6)"
                                 : "host must be an IPv4 address, \"localhost\" or \"*\"";
    snprintf(out, outsz, "%s:%u", host, port);
    return NULL;
}

/* amqp[s]://[user[:pass]@]host[:port][/vhost]. Never echo the URI: it may hold a password. */
static const char *uri_error(const char *s, bool *tls)
{
    const char *p, *auth_end, *at, *host, *host_end;
    size_t i;

    if (strlen(s) > 1024)
        return "longer than 1024 bytes";
    for (i = 0; s[i]; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return "must not contain spaces or control characters";
    if (strncmp(s, "amqp://", 7) == 0) {
        *tls = false;
        p = s + 7;
    } else if (strncmp(s, "amqps://", 8) == 0) {
        *tls = true;
        p = s + 8;
    } else {
        return "must start with amqp:// or amqps://";
    }
    auth_end = p + strcspn(p, "/?#");
    at = NULL;
    for (host = p; host < auth_end; host++)
        if (*host == '@')
            at = host;
    host = at ? at + 1 : p;
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end || host_end == host + 1)
            return "bad IPv6 host (write [addr])";
        host_end++;
    } else {
        host_end = host;
        while (host_end < auth_end && *host_end != ':')
            host_end++;
        if (host_end == host)
            return "needs a host, e.g. amqp://user:pass@host:5672/%2f";
    }
    if (host_end < auth_end) {
        unsigned port = 0, nd = 0;
        if (*host_end != ':')
            return "bad host";
        for (p = host_end + 1; p < auth_end && is_digit(*p) && nd < 6; p++, nd++)
            port = port * 10 + (unsigned)(*p - '0');
        if (nd == 0 || p != auth_end || port < 1 || port > 65535)
            return "port must be a number between 1 and 65535";
    }
    return NULL;
}

static bool valid_exchange_name(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!(is_alnum(s[n]) || s[n] == '_' || s[n] == '-' || s[n] == '.' || s[n] == ':'))
            return false;
    return n >= 1 && n <= 255;
}

/* Standard Webhooks secret: optional "whsec_", then base64 (padding optional) of 1..1024
 * bytes, decoded exactly as the verifier (core/sig.c) does. */
static bool valid_standard_secret(const unsigned char *d, size_t n)
{
    unsigned char key[1024];
    size_t klen = 0;
    bool ok;

    if (n >= 6 && memcmp(d, "whsec_", 6) == 0) {
        d += 6;
        n -= 6;
    }
    ok = hq_b64_decode((const char *)d, n, 1, key, sizeof(key), &klen) == HQ_OK && klen > 0;
    OPENSSL_cleanse(key, sizeof(key));
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* table-driven groups */

enum vkind {
    V_STR,    /* char *; min..max = length; no control characters */
    V_NAME,   /* char[HQ_NAME_MAX + 1]; [a-z0-9_-]{1,64} */
    V_INT,    /* int */
    V_U64,    /* uint64_t */
    V_BOOL,   /* bool */
    V_NUM,    /* double; int, int64 or float */
    V_DUR,    /* uint64_t ms from a string with a unit; min..max in ms */
    V_ENUM,   /* int index into names */
    V_LISTEN, /* char *, normalized "a.b.c.d:port" */
    V_CIDRS,  /* struct hq_cidr_list */
    V_SEL,    /* char *, selector */
    V_HEADER, /* char *, header name */
    V_CUSTOM, /* handled by the caller (type checked there) */
};

#define F_REQ 1u
#define NOFF ((size_t)-1)

struct kspec {
    const char *name;
    enum vkind kind;
    unsigned flags;
    int64_t min, max;
    size_t off;
    const char *const *names; /* V_ENUM, NULL-terminated */
};

static const char *const queue_type_names[] = {"quorum", "classic", NULL};
static const char *const alg_names[] = {"sha256", "sha1", "sha512", NULL};
static const char *const enc_names[] = {"hex", "base64", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const format_names[] = {"text", "json", NULL};
/* The `scheme` values, in enum order: the names of the scheme table (core/scheme.c). */
static const char *scheme_name_list[HQ_SCHEME__COUNT + 1];
static pthread_once_t scheme_names_once = PTHREAD_ONCE_INIT;

static void scheme_names_fill(void)
{
    int i;

    for (i = 0; i < HQ_SCHEME__COUNT; i++)
        scheme_name_list[i] = hq_scheme_name((enum hq_scheme)i);
}

static int get_int64(struct ctx *c, const config_setting_t *s, int64_t min, int64_t max,
                     int64_t *out)
{
    int t = config_setting_type(s);
    long long v;

    if (t == CONFIG_TYPE_FLOAT)
        return cfail(c, s, NULL, "must be an integer, not a float");
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return cfail(c, s, NULL, "must be an integer (got %s)", type_name(t));
    v = t == CONFIG_TYPE_INT ? config_setting_get_int(s) : config_setting_get_int64(s);
    if (v < min || v > max)
        return cfail(c, s, NULL, "must be between %lld and %lld", (long long)min,
                     (long long)max);
    *out = v;
    return HQ_OK;
}

static const char *get_str(struct ctx *c, const config_setting_t *s)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cfail(c, s, NULL, "must be a string (got %s)", type_name(config_setting_type(s)));
        return NULL;
    }
    return config_setting_get_string(s);
}

static int parse_duration(struct ctx *c, const config_setting_t *s, uint64_t min, uint64_t max,
                          uint64_t *out)
{
    char b1[64], b2[24], b3[24];
    const char *v;
    uint64_t ms;

    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return cfail(c, s, NULL, "must be a string with a unit such as \"10s\" (got %s)",
                     type_name(config_setting_type(s)));
    v = config_setting_get_string(s);
    if (hq_duration_parse(v, &ms) != HQ_OK)
        return cfail(c, s, NULL,
                     "invalid duration \"%s\": write digits and a unit: ms, s, m, h or d",
                     shown(v, b1, sizeof(b1)));
    if (ms < min || ms > max) {
        hq_duration_format(min, b2, sizeof(b2));
        hq_duration_format(max, b3, sizeof(b3));
        return cfail(c, s, NULL, "must be between %s and %s", b2, b3);
    }
    *out = ms;
    return HQ_OK;
}

static int parse_cidrs(struct ctx *c, const config_setting_t *s, struct hq_cidr_list *l)
{
    int t = config_setting_type(s), i, n;

    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return cfail(c, s, NULL, "must be an array of CIDR strings, e.g. [ \"10.0.0.0/8\" ]");
    n = config_setting_length(s);
    if (n > MAX_CIDRS)
        return cfail(c, s, NULL, "more than %d entries", MAX_CIDRS);
    hq_cidr_list_free(l);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        struct hq_cidr cidr;
        const char *v = get_str(c, e);
        char b[64];
        int rc;

        if (!v)
            return c->rc;
        if (hq_cidr_parse(v, &cidr) != HQ_OK)
            return cfail(c, e, NULL,
                         "invalid CIDR \"%s\": write an IPv4 or IPv6 address with an optional "
                         "/prefix, host bits zero (e.g. \"203.0.113.0/24\")",
                         shown(v, b, sizeof(b)));
        rc = hq_cidr_list_add(l, &cidr);
        if (rc == HQ_ENOMEM)
            return coom(c);
        if (rc != HQ_OK)
            return cfail(c, e, NULL, "too many entries");
    }
    return HQ_OK;
}

static int set_str(struct ctx *c, char **dst, const char *v)
{
    char *d = cdup(c, v);

    if (!d)
        return c->rc;
    free(*dst);
    *dst = d;
    return HQ_OK;
}

static int parse_value(struct ctx *c, const config_setting_t *s, const struct kspec *k,
                       void *dst)
{
    int64_t iv;
    const char *v;
    char b[80];
    int t = config_setting_type(s);

    switch (k->kind) {
    case V_STR:
        if (!(v = get_str(c, s)))
            return c->rc;
        if ((int64_t)strlen(v) < k->min)
            return cfail(c, s, NULL, "must not be empty");
        if ((int64_t)strlen(v) > k->max)
            return cfail(c, s, NULL, "longer than %lld bytes", (long long)k->max);
        if (has_ctl(v))
            return cfail(c, s, NULL, "contains control characters");
        return set_str(c, dst, v);
    case V_NAME:
        if (!(v = get_str(c, s)))
            return c->rc;
        if (!hq_name_valid(v))
            return cfail(c, s, NULL, "invalid name \"%s\": use 1 to %d characters of a-z, 0-9, "
                                     "'_' and '-'",
                         shown(v, b, sizeof(b)), HQ_NAME_MAX);
        snprintf(dst, HQ_NAME_MAX + 1, "%s", v);
        return HQ_OK;
    case V_INT:
        if (get_int64(c, s, k->min, k->max, &iv) != HQ_OK)
            return c->rc;
        *(int *)dst = (int)iv;
        return HQ_OK;
    case V_U64:
        if (get_int64(c, s, k->min, k->max, &iv) != HQ_OK)
            return c->rc;
        *(uint64_t *)dst = (uint64_t)iv;
        return HQ_OK;
    case V_BOOL:
        if (t != CONFIG_TYPE_BOOL)
            return cfail(c, s, NULL, "must be true or false (got %s)", type_name(t));
        *(bool *)dst = config_setting_get_bool(s) != 0;
        return HQ_OK;
    case V_NUM: {
        double d;
        if (t == CONFIG_TYPE_INT)
            d = config_setting_get_int(s);
        else if (t == CONFIG_TYPE_INT64)
            d = (double)config_setting_get_int64(s);
        else if (t == CONFIG_TYPE_FLOAT)
            d = config_setting_get_float(s);
        else
            return cfail(c, s, NULL, "must be a number (got %s)", type_name(t));
        if (!isfinite(d) || d < (double)k->min || d > (double)k->max)
            return cfail(c, s, NULL, "must be between %lld and %lld", (long long)k->min,
                         (long long)k->max);
        *(double *)dst = d;
        return HQ_OK;
    }
    case V_DUR:
        return parse_duration(c, s, (uint64_t)k->min, (uint64_t)k->max, dst);
    case V_ENUM: {
        size_t i, used = 0;
        char list[160];
        if (!(v = get_str(c, s)))
            return c->rc;
        for (i = 0; k->names[i]; i++) {
            if (strcmp(v, k->names[i]) == 0) {
                *(int *)dst = (int)i;
                return HQ_OK;
            }
        }
        list[0] = '\0';
        for (i = 0; k->names[i] && used < sizeof(list); i++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                             k->names[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return cfail(c, s, NULL, "\"%s\" is not one of: %s", shown(v, b, 40), list);
    }
    case V_LISTEN: {
        char norm[80];
        const char *why;
        if (!(v = get_str(c, s)))
            return c->rc;
        if ((why = listen_error(v, norm, sizeof(norm))) != NULL)
            return cfail(c, s, NULL, "\"%s\": %s", shown(v, b, 48), why);
        return set_str(c, dst, norm);
    }
    case V_CIDRS:
        return parse_cidrs(c, s, dst);
    case V_SEL: {
        const char *why;
        if (!(v = get_str(c, s)))
            return c->rc;
        if ((why = selector_error(v)) != NULL)
            return cfail(c, s, NULL, "\"%s\": %s", shown(v, b, 48), why);
        return set_str(c, dst, v);
    }
    case V_HEADER:
        if (!(v = get_str(c, s)))
            return c->rc;
        if (!valid_header_name(v))
            return cfail(c, s, NULL, "\"%s\" is not a valid HTTP header name",
                         shown(v, b, 48));
        return set_str(c, dst, v);
    case V_CUSTOM:
        return HQ_OK;
    }
    return HQ_OK;
}

/* Edit distance <= 2 (for "did you mean"); n and m are small key names. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b), i, j;
    unsigned row[40], prev, tmp;

    if (n >= 40 || m >= 40)
        return 99;
    for (j = 0; j <= m; j++)
        row[j] = (unsigned)j;
    for (i = 1; i <= n; i++) {
        prev = row[0];
        row[0] = (unsigned)i;
        for (j = 1; j <= m; j++) {
            unsigned best = prev + (a[i - 1] != b[j - 1]);
            tmp = row[j];
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            prev = tmp;
            row[j] = best;
        }
    }
    return row[m];
}

/* Parse the members of group g by table; found[k] gets the member for specs[k]. */
static int parse_group(struct ctx *c, const config_setting_t *g, const struct kspec *specs,
                       size_t n, void *base, const config_setting_t **found)
{
    int i, len = config_setting_length(g);
    size_t k;

    for (i = 0; i < len; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);

        for (k = 0; k < n; k++)
            if (strcmp(specs[k].name, name) == 0)
                break;
        if (k == n) {
            const char *best = NULL;
            unsigned bd = 3;
            for (k = 0; k < n; k++) {
                unsigned d = edit_distance(name, specs[k].name);
                if (d < bd) {
                    bd = d;
                    best = specs[k].name;
                }
            }
            if (best)
                return cfail(c, m, NULL, "unknown key (did you mean \"%s\"?)", best);
            return cfail(c, m, NULL, "unknown key");
        }
        found[k] = m;
        if (specs[k].off != NOFF &&
            parse_value(c, m, &specs[k], (char *)base + specs[k].off) != HQ_OK)
            return c->rc;
    }
    for (k = 0; k < n; k++)
        if ((specs[k].flags & F_REQ) && !found[k])
            return cfail(c, g, specs[k].name, "missing (required)");
    return HQ_OK;
}

static int want_group(struct ctx *c, const config_setting_t *s)
{
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return cfail(c, s, NULL, "must be a group { ... } (got %s)",
                     type_name(config_setting_type(s)));
    return HQ_OK;
}

/* An array or list of non-empty strings, min..max entries. */
static int want_strings(struct ctx *c, const config_setting_t *s, int min, int max)
{
    int t = config_setting_type(s), i, n;

    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return cfail(c, s, NULL, "must be an array of strings [ \"...\" ] (got %s)",
                     type_name(t));
    n = config_setting_length(s);
    if (n < min)
        return cfail(c, s, NULL, min == 1 ? "must not be empty" : "needs at least %d entries",
                     min);
    if (n > max)
        return cfail(c, s, NULL, "more than %d entries", max);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = get_str(c, e);
        if (!v)
            return c->rc;
        if (!*v)
            return cfail(c, e, NULL, "must not be empty");
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* broker */

enum { BR_URIS, BR_EXCHANGE, BR_QUEUE_TYPE, BR_HEARTBEAT, BR_TLS, BR__N };
static const struct kspec broker_keys[BR__N] = {
    [BR_URIS] = {"uris", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [BR_EXCHANGE] = {"exchange", V_STR, 0, 1, 255, offsetof(struct hq_broker_cfg, exchange), NULL},
    [BR_QUEUE_TYPE] = {"queue_type", V_ENUM, 0, 0, 0, offsetof(struct hq_broker_cfg, queue_type),
                       queue_type_names},
    [BR_HEARTBEAT] = {"heartbeat_s", V_INT, 0, 0, 3600, offsetof(struct hq_broker_cfg, heartbeat_s),
                      NULL},
    [BR_TLS] = {"tls", V_CUSTOM, 0, 0, 0, NOFF, NULL},
};

enum { TLS_CA, TLS_CERT, TLS_KEY, TLS_VERIFY, TLS__N };
static const struct kspec tls_keys[TLS__N] = {
    [TLS_CA] = {"ca_file", V_STR, 0, 1, PATH_TEXT_MAX, offsetof(struct hq_tls_cfg, ca_file), NULL},
    [TLS_CERT] = {"cert_file", V_STR, 0, 1, PATH_TEXT_MAX, offsetof(struct hq_tls_cfg, cert_file),
                  NULL},
    [TLS_KEY] = {"key_file", V_STR, 0, 1, PATH_TEXT_MAX, offsetof(struct hq_tls_cfg, key_file),
                 NULL},
    [TLS_VERIFY] = {"verify_peer", V_BOOL, 0, 0, 0, offsetof(struct hq_tls_cfg, verify_peer), NULL},
};

static int check_readable(struct ctx *c, const config_setting_t *s, const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return cfail(c, s, NULL, "cannot use %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cfail(c, s, NULL, "%s is not a regular file", path);
    if (access(path, R_OK) != 0)
        return cfail(c, s, NULL, "cannot read %s: %s", path, strerror(errno));
    return HQ_OK;
}

static void free_strv(char **v, size_t n)
{
    size_t i;

    if (!v)
        return;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int load_broker(struct ctx *c, const config_setting_t *g, struct hq_broker_cfg *b)
{
    const config_setting_t *f[BR__N] = {0};
    bool any_tls = false, any_plain = false;
    size_t i;

    if (want_group(c, g) || parse_group(c, g, broker_keys, BR__N, b, f))
        return c->rc;
    if (f[BR_EXCHANGE]) {
        if (!valid_exchange_name(b->exchange))
            return cfail(c, f[BR_EXCHANGE], NULL,
                         "exchange names hold 1 to 255 characters of A-Z, a-z, 0-9, '-', '_', "
                         "'.' and ':'");
        if (strncmp(b->exchange, "amq.", 4) == 0)
            return cfail(c, f[BR_EXCHANGE], NULL, "names starting with \"amq.\" are reserved by "
                                                  "RabbitMQ");
        if (strcmp(b->exchange, "hookmq.unrouted") == 0 ||
            strcmp(b->exchange, "hookmq.lifecycle") == 0)
            return cfail(c, f[BR_EXCHANGE], NULL, "\"%s\" is used by hookmq's own topology",
                         b->exchange);
    }
    if (f[BR_URIS]) {
        const config_setting_t *u = f[BR_URIS];
        int n;
        if (want_strings(c, u, 1, MAX_URIS))
            return c->rc;
        n = config_setting_length(u);
        free_strv(b->uris, b->n_uris);
        b->n_uris = 0;
        b->uris = calloc((size_t)n, sizeof(*b->uris));
        if (!b->uris)
            return coom(c);
        for (i = 0; i < (size_t)n; i++) {
            const config_setting_t *e = config_setting_get_elem(u, (unsigned)i);
            const char *v = config_setting_get_string(e);
            bool tls = false;
            const char *why = uri_error(v, &tls);
            if (why)
                return cfail(c, e, NULL, "%s", why);
            if (!(b->uris[i] = cdup(c, v)))
                return c->rc;
            b->n_uris = i + 1;
        }
    }
    for (i = 0; i < b->n_uris; i++) {
        if (strncmp(b->uris[i], "amqps://", 8) == 0)
            any_tls = true;
        else
            any_plain = true;
    }
    if (any_tls && any_plain)
        return cfail(c, f[BR_URIS], NULL, "do not mix amqp:// and amqps:// URIs");
    if (f[BR_TLS]) {
        const config_setting_t *tf[TLS__N] = {0};
        struct hq_tls_cfg *t = &b->tls;
        if (want_group(c, f[BR_TLS]) || parse_group(c, f[BR_TLS], tls_keys, TLS__N, t, tf))
            return c->rc;
        t->enabled = true;
        if (!any_tls)
            return cfail(c, f[BR_TLS], NULL, "set, but no broker URI uses amqps://");
        if (!t->cert_file != !t->key_file)
            return cfail(c, f[BR_TLS], t->cert_file ? "key_file" : "cert_file",
                         "cert_file and key_file go together");
        if (t->verify_peer && !t->ca_file)
            return cfail(c, f[BR_TLS], "ca_file",
                         "required while verify_peer is true (rabbitmq-c loads no CA store; "
                         "e.g. /etc/ssl/certs/ca-certificates.crt)");
        if ((tf[TLS_CA] && check_readable(c, tf[TLS_CA], t->ca_file)) ||
            (tf[TLS_CERT] && check_readable(c, tf[TLS_CERT], t->cert_file)) ||
            (tf[TLS_KEY] && check_readable(c, tf[TLS_KEY], t->key_file)))
            return c->rc;
    } else if (any_tls) {
        return cfail(c, f[BR_URIS], NULL,
                     "amqps:// needs a broker.tls group with ca_file (or verify_peer = false)");
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* gateway */

enum {
    GW_LISTEN,
    GW_METRICS,
    GW_MAX_BODY,
    GW_MAX_IN_FLIGHT,
    GW_CONFIRM_TIMEOUT,
    GW_SPOOL_DIR,
    GW_SPOOL_MAX,
    GW_TRUSTED,
    GW_THREADS,
    GW_PUBLISHERS,
    GW_REQ_TIMEOUT,
    GW_KEEPALIVE,
    GW__N
};
#define GWOFF(f) offsetof(struct hq_gateway_cfg, f)
static const struct kspec gateway_keys[GW__N] = {
    [GW_LISTEN] = {"listen", V_LISTEN, 0, 0, 0, GWOFF(listen), NULL},
    [GW_METRICS] = {"metrics_listen", V_LISTEN, 0, 0, 0, GWOFF(metrics_listen), NULL},
    [GW_MAX_BODY] = {"max_body_bytes", V_U64, 0, 1, 64 << 20, GWOFF(max_body_bytes), NULL},
    [GW_MAX_IN_FLIGHT] = {"max_in_flight", V_INT, 0, 1, 1000000, GWOFF(max_in_flight), NULL},
    [GW_CONFIRM_TIMEOUT] = {"confirm_timeout_ms", V_INT, 0, 10, 600000, GWOFF(confirm_timeout_ms),
                            NULL},
    [GW_SPOOL_DIR] = {"spool_dir", V_STR, 0, 1, PATH_TEXT_MAX, GWOFF(spool_dir), NULL},
    [GW_SPOOL_MAX] = {"spool_max_bytes", V_U64, 0, 1 << 20, 1LL << 50, GWOFF(spool_max_bytes),
                      NULL},
    [GW_TRUSTED] = {"trusted_proxies", V_CIDRS, 0, 0, 0, GWOFF(trusted_proxies), NULL},
    [GW_THREADS] = {"threads", V_INT, 0, 1, 1024, GWOFF(threads), NULL},
    [GW_PUBLISHERS] = {"publishers", V_INT, 0, 1, 64, GWOFF(publishers), NULL},
    [GW_REQ_TIMEOUT] = {"request_timeout_ms", V_INT, 0, 100, 600000, GWOFF(request_timeout_ms),
                        NULL},
    [GW_KEEPALIVE] = {"keep_alive_timeout_ms", V_INT, 0, 0, 600000,
                      GWOFF(keep_alive_timeout_ms), NULL},
};

static int load_gateway(struct ctx *c, const config_setting_t *g, struct hq_gateway_cfg *gw)
{
    const config_setting_t *f[GW__N] = {0};

    if (want_group(c, g) || parse_group(c, g, gateway_keys, GW__N, gw, f))
        return c->rc;
    if (gw->metrics_listen && strcmp(gw->metrics_listen, gw->listen) == 0)
        return cfail(c, f[GW_METRICS], NULL, "same address as gateway.listen");
    if (!f[GW_KEEPALIVE] && gw->keep_alive_timeout_ms > gw->request_timeout_ms)
        gw->keep_alive_timeout_ms = gw->request_timeout_ms; /* the default, under a small one */
    if (gw->keep_alive_timeout_ms > gw->request_timeout_ms)
        return cfail(c, f[GW_KEEPALIVE], NULL,
                     "must not exceed request_timeout_ms (%d): an idle keep-alive connection "
                     "holds an HTTP thread",
                     gw->request_timeout_ms);
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* sources */

enum {
    SRC_NAME,
    SRC_SCHEME,
    SRC_SECRETS,
    SRC_SECRET_FILES,
    SRC_SECRET_ENV,
    SRC_TOLERANCE,
    SRC_HEADER,
    SRC_ALGORITHM,
    SRC_ENCODING,
    SRC_PREFIX,
    SRC_URL,
    SRC_EVENT_TYPE,
    SRC_EVENT_ID,
    SRC_ALLOW_FROM,
    SRC_REPLAY_CACHE,
    SRC__N
};
#define SOFF(f) offsetof(struct hq_source_cfg, f)
static const struct kspec source_keys[SRC__N] = {
    [SRC_NAME] = {"name", V_NAME, F_REQ, 0, 0, SOFF(name), NULL},
    [SRC_SCHEME] = {"scheme", V_ENUM, F_REQ, 0, 0, SOFF(scheme), scheme_name_list},
    [SRC_SECRETS] = {"secrets", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [SRC_SECRET_FILES] = {"secret_files", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [SRC_SECRET_ENV] = {"secret_env", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [SRC_TOLERANCE] = {"tolerance_s", V_INT, 0, 0, 86400, SOFF(tolerance_s), NULL},
    [SRC_HEADER] = {"header", V_HEADER, 0, 0, 0, SOFF(header), NULL},
    [SRC_ALGORITHM] = {"algorithm", V_ENUM, 0, 0, 0, SOFF(algorithm), alg_names},
    [SRC_ENCODING] = {"encoding", V_ENUM, 0, 0, 0, SOFF(encoding), enc_names},
    [SRC_PREFIX] = {"prefix", V_STR, 0, 0, 64, SOFF(prefix), NULL},
    [SRC_URL] = {"url", V_STR, 0, 1, 2048, SOFF(url), NULL},
    [SRC_EVENT_TYPE] = {"event_type", V_SEL, 0, 0, 0, SOFF(event_type), NULL},
    [SRC_EVENT_ID] = {"event_id", V_SEL, 0, 0, 0, SOFF(event_id), NULL},
    [SRC_ALLOW_FROM] = {"allow_from", V_CIDRS, 0, 0, 0, SOFF(allow_from), NULL},
    [SRC_REPLAY_CACHE] = {"replay_cache_bytes", V_U64, 0, 65536, 1LL << 30,
                          SOFF(replay_cache_bytes), NULL},
};

static void secret_free(struct hq_secret *s)
{
    if (s->data) {
        OPENSSL_cleanse(s->data, s->len);
        free(s->data);
    }
    s->data = NULL;
    s->len = 0;
}

/* Read a regular file of at most cap bytes into *out (NUL-terminated). HQ_EIO with *err = errno
 * (0: not a regular file), HQ_ETOOBIG, HQ_ENOMEM. */
static int read_capped_file(const char *path, size_t cap, char **out, size_t *outlen, int *err)
{
    int fd, rc = HQ_EIO;
    struct stat st;
    char *buf = NULL;
    size_t len = 0, alloc = 0;

    *err = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        *err = errno;
        return HQ_EIO;
    }
    if (fstat(fd, &st) != 0) {
        *err = errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode))
        goto out; /* a FIFO or device could block or never end */
    for (;;) {
        ssize_t r;
        if (len + 1 >= alloc) {
            size_t na = alloc ? alloc * 2 : 4096;
            char *nb;
            if (na > cap + 2)
                na = cap + 2;
            if (na <= alloc) {
                rc = HQ_ETOOBIG;
                goto out;
            }
            nb = malloc(na);
            if (!nb) {
                rc = HQ_ENOMEM;
                goto out;
            }
            if (buf) {
                memcpy(nb, buf, len);
                OPENSSL_cleanse(buf, alloc);
                free(buf);
            }
            buf = nb;
            alloc = na;
        }
        r = read(fd, buf + len, alloc - len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > cap) {
            rc = HQ_ETOOBIG;
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
    rc = HQ_OK;
out:
    if (buf) {
        OPENSSL_cleanse(buf, alloc);
        free(buf);
    }
    close(fd);
    return rc;
}

static int add_secret(struct ctx *c, struct hq_source_cfg *src, const config_setting_t *e,
                      const char *data, size_t len)
{
    struct hq_secret *ns;
    unsigned char *d;

    if (src->n_secrets >= MAX_SECRETS)
        return cfail(c, e, NULL, "more than %d secrets in one source", MAX_SECRETS);
    if (len == 0)
        return cfail(c, e, NULL, "the secret is empty");
    if (memchr(data, '\0', len))
        return cfail(c, e, NULL, "the secret contains a NUL byte");
    ns = realloc(src->secrets, (src->n_secrets + 1) * sizeof(*ns));
    if (!ns)
        return coom(c);
    src->secrets = ns;
    d = malloc(len + 1);
    if (!d)
        return coom(c);
    memcpy(d, data, len);
    d[len] = '\0';
    ns[src->n_secrets].data = d;
    ns[src->n_secrets].len = len;
    src->n_secrets++;
    return HQ_OK;
}

static int load_secrets(struct ctx *c, const config_setting_t **f, struct hq_source_cfg *src)
{
    int i, n;

    if (f[SRC_SECRETS]) {
        if (want_strings(c, f[SRC_SECRETS], 0, MAX_SECRETS))
            return c->rc;
        n = config_setting_length(f[SRC_SECRETS]);
        for (i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(f[SRC_SECRETS], (unsigned)i);
            const char *v = config_setting_get_string(e);
            if (add_secret(c, src, e, v, strlen(v)))
                return c->rc;
        }
    }
    if (f[SRC_SECRET_FILES]) {
        if (want_strings(c, f[SRC_SECRET_FILES], 0, MAX_SECRETS))
            return c->rc;
        n = config_setting_length(f[SRC_SECRET_FILES]);
        for (i = 0; i < n; i++) {
            const config_setting_t *e =
                config_setting_get_elem(f[SRC_SECRET_FILES], (unsigned)i);
            const char *path = config_setting_get_string(e);
            char *data = NULL, b[256];
            size_t len = 0, rawlen;
            int err = 0, rc;

            rc = read_capped_file(path, SECRET_MAX_BYTES, &data, &len, &err);
            if (rc == HQ_ENOMEM)
                return coom(c);
            if (rc == HQ_ETOOBIG)
                return cfail(c, e, NULL, "%s is larger than %u bytes", shown(path, b, sizeof(b)),
                             SECRET_MAX_BYTES);
            if (rc != HQ_OK)
                return cfail(c, e, NULL, "cannot read secret file %s: %s",
                             shown(path, b, sizeof(b)), err ? strerror(err) : "not a regular file");
            rawlen = len;
            /* one trailing newline, as editors and `echo` add */
            if (len > 0 && data[len - 1] == '\n') {
                len--;
                if (len > 0 && data[len - 1] == '\r')
                    len--;
            }
            rc = add_secret(c, src, e, data, len);
            OPENSSL_cleanse(data, rawlen);
            free(data);
            if (rc != HQ_OK)
                return c->rc;
        }
    }
    if (f[SRC_SECRET_ENV]) {
        if (want_strings(c, f[SRC_SECRET_ENV], 0, MAX_SECRETS))
            return c->rc;
        n = config_setting_length(f[SRC_SECRET_ENV]);
        for (i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(f[SRC_SECRET_ENV], (unsigned)i);
            const char *var = config_setting_get_string(e);
            const char *v = getenv(var);
            char b[80];
            if (!v || !*v)
                return cfail(c, e, NULL, "environment variable %s is %s",
                             shown(var, b, sizeof(b)), v ? "empty" : "not set");
            if (add_secret(c, src, e, v, strlen(v)))
                return c->rc;
        }
    }
    return HQ_OK;
}

static int load_source(struct ctx *c, const config_setting_t *g, struct hq_source_cfg *src)
{
    const config_setting_t *f[SRC__N] = {0};
    const char *sn;
    char names[128];
    size_t i;

    pthread_once(&scheme_names_once, scheme_names_fill);
    src->tolerance_s = -1;
    src->replay_cache_bytes = 4 << 20;
    src->algorithm = HQ_ALG_SHA256;
    src->encoding = HQ_ENC_HEX;
    if (want_group(c, g) || parse_group(c, g, source_keys, SRC__N, src, f))
        return c->rc;
    sn = hq_scheme_name(src->scheme);
    if (load_secrets(c, f, src))
        return c->rc;

    if (f[SRC_TOLERANCE] && !scheme_has_timestamp(src->scheme))
        return cfail(c, f[SRC_TOLERANCE], NULL, "scheme %s has no signed timestamp", sn);
    if (src->scheme != HQ_SCHEME_HMAC) {
        if (f[SRC_ALGORITHM])
            return cfail(c, f[SRC_ALGORITHM], NULL, "only for scheme hmac (this is %s)", sn);
        if (f[SRC_ENCODING])
            return cfail(c, f[SRC_ENCODING], NULL, "only for scheme hmac (this is %s)", sn);
    }
    if (src->scheme != HQ_SCHEME_HMAC && src->scheme != HQ_SCHEME_TOKEN) {
        if (f[SRC_HEADER])
            return cfail(c, f[SRC_HEADER], NULL, "only for schemes hmac and token (this is %s)",
                         sn);
        if (f[SRC_PREFIX])
            return cfail(c, f[SRC_PREFIX], NULL, "only for schemes hmac and token (this is %s)",
                         sn);
    }
    if (f[SRC_URL]) {
        if (!hq_scheme_ops(src->scheme)->url)
            return cfail(c, f[SRC_URL], NULL, "only for schemes %s (this is %s)",
                         url_scheme_names(names, sizeof(names)), sn);
        if (strncmp(src->url, "https://", 8) != 0 && strncmp(src->url, "http://", 7) != 0)
            return cfail(c, f[SRC_URL], NULL, "must start with https:// or http://");
        if (strchr(src->url, ' '))
            return cfail(c, f[SRC_URL], NULL, "must not contain spaces");
    } else if (hq_scheme_ops(src->scheme)->url) {
        /* the URL the provider signs: never rebuilt from the request's (untrusted) Host */
        return cfail(c, g, "url",
                     "required for scheme %s: the public URL the provider signs, e.g. "
                     "\"https://hooks.example.com/webhooks/%s\"",
                     sn, src->name);
    }
    if (src->scheme == HQ_SCHEME_HMAC && !src->header)
        return cfail(c, g, "header", "required for scheme hmac (the signature header)");
    if (src->scheme == HQ_SCHEME_TOKEN) {
        /* token: header defaults to Authorization; an unset prefix stays NULL, which the
         * verifier reads as "Bearer " (case-insensitive) on Authorization and "" elsewhere. */
        if (!src->header && set_str(c, &src->header, "Authorization"))
            return c->rc;
    } else if (!src->prefix && set_str(c, &src->prefix, "")) {
        return c->rc;
    }

    if (src->scheme == HQ_SCHEME_NONE) {
        if (src->n_secrets)
            return cfail(c, f[SRC_SECRETS] ? f[SRC_SECRETS]
                            : f[SRC_SECRET_FILES] ? f[SRC_SECRET_FILES] : f[SRC_SECRET_ENV],
                         NULL, "scheme none takes no secrets");
    } else if (src->n_secrets == 0) {
        const config_setting_t *at = f[SRC_SECRETS] ? f[SRC_SECRETS] : g;
        return cfail(c, at, f[SRC_SECRETS] ? NULL : "secrets",
                     "scheme %s needs at least one secret (secrets, secret_files or secret_env)",
                     sn);
    }
    for (i = 0; i < src->n_secrets; i++) {
        const struct hq_secret *s = &src->secrets[i];
        if (src->scheme == HQ_SCHEME_STANDARD && !valid_standard_secret(s->data, s->len))
            return cfail(c, g, "secrets",
                         "secret %zu is not a Standard Webhooks secret (\"whsec_\" + base64)",
                         i + 1);
        if (src->scheme == HQ_SCHEME_BASIC && !memchr(s->data, ':', s->len))
            return cfail(c, g, "secrets", "secret %zu must be \"user:password\" for scheme basic",
                         i + 1);
    }
    return HQ_OK;
}

static int load_sources(struct ctx *c, const config_setting_t *l, struct hq_config *cfg)
{
    int n, i, j;

    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return cfail(c, l, NULL, "must be a list ( { ... }, { ... } ) (got %s)",
                     type_name(config_setting_type(l)));
    n = config_setting_length(l);
    if (n > MAX_SOURCES)
        return cfail(c, l, NULL, "more than %d sources", MAX_SOURCES);
    if (n == 0)
        return HQ_OK;
    cfg->sources = calloc((size_t)n, sizeof(*cfg->sources));
    if (!cfg->sources)
        return coom(c);
    for (i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
        cfg->n_sources = (size_t)i + 1;
        if (load_source(c, g, &cfg->sources[i]))
            return c->rc;
        for (j = 0; j < i; j++)
            if (strcmp(cfg->sources[j].name, cfg->sources[i].name) == 0)
                return cfail(c, config_setting_get_member(g, "name"), NULL,
                             "duplicate source name \"%s\" (also sources[%d])",
                             cfg->sources[i].name, j);
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* consumers */

enum {
    CON_NAME,
    CON_BINDINGS,
    CON_HANDLER,
    CON_OPTIONS,
    CON_PREFETCH,
    CON_CONCURRENCY,
    CON_MAX_PER_SECOND,
    CON_RETRY,
    CON_REDRIVE,
    CON_DEDUPE,
    CON_METRICS,
    CON_STEPS,
    CON__N
};
#define COFF(f) offsetof(struct hq_consumer_cfg, f)
static const struct kspec consumer_keys[CON__N] = {
    [CON_NAME] = {"name", V_NAME, F_REQ, 0, 0, COFF(name), NULL},
    [CON_BINDINGS] = {"bindings", V_CUSTOM, F_REQ, 0, 0, NOFF, NULL},
    [CON_HANDLER] = {"handler", V_STR, F_REQ, 1, PATH_TEXT_MAX, COFF(handler), NULL},
    [CON_OPTIONS] = {"options", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [CON_PREFETCH] = {"prefetch", V_INT, 0, 1, 65535, COFF(prefetch), NULL},
    [CON_CONCURRENCY] = {"concurrency", V_INT, 0, 1, 256, COFF(concurrency), NULL},
    [CON_MAX_PER_SECOND] = {"max_per_second", V_NUM, 0, 0, 1000000, COFF(max_per_second), NULL},
    [CON_RETRY] = {"retry", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [CON_REDRIVE] = {"redrive", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [CON_DEDUPE] = {"dedupe", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [CON_METRICS] = {"metrics_listen", V_LISTEN, 0, 0, 0, COFF(metrics_listen), NULL},
    [CON_STEPS] = {"steps", V_CUSTOM, 0, 0, 0, NOFF, NULL},
};

enum { RT_DELAYS, RT_MAX_ATTEMPTS, RT__N };
static const struct kspec retry_keys[RT__N] = {
    [RT_DELAYS] = {"delays", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [RT_MAX_ATTEMPTS] = {"max_attempts", V_INT, 0, 1, 1000, COFF(max_attempts), NULL},
};

enum { RD_AFTER, RD_MAX_TIMES, RD__N };
static const struct kspec redrive_keys[RD__N] = {
    [RD_AFTER] = {"after", V_DUR, F_REQ, (int64_t)MS_S, (int64_t)(30 * MS_D),
                  COFF(redrive_after_ms), NULL},
    [RD_MAX_TIMES] = {"max_times", V_INT, 0, 1, 1000, COFF(redrive_max_times), NULL},
};

enum { DD_WINDOW, DD_PATH, DD__N };
static const struct kspec dedupe_keys[DD__N] = {
    [DD_WINDOW] = {"window", V_DUR, 0, (int64_t)MS_S, (int64_t)(30 * MS_D), COFF(dedupe_window_ms),
                   NULL},
    [DD_PATH] = {"path", V_STR, F_REQ, 1, PATH_TEXT_MAX, COFF(dedupe_path), NULL},
};

/* Durable steps (docs/consumers.md): the bytes of an event's saved steps, names included. At
 * most 96 KiB: the steps travel in the message's properties, which must fit one 128 KiB frame. */
enum { ST_MAX_BYTES, ST__N };
static const struct kspec steps_keys[ST__N] = {
    [ST_MAX_BYTES] = {"max_bytes", V_INT, 0, 1, 96 * 1024, COFF(steps_max_bytes), NULL},
};

static const char *const reserved_consumers[] = {"unrouted", "archive", "events", "lifecycle"};

/* Scalar setting as text (numbers and booleans too). */
static char *scalar_text(struct ctx *c, const config_setting_t *s)
{
    char b[64];

    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING:
        return cdup(c, config_setting_get_string(s));
    case CONFIG_TYPE_INT:
        snprintf(b, sizeof(b), "%d", config_setting_get_int(s));
        break;
    case CONFIG_TYPE_INT64:
        snprintf(b, sizeof(b), "%lld", config_setting_get_int64(s));
        break;
    case CONFIG_TYPE_BOOL:
        snprintf(b, sizeof(b), "%s", config_setting_get_bool(s) ? "true" : "false");
        break;
    case CONFIG_TYPE_FLOAT: {
        double d = config_setting_get_float(s);
        int prec;
        for (prec = 15; prec <= 17; prec++) {
            snprintf(b, sizeof(b), "%.*g", prec, d);
            if (strtod(b, NULL) == d)
                break;
        }
        break;
    }
    default:
        return NULL;
    }
    return cdup(c, b);
}

static void opt_free(struct hq_opt *o)
{
    size_t i;

    free((void *)o->key);
    free((void *)o->value);
    if (o->values) {
        for (i = 0; i < o->n_values; i++)
            free((void *)o->values[i]);
        free((void *)o->values);
    }
}

static int load_options(struct ctx *c, const config_setting_t *g, struct hq_consumer_cfg *con)
{
    int n, i;

    if (want_group(c, g))
        return c->rc;
    n = config_setting_length(g);
    if (n > MAX_OPTIONS)
        return cfail(c, g, NULL, "more than %d options", MAX_OPTIONS);
    if (n == 0)
        return HQ_OK;
    con->options = calloc((size_t)n, sizeof(*con->options));
    if (!con->options)
        return coom(c);
    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        struct hq_opt *o = &con->options[i];
        int t = config_setting_type(m);

        con->n_options = (size_t)i + 1;
        if (!(o->key = cdup(c, config_setting_name(m))))
            return c->rc;
        if (strcmp(o->key, "timeout") == 0) {
            uint64_t ms;
            if (parse_duration(c, m, 1, 7 * MS_D, &ms))
                return c->rc;
        }
        if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
            int k, nv = config_setting_length(m);
            const char **vals;
            if (nv > MAX_OPT_VALUES)
                return cfail(c, m, NULL, "more than %d values", MAX_OPT_VALUES);
            vals = calloc((size_t)nv + 1, sizeof(*vals));
            if (!vals)
                return coom(c);
            o->values = vals;
            for (k = 0; k < nv; k++) {
                const config_setting_t *e = config_setting_get_elem(m, (unsigned)k);
                if (!config_setting_is_scalar(e))
                    return cfail(c, e, NULL, "options hold scalars and arrays of scalars only");
                if (!(vals[k] = scalar_text(c, e)))
                    return c->rc;
                o->n_values = (size_t)k + 1;
            }
        } else if (config_setting_is_scalar(m)) {
            if (!(o->value = scalar_text(c, m)))
                return c->rc;
        } else {
            return cfail(c, m, NULL, "options hold scalars and arrays of scalars only (got %s)",
                         type_name(t));
        }
    }
    return HQ_OK;
}

static int load_consumer(struct ctx *c, const config_setting_t *g, struct hq_consumer_cfg *con)
{
    const config_setting_t *f[CON__N] = {0};
    const char *h;
    size_t i;
    int n;
    static const uint64_t default_delays[] = {10 * MS_S, 60 * MS_S, 600 * MS_S, 3600 * MS_S};

    con->prefetch = 16;
    con->concurrency = 1;
    con->max_per_second = 0;
    con->max_attempts = 6;
    con->redrive_max_times = 3;
    con->dedupe_window_ms = MS_D;
    con->steps_max_bytes = 65536;
    if (want_group(c, g) || parse_group(c, g, consumer_keys, CON__N, con, f))
        return c->rc;
    for (i = 0; i < sizeof(reserved_consumers) / sizeof(reserved_consumers[0]); i++)
        if (strcmp(con->name, reserved_consumers[i]) == 0)
            return cfail(c, f[CON_NAME], NULL,
                         "\"%s\" is reserved (unrouted, archive, events, lifecycle)", con->name);
    if (con->concurrency > con->prefetch)
        return cfail(c, f[CON_CONCURRENCY] ? f[CON_CONCURRENCY] : g,
                     f[CON_CONCURRENCY] ? NULL : "concurrency",
                     "concurrency (%d) must not exceed prefetch (%d)", con->concurrency,
                     con->prefetch);
    h = con->handler;
    if (strcmp(h, "exec") != 0 && strcmp(h, "http") != 0 && strcmp(h, "log") != 0 &&
        !strchr(h, '/'))
        return cfail(c, f[CON_HANDLER], NULL,
                     "must be exec, http, log or a path to a plugin .so (containing a '/')");

    /* bindings */
    if (want_strings(c, f[CON_BINDINGS], 1, MAX_BINDINGS))
        return c->rc;
    n = config_setting_length(f[CON_BINDINGS]);
    con->bindings = calloc((size_t)n, sizeof(*con->bindings));
    if (!con->bindings)
        return coom(c);
    for (i = 0; i < (size_t)n; i++) {
        const config_setting_t *e = config_setting_get_elem(f[CON_BINDINGS], (unsigned)i);
        const char *v = config_setting_get_string(e), *why;
        char b[64];
        if ((why = binding_error(v)) != NULL)
            return cfail(c, e, NULL, "\"%s\": %s", shown(v, b, sizeof(b)), why);
        if (!(con->bindings[i] = cdup(c, v)))
            return c->rc;
        con->n_bindings = i + 1;
    }

    if (f[CON_OPTIONS] && load_options(c, f[CON_OPTIONS], con))
        return c->rc;

    /* retry */
    if (f[CON_RETRY]) {
        const config_setting_t *rf[RT__N] = {0};
        if (want_group(c, f[CON_RETRY]) || parse_group(c, f[CON_RETRY], retry_keys, RT__N, con, rf))
            return c->rc;
        if (rf[RT_DELAYS]) {
            const config_setting_t *d = rf[RT_DELAYS];
            int t = config_setting_type(d);
            if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
                return cfail(c, d, NULL, "must be an array of durations, e.g. [ \"10s\", \"1m\" ]");
            n = config_setting_length(d);
            if (n < 1 || n > MAX_DELAYS)
                return cfail(c, d, NULL, "needs 1 to %d delays", MAX_DELAYS);
            con->delays_ms = calloc((size_t)n, sizeof(*con->delays_ms));
            if (!con->delays_ms)
                return coom(c);
            for (i = 0; i < (size_t)n; i++) {
                if (parse_duration(c, config_setting_get_elem(d, (unsigned)i), 1, 7 * MS_D,
                                   &con->delays_ms[i]))
                    return c->rc;
                con->n_delays = i + 1;
            }
        }
    }
    if (!con->delays_ms) {
        con->delays_ms = malloc(sizeof(default_delays));
        if (!con->delays_ms)
            return coom(c);
        memcpy(con->delays_ms, default_delays, sizeof(default_delays));
        con->n_delays = sizeof(default_delays) / sizeof(default_delays[0]);
    }
    if (f[CON_REDRIVE]) {
        const config_setting_t *rf[RD__N] = {0};
        if (want_group(c, f[CON_REDRIVE]) ||
            parse_group(c, f[CON_REDRIVE], redrive_keys, RD__N, con, rf))
            return c->rc;
        con->redrive = true;
    }
    if (f[CON_DEDUPE]) {
        const config_setting_t *df[DD__N] = {0};
        if (want_group(c, f[CON_DEDUPE]) ||
            parse_group(c, f[CON_DEDUPE], dedupe_keys, DD__N, con, df))
            return c->rc;
        con->dedupe = true;
    }
    if (f[CON_STEPS]) {
        const config_setting_t *sf[ST__N] = {0};
        if (want_group(c, f[CON_STEPS]) ||
            parse_group(c, f[CON_STEPS], steps_keys, ST__N, con, sf))
            return c->rc;
    }
    return HQ_OK;
}

static int load_consumers(struct ctx *c, const config_setting_t *l, struct hq_config *cfg)
{
    int n, i, j;

    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return cfail(c, l, NULL, "must be a list ( { ... }, { ... } ) (got %s)",
                     type_name(config_setting_type(l)));
    n = config_setting_length(l);
    if (n > MAX_CONSUMERS)
        return cfail(c, l, NULL, "more than %d consumers", MAX_CONSUMERS);
    if (n == 0)
        return HQ_OK;
    cfg->consumers = calloc((size_t)n, sizeof(*cfg->consumers));
    if (!cfg->consumers)
        return coom(c);
    for (i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
        cfg->n_consumers = (size_t)i + 1;
        if (load_consumer(c, g, &cfg->consumers[i]))
            return c->rc;
        for (j = 0; j < i; j++)
            if (strcmp(cfg->consumers[j].name, cfg->consumers[i].name) == 0)
                return cfail(c, config_setting_get_member(g, "name"), NULL,
                             "duplicate consumer name \"%s\" (also consumers[%d])",
                             cfg->consumers[i].name, j);
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* console (hookmq-console, docs/console.md) */

#define MAX_CONSOLE_USERS 256
static const char *const role_names[] = {"viewer", "operator", NULL};

enum { CU_NAME, CU_HASH, CU_ROLE, CU__N };
#define CUOFF(f) offsetof(struct hq_console_user, f)
static const struct kspec console_user_keys[CU__N] = {
    [CU_NAME] = {"name", V_NAME, F_REQ, 0, 0, CUOFF(name), NULL},
    [CU_HASH] = {"password_hash", V_STR, F_REQ, 1, HQ_PASSWD_HASH_MAX, CUOFF(password_hash), NULL},
    [CU_ROLE] = {"role", V_ENUM, F_REQ, 0, 0, CUOFF(role), role_names},
};

enum { CS_LISTEN, CS_USERS, CS_TTL, CS_READ_ONLY, CS_SECURE_COOKIE, CS_THREADS, CS__N };
#define CSOFF(f) offsetof(struct hq_console_cfg, f)
static const struct kspec console_keys[CS__N] = {
    [CS_LISTEN] = {"listen", V_LISTEN, 0, 0, 0, CSOFF(listen), NULL},
    [CS_USERS] = {"users", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [CS_TTL] = {"session_ttl", V_DUR, 0, 1000, 30LL * 86400000, CSOFF(session_ttl_ms), NULL},
    [CS_READ_ONLY] = {"read_only", V_BOOL, 0, 0, 0, CSOFF(read_only), NULL},
    [CS_SECURE_COOKIE] = {"secure_cookie", V_BOOL, 0, 0, 0, CSOFF(secure_cookie), NULL},
    [CS_THREADS] = {"threads", V_INT, 0, 2, 256, CSOFF(threads), NULL},
};

static int load_console(struct ctx *c, const config_setting_t *g, struct hq_console_cfg *cs)
{
    const config_setting_t *f[CS__N] = {0}, *l;
    int n, i, j;

    if (want_group(c, g) || parse_group(c, g, console_keys, CS__N, cs, f))
        return c->rc;
    if (!(l = f[CS_USERS]))
        return HQ_OK;
    if (config_setting_type(l) != CONFIG_TYPE_LIST)
        return cfail(c, l, NULL, "must be a list ( { name; password_hash; role; }, ... ) (got %s)",
                     type_name(config_setting_type(l)));
    n = config_setting_length(l);
    if (n > MAX_CONSOLE_USERS)
        return cfail(c, l, NULL, "more than %d users", MAX_CONSOLE_USERS);
    if (n == 0)
        return HQ_OK;
    if (!(cs->users = calloc((size_t)n, sizeof(*cs->users))))
        return coom(c);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(l, (unsigned)i), *uf[CU__N] = {0};
        struct hq_console_user *u = &cs->users[i];
        const char *why = NULL;

        cs->n_users = (size_t)i + 1;
        if (want_group(c, e) || parse_group(c, e, console_user_keys, CU__N, u, uf))
            return c->rc;
        if (!hq_passwd_valid(u->password_hash, &why)) /* never shown: it is a hash */
            return cfail(c, uf[CU_HASH], NULL, "not a password hash: %s", why);
        for (j = 0; j < i; j++)
            if (strcmp(cs->users[j].name, u->name) == 0)
                return cfail(c, uf[CU_NAME], NULL, "duplicate user name \"%s\" (also users[%d])",
                             u->name, j);
    }
    return HQ_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* archive, log, root */

enum { AR_DIR, AR_KEEP_DAYS, AR_METRICS, AR_BATCH_MAX, AR_BATCH_MS, AR__N };
#define AOFF(f) offsetof(struct hq_archive_cfg, f)
static const struct kspec archive_keys[AR__N] = {
    [AR_DIR] = {"dir", V_STR, 0, 1, PATH_TEXT_MAX, AOFF(dir), NULL},
    [AR_KEEP_DAYS] = {"keep_days", V_INT, 0, 0, 36500, AOFF(keep_days), NULL},
    [AR_METRICS] = {"metrics_listen", V_LISTEN, 0, 0, 0, AOFF(metrics_listen), NULL},
    [AR_BATCH_MAX] = {"batch_max", V_INT, 0, 1, 65536, AOFF(batch_max), NULL},
    [AR_BATCH_MS] = {"batch_ms", V_INT, 0, 0, 10000, AOFF(batch_ms), NULL},
};

enum { LOG_FORMAT, LOG_LEVEL, LOG__N };
static const struct kspec log_keys[LOG__N] = {
    [LOG_FORMAT] = {"format", V_ENUM, 0, 0, 0, offsetof(struct hq_config, log_format),
                    format_names},
    [LOG_LEVEL] = {"level", V_ENUM, 0, 0, 0, offsetof(struct hq_config, log_level), level_names},
};

enum {
    ROOT_BROKER,
    ROOT_GATEWAY,
    ROOT_SOURCES,
    ROOT_CONSUMERS,
    ROOT_ARCHIVE,
    ROOT_LOG,
    ROOT_CONSOLE,
    ROOT__N
};
static const struct kspec root_keys[ROOT__N] = {
    [ROOT_BROKER] = {"broker", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [ROOT_GATEWAY] = {"gateway", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [ROOT_SOURCES] = {"sources", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [ROOT_CONSUMERS] = {"consumers", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [ROOT_ARCHIVE] = {"archive", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [ROOT_LOG] = {"log", V_CUSTOM, 0, 0, 0, NOFF, NULL},
    [ROOT_CONSOLE] = {"console", V_CUSTOM, 0, 0, 0, NOFF, NULL},
};

static int set_defaults(struct ctx *c, struct hq_config *cfg)
{
    struct hq_broker_cfg *b = &cfg->broker;
    struct hq_gateway_cfg *g = &cfg->gateway;

    b->uris = calloc(1, sizeof(*b->uris));
    if (!b->uris || !(b->uris[0] = cdup(c, "amqp://guest:guest@127.0.0.1:5672/%2f")))
        return coom(c);
    b->n_uris = 1;
    if (!(b->exchange = cdup(c, "hookmq.events")))
        return c->rc;
    b->queue_type = HQ_QUEUE_QUORUM;
    b->heartbeat_s = 10;
    b->tls.verify_peer = true;
    if (!(g->listen = cdup(c, "127.0.0.1:8080")))
        return c->rc;
    g->max_body_bytes = 1 << 20;
    g->max_in_flight = 1024;
    g->confirm_timeout_ms = 2000;
    g->spool_max_bytes = 1ULL << 30;
    g->threads = 256;
    g->publishers = 2;
    g->request_timeout_ms = 10000;
    g->keep_alive_timeout_ms = 1000;
    if (!(cfg->archive.dir = cdup(c, "/var/lib/hookmq/archive")))
        return c->rc;
    cfg->archive.keep_days = 90;
    cfg->archive.batch_max = 256;
    cfg->archive.batch_ms = 50;
    if (!(cfg->console.listen = cdup(c, "127.0.0.1:8088")))
        return c->rc;
    cfg->console.session_ttl_ms = 8 * 3600 * 1000ULL;
    cfg->console.threads = 16;
    cfg->log_level = HQ_LOG_INFO;
    cfg->log_format = HQ_LOG_TEXT;
    return HQ_OK;
}

static int load_root(struct ctx *c, const config_setting_t *root, struct hq_config *cfg)
{
    const config_setting_t *f[ROOT__N] = {0};

    if (parse_group(c, root, root_keys, ROOT__N, cfg, f))
        return c->rc;
    if (f[ROOT_BROKER] && load_broker(c, f[ROOT_BROKER], &cfg->broker))
        return c->rc;
    if (f[ROOT_GATEWAY] && load_gateway(c, f[ROOT_GATEWAY], &cfg->gateway))
        return c->rc;
    if (f[ROOT_SOURCES] && load_sources(c, f[ROOT_SOURCES], cfg))
        return c->rc;
    if (f[ROOT_CONSUMERS] && load_consumers(c, f[ROOT_CONSUMERS], cfg))
        return c->rc;
    if (f[ROOT_ARCHIVE]) {
        const config_setting_t *af[AR__N] = {0};
        if (want_group(c, f[ROOT_ARCHIVE]) ||
            parse_group(c, f[ROOT_ARCHIVE], archive_keys, AR__N, &cfg->archive, af))
            return c->rc;
    }
    if (f[ROOT_LOG]) {
        const config_setting_t *lf[LOG__N] = {0};
        if (want_group(c, f[ROOT_LOG]) || parse_group(c, f[ROOT_LOG], log_keys, LOG__N, cfg, lf))
            return c->rc;
    }
    if (f[ROOT_CONSOLE] && load_console(c, f[ROOT_CONSOLE], &cfg->console))
        return c->rc;
    return HQ_OK;
}

/* Overwrite the secrets libconfig keeps in its tree before config_destroy() frees them. */
static void scrub_tree(const config_setting_t *root)
{
    const config_setting_t *l = config_setting_get_member(root, "sources");
    int i, j, n, m;

    if (!l || !config_setting_is_list(l))
        return;
    n = config_setting_length(l);
    for (i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
        const config_setting_t *s;
        if (!config_setting_is_group(g) || !(s = config_setting_get_member(g, "secrets")) ||
            !config_setting_is_aggregate(s))
            continue;
        m = config_setting_length(s);
        for (j = 0; j < m; j++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)j);
            const char *v;
            if (config_setting_type(e) == CONFIG_TYPE_STRING &&
                (v = config_setting_get_string(e)) != NULL)
                OPENSSL_cleanse((void *)v, strlen(v));
        }
    }
}

static int load_text(const char *text, size_t len, const char *name, const char *incdir,
                     struct hq_config **out, char *err, size_t errsz)
{
    struct ctx c;
    config_t lc;
    struct hq_config *cfg = NULL;
    size_t k;
    bool lc_init = false;
    char *zeroed = NULL;

    memset(&c, 0, sizeof(c));
    c.name = name;
    c.incdir = incdir;
    c.main_text = text;
    c.err = err;
    c.errsz = errsz;
    if (err && errsz)
        err[0] = '\0';

    if (prescan(&c, text, len, NULL, 0) != HQ_OK)
        goto out;
    /* libconfig gets the literals that do not fit as zeros of the same length: 1.5 would wrap
     * them and 1.7 would make them 64-bit settings (and refuse an array that mixes them with
     * 32-bit ones), so that their settings are found, and named, the same way with both. */
    for (k = 0; k < c.n_bad; k++) {
        size_t j;
        if (!c.bad[k].in_main)
            continue;
        if (!zeroed) {
            if (!(zeroed = malloc(len + 1))) {
                coom(&c);
                goto out;
            }
            memcpy(zeroed, text, len + 1);
        }
        for (j = c.bad[k].off; j < c.bad[k].off + c.bad[k].len; j++)
            if (is_alnum(zeroed[j]) && zeroed[j] != 'L' && zeroed[j] != 'l')
                zeroed[j] = '0';
    }
    config_init(&lc);
    lc_init = true;
    /* In string mode, point includes at a directory that cannot exist, so that nothing the
     * scanner missed can make libconfig open a file. */
    config_set_include_dir(&lc, incdir ? incdir : "/nonexistent/hookmq-no-include");
    if (config_read_string(&lc, zeroed ? zeroed : text) != CONFIG_TRUE) {
        if (c.n_bad) /* in an @include file, libconfig 1.7 may refuse what holds it */
            cfail_line(&c, c.bad[0].file, c.bad[0].line, "integer %s does not fit in %d bits",
                       c.bad[0].text, c.bad[0].bits);
        else
            cfail_line(&c, config_error_file(&lc), (unsigned)config_error_line(&lc), "%s",
                       config_error_text(&lc) ? config_error_text(&lc) : "parse error");
        goto out;
    }
    if (check_literals(&c, config_root_setting(&lc), 0) != HQ_OK)
        goto out;
    if (c.n_bad) {
        cfail_line(&c, c.bad[0].file, c.bad[0].line, "integer %s does not fit in %d bits",
                   c.bad[0].text, c.bad[0].bits);
        goto out;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        coom(&c);
        goto out;
    }
    if (!(cfg->path = cdup(&c, name)) || set_defaults(&c, cfg) != HQ_OK)
        goto out;
    if (load_root(&c, config_root_setting(&lc), cfg) != HQ_OK)
        goto out;
    *out = cfg;
    cfg = NULL;
out:
    if (lc_init) {
        scrub_tree(config_root_setting(&lc));
        config_destroy(&lc);
    }
    hq_config_free(cfg);
    if (zeroed) {
        OPENSSL_cleanse(zeroed, len);
        free(zeroed);
    }
    for (k = 0; k < c.n_bad; k++)
        free(c.bad[k].file);
    free(c.bad);
    return c.rc;
}

int hq_config_load_string(const char *text, const char *name, struct hq_config **out, char *err,
                          size_t errsz)
{
    if (!name)
        name = "<string>";
    if (!text || !out) {
        if (err && errsz)
            snprintf(err, errsz, "%s:0: no configuration text", name);
        return HQ_ECONFIG;
    }
    return load_text(text, strlen(text), name, NULL, out, err, errsz);
}

int hq_config_load(const char *path, struct hq_config **out, char *err, size_t errsz)
{
    char *text = NULL, *dir = NULL, *slash;
    size_t len = 0;
    int e = 0, rc;

    if (!path || !out) {
        if (err && errsz)
            snprintf(err, errsz, "(none):0: no configuration file given");
        return HQ_ECONFIG;
    }
    rc = read_capped_file(path, CONFIG_MAX_BYTES, &text, &len, &e);
    if (rc == HQ_ENOMEM) {
        if (err && errsz)
            snprintf(err, errsz, "%s:0: out of memory", path);
        return HQ_ENOMEM;
    }
    if (rc != HQ_OK) {
        if (err && errsz)
            snprintf(err, errsz, "%s:0: cannot read: %s", path,
                     rc == HQ_ETOOBIG ? "larger than 4 MiB"
                                      : e ? strerror(e) : "not a regular file");
        return HQ_ECONFIG;
    }
    dir = strdup(path);
    if (!dir) {
        rc = HQ_ENOMEM;
        if (err && errsz)
            snprintf(err, errsz, "%s:0: out of memory", path);
        goto out;
    }
    slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, strlen(dir) + 1, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    rc = load_text(text, len, path, dir, out, err, errsz);
out:
    OPENSSL_cleanse(text, len);
    free(text);
    free(dir);
    return rc;
}

void hq_config_free(struct hq_config *cfg)
{
    size_t i, j;

    if (!cfg)
        return;
    free(cfg->path);
    free_strv(cfg->broker.uris, cfg->broker.n_uris);
    free(cfg->broker.exchange);
    free(cfg->broker.tls.ca_file);
    free(cfg->broker.tls.cert_file);
    free(cfg->broker.tls.key_file);
    free(cfg->gateway.listen);
    free(cfg->gateway.metrics_listen);
    free(cfg->gateway.spool_dir);
    hq_cidr_list_free(&cfg->gateway.trusted_proxies);
    for (i = 0; i < cfg->n_sources; i++) {
        struct hq_source_cfg *s = &cfg->sources[i];
        for (j = 0; j < s->n_secrets; j++)
            secret_free(&s->secrets[j]);
        free(s->secrets);
        free(s->header);
        free(s->prefix);
        free(s->url);
        free(s->event_type);
        free(s->event_id);
        hq_cidr_list_free(&s->allow_from);
    }
    free(cfg->sources);
    for (i = 0; i < cfg->n_consumers; i++) {
        struct hq_consumer_cfg *c = &cfg->consumers[i];
        free_strv(c->bindings, c->n_bindings);
        free(c->handler);
        for (j = 0; j < c->n_options; j++)
            opt_free(&c->options[j]);
        free(c->options);
        free(c->delays_ms);
        free(c->dedupe_path);
        free(c->metrics_listen);
    }
    free(cfg->consumers);
    free(cfg->archive.dir);
    free(cfg->archive.metrics_listen);
    free(cfg->console.listen);
    for (i = 0; i < cfg->console.n_users; i++)
        free(cfg->console.users[i].password_hash);
    free(cfg->console.users);
    free(cfg);
}

const char *hq_config_default_path(const char *cli_path)
{
    const char *env;

    if (cli_path && *cli_path)
        return cli_path;
    env = getenv("HOOKMQ_CONFIG");
    if (env && *env)
        return env;
    return "/etc/hookmq/hookmq.conf";
}

const struct hq_source_cfg *hq_config_source(const struct hq_config *cfg, const char *name)
{
    size_t i;

    if (!cfg || !name)
        return NULL;
    for (i = 0; i < cfg->n_sources; i++)
        if (strcmp(cfg->sources[i].name, name) == 0)
            return &cfg->sources[i];
    return NULL;
}

const struct hq_consumer_cfg *hq_config_consumer(const struct hq_config *cfg, const char *name)
{
    size_t i;

    if (!cfg || !name)
        return NULL;
    for (i = 0; i < cfg->n_consumers; i++)
        if (strcmp(cfg->consumers[i].name, name) == 0)
            return &cfg->consumers[i];
    return NULL;
}

const struct hq_opt *hq_consumer_opt(const struct hq_consumer_cfg *c, const char *key)
{
    size_t i;

    if (!c || !key)
        return NULL;
    for (i = 0; i < c->n_options; i++)
        if (c->options[i].key && strcmp(c->options[i].key, key) == 0)
            return &c->options[i];
    return NULL;
}
