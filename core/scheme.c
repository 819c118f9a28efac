/* scheme: the one table of signature schemes (hq_scheme.h), indexed by enum hq_scheme.
 *
 * Each row says everything hookmq knows about a provider: its configuration name (also the
 * first field of its replay keys: never rename one), the default tolerance of its signed
 * timestamp, the verify and sign functions (core/sig_<name>.c), the default event type and id
 * selectors, its handshake, the headers kept on the message, how hookmq-send shapes a
 * sample request and the headers it signs with (redacted where headers are shown). Adding a provider: docs/signatures.md, "Adding a provider". */
#include <string.h>
#include <strings.h>

#include "hq__scheme.h"

static const char *const keep_github[] = {"X-GitHub-Event",
                                          "X-GitHub-Delivery",
                                          "X-GitHub-Hook-ID",
                                          "X-GitHub-Hook-Installation-Target-ID",
                                          "X-GitHub-Hook-Installation-Target-Type",
                                          "X-Hub-Signature-256",
                                          "X-Hub-Signature",
                                          NULL};
static const char *const keep_stripe[] = {"Stripe-Signature", NULL};
static const char *const keep_standard[] = {"webhook-id", "webhook-timestamp", "webhook-signature",
                                            "svix-id",    "svix-timestamp",    "svix-signature",
                                            NULL};
static const char *const keep_shopify[] = {
    "X-Shopify-Topic",      "X-Shopify-Hmac-Sha256", "X-Shopify-Shop-Domain",
    "X-Shopify-Webhook-Id", "X-Shopify-API-Version", "X-Shopify-Triggered-At",
    "X-Shopify-Event-Id",   "shopify-topic",         "shopify-hmac-sha256",
    "shopify-shop-domain",  "shopify-webhook-id",    "shopify-api-version",
    "shopify-triggered-at", "shopify-event-id",      NULL};
static const char *const keep_slack[] = {"X-Slack-Request-Timestamp", "X-Slack-Signature",
                                         "X-Slack-Retry-Num", "X-Slack-Retry-Reason", NULL};
static const char *const keep_gitlab[] = {"X-Gitlab-Event",    "X-Gitlab-Event-UUID",
                                          "X-Gitlab-Instance", "X-Gitlab-Webhook-UUID",
                                          "Idempotency-Key",   NULL};
static const char *const keep_twilio[] = {"X-Twilio-Signature", "I-Twilio-Idempotency-Token", NULL};
static const char *const keep_paddle[] = {"Paddle-Signature", NULL};
static const char *const keep_square[] = {"x-square-hmacsha256-signature", "x-square-signature",
                                          "Square-Environment", "Square-Version", NULL};
static const char *const keep_zoom[] = {"x-zm-request-timestamp", "x-zm-signature",
                                        "x-zm-trackingid", NULL};
static const char *const keep_nothing[] = {NULL};

/* the headers each scheme signs with (tests/unit/test_scheme.c checks every signed header
 * is listed) */
static const char *const sig_stripe[] = {"Stripe-Signature", NULL};
static const char *const sig_github[] = {"X-Hub-Signature-256", "X-Hub-Signature", NULL};
static const char *const sig_standard[] = {"webhook-signature", "svix-signature", NULL};
static const char *const sig_shopify[] = {"X-Shopify-Hmac-Sha256", "shopify-hmac-sha256", NULL};
static const char *const sig_slack[] = {"X-Slack-Signature", NULL};
static const char *const sig_gitlab[] = {"X-Gitlab-Token", NULL};
static const char *const sig_twilio[] = {"X-Twilio-Signature", NULL};
static const char *const sig_paddle[] = {"Paddle-Signature", NULL};
static const char *const sig_square[] = {"x-square-hmacsha256-signature", "x-square-signature",
                                         NULL};
static const char *const sig_zoom[] = {"x-zm-signature", NULL};
static const char *const sig_authorization[] = {"Authorization", NULL};
static const char *const sig_linear[] = {"Linear-Signature", NULL};

#define FNS(s) .verify = hq__verify_##s, .sign = hq__sign_##s
#define GENERIC_EVENT .event_type = {"const:event"}, .keep_headers = keep_nothing

