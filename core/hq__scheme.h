/* hq__scheme: the functions the scheme table (core/scheme.c) points at. Internal to core.
 *
 * Each provider file core/sig_<name>.c defines hq__verify_<scheme>() and hq__sign_<scheme>()
 * for the schemes it implements; one HQ__SCHEME_FNS line per scheme declares them. */
#ifndef HQ__SCHEME_H
#define HQ__SCHEME_H

#include "hq_scheme.h"

#define HQ__SCHEME_FNS(s)                                                                          \
    int hq__verify_##s(const struct hq_source_cfg *src, const struct hq_request_view *req,         \
                       int64_t now, struct hq_verify_result *res);                                 \
    int hq__sign_##s(const struct hq_sign_req *in, struct hq_sig_out *out)

HQ__SCHEME_FNS(stripe);   /* sig_stripe.c */
HQ__SCHEME_FNS(paddle);   /* sig_stripe.c */
HQ__SCHEME_FNS(github);   /* sig_github.c */
HQ__SCHEME_FNS(shopify);  /* sig_github.c */
HQ__SCHEME_FNS(square);   /* sig_github.c */
HQ__SCHEME_FNS(hmac);     /* sig_github.c */
HQ__SCHEME_FNS(standard); /* sig_standard.c */
HQ__SCHEME_FNS(slack);    /* sig_slack.c */
HQ__SCHEME_FNS(zoom);     /* sig_slack.c */
HQ__SCHEME_FNS(gitlab);   /* sig_token.c */
HQ__SCHEME_FNS(token);    /* sig_token.c */
HQ__SCHEME_FNS(basic);    /* sig_token.c */
HQ__SCHEME_FNS(twilio);   /* sig_twilio.c */
HQ__SCHEME_FNS(mailgun);  /* sig_mailgun.c */
HQ__SCHEME_FNS(linear);   /* sig_linear.c */

/* Handshakes (core/event_extract.c, which owns the request's parsed JSON). */
int hq__handshake_slack(struct hq__ex_ctx *c, const struct hq_secret *secret,
                        struct hq_event_meta *meta, const char **reason);
int hq__handshake_zoom(struct hq__ex_ctx *c, const struct hq_secret *secret,
                       struct hq_event_meta *meta, const char **reason);

#endif
