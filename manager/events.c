/* events.c - fan-out of pushed events to a VM's owner and to subscribers.
 * Owns the subscriber list (links live in struct client). */
#include "manager.h"

#include <string.h>

/* Every SECURITY_VIOLATION leaves with the manager's severity, whoever
 * built it (a node's frame or the manager itself). */
static void mark_severity(json_t *ev)
{
    json_t *d = json_object_get(ev, "detail");
    if (!json_is_object(d))
        return;
    const char *sev = security_severity(json_string_value(json_object_get(d, "layer")),
                                        json_string_value(json_object_get(d, "action")),
                                        json_string_value(json_object_get(d, "reason")));
    json_object_set_new(d, "severity", json_string(sev));
}

void events_emit_json(struct vm *vm, json_t *ev)
{
    struct client *owner = vm ? client_find(vm->owner_id) : NULL;
    const char *type = json_string_value(json_object_get(ev, "event"));
    if (type)
        stats_event(vm, type);  /* crash and restart totals */
    if (type && strcmp(type, "SECURITY_VIOLATION") == 0)
        mark_severity(ev);
    if (owner && !owner->subscribed)
        client_send(owner, ev);
    for (struct client *c = mgr->subscribers; c; c = c->sub_next)
        if (!vm || identity_sees(c, vm))    /* others' VMs are not in its view */
            client_send(c, ev);
    json_decref(ev);
}

void events_emit(struct vm *vm, const char *type, json_t *detail)
{
    json_t *ev = proto_event_new(type, vm ? vm->name : NULL, detail);
    if (ev)
        events_emit_json(vm, ev);
}

void events_subscribe(struct client *c)
{
    if (c->subscribed)
        return;
    c->subscribed = 1;
    c->sub_prev = NULL;
    c->sub_next = mgr->subscribers;
    if (mgr->subscribers)
        mgr->subscribers->sub_prev = c;
    mgr->subscribers = c;
}

void events_unsubscribe(struct client *c)
{
    if (!c->subscribed)
        return;
    if (c->sub_prev)
        c->sub_prev->sub_next = c->sub_next;
    else
        mgr->subscribers = c->sub_next;
    if (c->sub_next)
        c->sub_next->sub_prev = c->sub_prev;
    c->subscribed = 0;
    c->sub_prev = c->sub_next = NULL;
}

void events_metrics_listen(struct client *c, int on)
{
    if (!on == !c->metrics_events)
        return;
    c->metrics_events = on;
    if (on) {
        c->met_prev = NULL;
        c->met_next = mgr->metrics_listeners;
        if (mgr->metrics_listeners)
            mgr->metrics_listeners->met_prev = c;
        mgr->metrics_listeners = c;
        return;
    }
    if (c->met_prev)
        c->met_prev->met_next = c->met_next;
    else
        mgr->metrics_listeners = c->met_next;
    if (c->met_next)
        c->met_next->met_prev = c->met_prev;
    c->met_prev = c->met_next = NULL;
}

/* IsoBox's metrics:recorded: one event per finished exec/call/run, to each
 * listener that may see the VM (as a subscriber would). The caller checks
 * mgr->metrics_listeners first, so a manager nobody asked pays nothing. */
void events_metrics_recorded(struct vm *vm, const char *op, enum bx_err code, double ms,
                             json_int_t mem)
{
    json_t *ev = NULL;
    for (struct client *c = mgr->metrics_listeners; c; c = c->met_next) {
        if (!identity_sees(c, vm) || c->closing)
            continue;
        if (!ev)
            ev = proto_event_new("METRICS_RECORDED", vm->name,
                                 json_pack("{s:s, s:b, s:o, s:o, s:I}", "op", op && *op ? op : "exec",
                                           "ok", code == BX_OK,
                                           "error", code == BX_OK ? json_null() : json_string(bx_err_code(code)),
                                           "duration_ms", ms < 0 ? json_null() : json_real(ms),
                                           "mem_bytes", mem));
        if (ev)
            client_send(c, ev);
    }
    json_decref(ev);
}