static const struct hq_scheme_ops schemes[HQ_SCHEME__COUNT] = {
    [HQ_SCHEME_STRIPE] = {.name = "stripe",
                          .tolerance_s = 300,
                          FNS(stripe),
                          .event_type = {"json:/type"},
                          .event_id = {"json:/id"},
                          .id_required = true,
                          .keep_headers = keep_stripe,
                          .id_prefix = "evt_",
                          .id_hex = 24,
                          .signature_headers = sig_stripe},
    [HQ_SCHEME_GITHUB] = {.name = "github",
                          FNS(github),
                          .event_type = {"header:X-GitHub-Event"},
                          .event_id = {"header:X-GitHub-Delivery"},
                          .id_required = true,
                          .keep_headers = keep_github,
                          .type_header = "X-GitHub-Event",
                          .sample_headers = "X-GitHub-Hook-ID: 421337001\n"
                                            "X-GitHub-Hook-Installation-Target-Type: repository",
                          .signature_headers = sig_github},
    [HQ_SCHEME_STANDARD] = {.name = "standard",
                            .tolerance_s = 300,
                            .both_directions = true,
                            FNS(standard),
                            .event_type = {"json:/type"},
                            .event_id = {"header:webhook-id", "header:svix-id"},
                            .id_required = true,
                            .keep_headers = keep_standard,
                            .id_prefix = "msg_",
                            .id_hex = 24,
                            .signature_headers = sig_standard},
    [HQ_SCHEME_SHOPIFY] = {.name = "shopify",
                           FNS(shopify),
                           .event_type = {"header:X-Shopify-Topic", "header:shopify-topic"},
                           .event_id = {"header:X-Shopify-Webhook-Id", "header:shopify-webhook-id"},
                           .id_required = true,
                           .keep_headers = keep_shopify,
                           .type_header = "X-Shopify-Topic",
                           .type_style = HQ_TYPE_TOPIC,
                           .sample_headers = "X-Shopify-Shop-Domain: example.myshopify.com\n"
                                             "X-Shopify-API-Version: 2024-01\n"
                                             "X-Shopify-Triggered-At: {{iso_time}}",
                           .signature_headers = sig_shopify},
    [HQ_SCHEME_SLACK] = {.name = "slack",
                         .tolerance_s = 300,
                         .both_directions = true,
                         FNS(slack),
                         .event_type = {"json:/event/type", "json:/type"},
                         .event_id = {"json:/event_id"},
                         .handshake = hq__handshake_slack,
                         .keep_headers = keep_slack,
                         .id_prefix = "Ev",
                         .id_hex = 12,
                         .id_upper = true,
                         .signature_headers = sig_slack},
    [HQ_SCHEME_GITLAB] = {.name = "gitlab",
                          FNS(gitlab),
                          .event_type = {"header:X-Gitlab-Event"},
                          .event_id = {"header:X-Gitlab-Event-UUID"},
                          .id_required = true,
                          .keep_headers = keep_gitlab,
                          .type_header = "X-Gitlab-Event",
                          .type_style = HQ_TYPE_HOOK_TITLE,
                          .sample_headers = "X-Gitlab-Instance: https://gitlab.example.com",
                          .signature_headers = sig_gitlab},
    [HQ_SCHEME_TWILIO] = {.name = "twilio",
                          FNS(twilio),
                          .event_type = {"const:event"},
                          .url = true,
                          .keep_headers = keep_twilio,
                          .signature_headers = sig_twilio},
    [HQ_SCHEME_PADDLE] = {.name = "paddle",
                          .tolerance_s = 5,
                          FNS(paddle),
                          .event_type = {"json:/event_type"},
                          .event_id = {"json:/event_id"},
                          .id_required = true,
                          .keep_headers = keep_paddle,
                          .id_prefix = "evt_",
                          .id_hex = 24,
                          .signature_headers = sig_paddle},
    [HQ_SCHEME_SQUARE] = {.name = "square",
                          FNS(square),
                          .event_type = {"json:/type"},
                          .event_id = {"json:/event_id"},
                          .id_required = true,
                          .url = true,
                          .keep_headers = keep_square,
                          .signature_headers = sig_square},
    [HQ_SCHEME_ZOOM] = {.name = "zoom",
                        .tolerance_s = 300,
                        .both_directions = true,
                        FNS(zoom),
                        .event_type = {"json:/event"},
                        .handshake = hq__handshake_zoom,
                        .keep_headers = keep_zoom,
                        .signature_headers = sig_zoom},
    [HQ_SCHEME_MAILGUN] = {.name = "mailgun",
                           .tolerance_s = 300,
                           .both_directions = true,
                           FNS(mailgun),
                           .event_type = {"json:/event-data/event"},
                           .event_id = {"json:/event-data/id"},
                           .id_required = true,
                           .keep_headers = keep_nothing,
                           .signature_headers = keep_nothing},
    [HQ_SCHEME_HMAC] = {.name = "hmac", FNS(hmac), GENERIC_EVENT,
                        .signature_headers = keep_nothing}, /* the source's `header` */
    [HQ_SCHEME_TOKEN] = {.name = "token", FNS(token), GENERIC_EVENT,
                         .signature_headers = sig_authorization}, /* or the source's `header` */
    [HQ_SCHEME_BASIC] = {.name = "basic", FNS(basic), GENERIC_EVENT,
                         .signature_headers = sig_authorization},
    [HQ_SCHEME_NONE] = {.name = "none", GENERIC_EVENT, .signature_headers = keep_nothing},
    [HQ_SCHEME_LINEAR] = {.name = "linear",
                          .tolerance_s = 60,
                          .both_directions = true,
                          FNS(linear),
                          .event_type = {"json:/type"},
                          .event_id = {"header:Linear-Delivery"},
                          .id_required = true,
                          .keep_headers = (const char *const[]){"Linear-Event", "Linear-Delivery",
                                                                "Linear-Signature", NULL},
                          .signature_headers = sig_linear},
};

const struct hq_scheme_ops *hq_scheme_ops(enum hq_scheme s)
{
    if ((int)s < 0 || s >= HQ_SCHEME__COUNT || !schemes[s].name) return NULL;
    return &schemes[s];
}

bool hq_scheme_signature_header(enum hq_scheme s, const char *configured, const char *name)
{
    const struct hq_scheme_ops *ops = hq_scheme_ops(s);
    size_t i;

    if (!ops || !name) return false;
    if (configured && *configured && strcasecmp(configured, name) == 0) return true;
    for (i = 0; ops->signature_headers && ops->signature_headers[i]; i++)
        if (strcasecmp(ops->signature_headers[i], name) == 0) return true;
    return false;
}

const char *hq_scheme_name(enum hq_scheme s)
{
    const struct hq_scheme_ops *ops = hq_scheme_ops(s);

    return ops ? ops->name : NULL;
}

int hq_scheme_from_name(const char *name, enum hq_scheme *out)
{
    int i;

    if (!name) return HQ_ENOTFOUND;
    for (i = 0; i < HQ_SCHEME__COUNT; i++) {
        if (schemes[i].name && strcmp(name, schemes[i].name) == 0) {
            if (out) *out = (enum hq_scheme)i;
            return HQ_OK;
        }
    }
    return HQ_ENOTFOUND;
}
