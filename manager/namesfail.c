/* namesfail.c - a name's record, and the failover that recreates an
 * on-crash VM of a dead host here from it.
 *
 * The rule for the recreated VM's owner: it belongs to the identity in the
 * record (the creator's), not to a connection: the creator's connection was
 * on the dead host or elsewhere, and either way it is not ours. It is
 * persistent, as if created with persistent=True: it must not vanish for
 * having no live connection; its owner (or an admin) destroys it, or
 * shutdown_all of a connection of that identity. Its state is lost, as on
 * a local restart: the node starts fresh from the init frame.
 *
 * The VM_RESTART that says so reaches the owner's clients on every host:
 * here directly, elsewhere through a "failover" relay each manager hands
 * to its own clients (names_failover_heard). */
#include "manager.h"
#include "cluster.h"
#include "mailbox.h"
#include "names.h"
#include "namescheck.h"
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

/* VM_RESTART naming the new host, to the clients of this host that should
 * hear it: every socket connection of the owner's identity, and the
 * subscribers who may see the VM (as identity_sees: shared, admin, owner).
 * Proxies of other hosts' clients are skipped: their own managers hear the
 * relay and tell them, once. */
static void deliver(json_t *ev, const char *owner, int shared)
{
    for (uint32_t i = 0; i < mgr->nslots; i++) {
        struct client *c = mgr->slots[i];
        if (!c || c->closing || c->remote || !c->authed)
            continue;
        int mine = strcmp(c->identity, owner) == 0;
        if (c->subscribed ? mine || shared || c->admin : mine)
            client_send(c, ev);
    }
}

static json_t *restart_event(const char *name, const char *host, const char *from, long pid)
{
    return proto_event_new("VM_RESTART", name,
                           json_pack("{s:s, s:s, s:s, s:i}", "reason", "HOST_DOWN",
                                     "host", host, "from", from, "pid", (int)pid));
}

/* The creator's connection was on the dead host (gone with it) or on
 * another live host, which hears nothing of a VM created here: every host
 * hears the relay on "<prefix>.names", after the "set" of the takeover
 * (one publisher, one subject: in order), and tells its own clients. Core
 * NATS, at most once: a lost relay costs the event, not the VM (the next
 * call by name still finds it). */
static void relay(struct vm *vm, json_t *record, const char *from)
{
    char subj[160], err[128];
    json_t *m = json_pack("{s:s, s:s, s:s, s:O, s:s, s:i}", "op", "failover",
                          "name", vm->name, "host", cluster_self(), "record", record,
                          "from", from, "pid", vm->node ? (int)vm->node->pid : 0);
    if (m && cluster_up() && cluster_subject(subj, sizeof subj, "names") == 0)
        cluster_publish(subj, NULL, m, err, sizeof err);
    json_decref(m);
}

/* names.c heard another host's relay (checked by namescheck_announce). */
void names_failover_heard(json_t *msg)
{
    struct failover_msg f;
    if (namescheck_failover(msg, &f) < 0)
        return;
    json_t *ev = restart_event(f.name, f.host, f.from, (long)f.pid);
    if (!ev)
        return;
    deliver(ev, f.owner, f.shared);
    json_decref(ev);
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
    json_t *ev = restart_event(vm->name, cluster_self(), from, vm->node ? (long)vm->node->pid : 0);
    if (ev) {
        deliver(ev, vm->owner, vm->shared);
        stats_event(vm, "VM_RESTART");      /* a restart of this host's */
        json_decref(ev);
    }
    relay(vm, record, from);
}
