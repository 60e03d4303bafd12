/* broker.c - the cluster transport's health as events (pyisolate's
 * BROKER_ERROR): every drop and reconnect of this manager's NATS link, and
 * every asynchronous NATS error, reaches the event subscribers like any
 * other event, so a supervisor needs no second channel to watch it. It
 * concerns every connection (no VM, nothing secret: hello and hosts() say
 * the same), so each local client hears it, subscribed or not; proxies of
 * other hosts' clients do not (their own manager tells them).
 *
 * Called by: main.c (broker_start, after cluster_start). Calls: cluster.h
 * (listeners, on the loop), events.c. */
#include "broker.h"
#include "cluster.h"
#include "manager.h"
#include "proto.h"

static void emit(int up, const char *why, void *arg)
{
    (void)arg;
    json_t *ev = proto_event_new("BROKER_ERROR", NULL,
                                 json_pack("{s:s, s:b, s:s}", "reason", why ? why : "",
                                           "connected", up, "host", cluster_self()));
    if (!ev)
        return;
    for (uint32_t i = 0; i < mgr->nslots; i++) {
        struct client *c = mgr->slots[i];
        if (c && !c->subscribed && !c->closing && !c->remote && c->authed)
            client_send(c, ev);
    }
    events_emit_json(NULL, ev);     /* the subscribers; frees ev */
}

int broker_start(void)
{
    if (!cluster_enabled())
        return 0;
    cluster_on_error(emit, NULL);
    return cluster_on_state(emit, NULL);
}
