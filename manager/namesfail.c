/* namesfail.c - a name's record, and the failover that recreates an
 * on-crash VM of a dead host here from it.
 *
 * The rule for the recreated VM's owner: it belongs to the identity in the
 * record (the creator's), not to a connection: the creator's connection was
 * on the dead host or elsewhere, and either way it is not ours. It is
 * persistent, as if created with persistent=True: it must not vanish for
 * having no live connection; its owner (or an admin) destroys it, or
 * shutdown_all of a connection of that identity. Its state is lost, as on
 * a local restart: the node starts fresh from the init frame. */
#include "manager.h"
#include "cluster.h"
#include "mailbox.h"
#include "names.h"
#include "namesint.h"

#include <stdio.h>
#include <string.h>

json_t *names_record(const char *owner, json_t *init)
{
    const char *restart = json_string_value(json_object_get(init, "restart"));
    int on_crash = restart && strcmp(restart, "on-crash") == 0;
    json_t *r = json_pack("{s:s, s:b, s:s, s:b}", "owner", owner,
                          "shared", json_is_true(json_object_get(init, "shared")),
                          "restart", on_crash ? "on-crash" : "never",
                          "persistent", json_is_true(json_object_get(init, "persistent")));
    if (r && on_crash)      /* what a failover recreates the VM from */
        json_object_set_new(r, "init", json_deep_copy(init));
    return r;
}

/* vm_create wants a connection to link the VM to: a blank one that holds
 * the owner's identity for the moment of the call, unlinked again after. */
static struct vm *create_orphan(const char *name, json_t *init, const char *owner,
                                enum bx_err *e, char *err, size_t n)
{
    static struct client nobody;
    memset(&nobody, 0, sizeof nobody);
    snprintf(nobody.identity, sizeof nobody.identity, "%s", owner);
    struct vm *vm = vm_create(name, init, &nobody, NULL, e, err, n);
    if (vm) {
        vm->owner_id = 0;
        vm->own_prev = vm->own_next = NULL;
    }
    return vm;
}

/* VM_RESTART naming the new host. The VM has no owner connection, so the
 * event goes to every connection of its owner's identity on this host (and,
 * as any event, to subscribers who may see the VM). The creator's own
 * connection, if it was on another live host, hears nothing from here. */
static void restart_event(struct vm *vm, const char *from)
{
    json_t *ev = proto_event_new("VM_RESTART", vm->name,
                                 json_pack("{s:s, s:s, s:s, s:i}", "reason", "HOST_DOWN",
                                           "host", cluster_self(), "from", from,
                                           "pid", vm->node ? (int)vm->node->pid : 0));
    if (!ev)
        return;
    for (uint32_t i = 0; i < mgr->nslots; i++) {
        struct client *c = mgr->slots[i];
        if (c && !c->subscribed && !c->closing && strcmp(c->identity, vm->owner) == 0)
            client_send(c, ev);
    }
    events_emit_json(vm, ev);   /* counts the restart; the subscribers */
}

void names_failover(const char *name, json_t *record, const char *from)
{
    char err[256];
    enum bx_err e;
    const char *owner = json_string_value(json_object_get(record, "owner"));
    json_t *init = json_deep_copy(json_object_get(record, "init"));
    struct vm *vm = NULL;
    if (init && owner && !registry_find(name) && !mgr->shutting_down) {
        json_object_set_new(init, "persistent", json_true());
        json_object_set_new(init, "name", json_string(name));
        vm = create_orphan(name, init, owner, &e, err, sizeof err);
        if (!vm)
            fprintf(stderr, "bioxen-manager: cluster: failover of '%s' from %s: %s\n",
                    name, from, err);
        else if (mailbox_vm_added(vm) < 0) {
            vm_destroy(vm, BX_E_INTERNAL, "out of memory for the VM's mailbox");
            vm = NULL;
        }
    }
    json_decref(init);
    if (!vm) {
        names_release(name);
        return;
    }
    fprintf(stderr, "bioxen-manager: cluster: '%s' failed over from %s\n", name, from);
    restart_event(vm, from);
}
