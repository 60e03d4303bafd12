/* events.c - fan-out of pushed events to a VM's owner and to subscribers.
 * Owns the subscriber list (links live in struct client). */
#include "manager.h"

void events_emit_json(struct vm *vm, json_t *ev)
{
    struct client *owner = vm ? client_find(vm->owner_id) : NULL;
    const char *type = json_string_value(json_object_get(ev, "event"));
    if (type)
        stats_event(vm, type);  /* crash and restart totals */
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
