/* Which of the client's request headers the LB passes on to the prefill and decode servers.
 * A backend started with --api-key checks Authorization, and request ids and content
 * negotiation should survive the hop, so end-to-end headers go through; hop-by-hop ones
 * (Connection, Keep-Alive, Transfer-Encoding, TE, Upgrade, Proxy-*), the ones the LB's own
 * client sets (Host, Content-Length, Content-Type) and Accept-Encoding (the LB reads and
 * rewrites bodies, so they must stay uncompressed) never do. The server API can only look
 * headers up by name, so the end-to-end ones are a list. */
#include <stddef.h>

#include "lb/lb_internal.h"

static const char *const fwd_names[] = {
    "Authorization", "Accept",    "Accept-Language",      "User-Agent",
    "X-Request-Id",  "X-Api-Key", "X-Data-Parallel-Rank", "traceparent",
    "tracestate",    "baggage",   "OpenAI-Organization",
};

_Static_assert(sizeof fwd_names / sizeof fwd_names[0] <= LB_FWD_MAX, "raise LB_FWD_MAX");

const char *const *lb_fwd_headers(const http_req *r, const char *out[2 * LB_FWD_MAX + 1]) {
    size_t n = 0;
    for (size_t i = 0; r && i < sizeof fwd_names / sizeof fwd_names[0]; i++) {
        const char *v = http_req_header(r, fwd_names[i]);
        if (!v) continue;
        out[n++] = fwd_names[i];
        out[n++] = v;
    }
    out[n] = NULL;
    return out;
}
