/* vm.c - a VM's life: made from a create request, READY once its node
 * answers init, gone on destroy, its owner's exit or a crash not restarted
 * (vm_destroy: the one list of what lets go of a VM). Owns struct vm. */
#include "manager.h"
#include "mailbox.h"
#include "names.h"
#include "spare.h"
#include "cputhrottle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BX_NOBODY 65534             /* Debian's nobody and nogroup */

/* A VM's life, and where each step reaches the feature modules:
 *   vm_create      node_spawn (node.c): a spare (spare_take) or a fresh node;
 *                  vmreq_send_init queues init ahead of everything else
 *   vm_init_reply  READY, the create is answered; spare_kick refills
 *   node frames    nodeframe.c: stream, mailbox, reach, policy; pool_vm_settled
 *   channel closes reach_node_gone: the node's listening addresses go
 *   node dies      node.c names the cause; restart.c starts a fresh node
 *                  (limits, on-crash back-off) or calls vm_destroy
 *   vm_destroy     pool_vm_gone, every request answered, node killed,
 *                  mailbox_vm_removed, registry, owner, timers */

static double limit_num(json_t *limits, const char *key)
{
    json_t *v = json_object_get(limits, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

/* The timeout as the client wrote it, for the requests written to the node. */
static void timeout_text(struct vm *vm, json_t *t)
{
    size_t tl = json_is_number(t) ? json_dumpb(t, vm->timeout_text, sizeof vm->timeout_text - 1,
                                               JSON_COMPACT | JSON_ENCODE_ANY) : 0;
    if (tl == 0 || tl >= sizeof vm->timeout_text)
        tl = (size_t)snprintf(vm->timeout_text, sizeof vm->timeout_text, "%.17g", vm->timeout);
    vm->timeout_text[tl] = 0;
}

/* The settings the manager itself acts on, from the (validated) init body;
 * the rest travels to the node in init. */
static void vm_settings(struct vm *vm, json_t *init)
{
    json_t *limits = json_object_get(init, "limits");
    vm->timeout = limit_num(limits, "timeout");
    timeout_text(vm, json_object_get(limits, "timeout"));
    vm->instruction_limit = (json_int_t)limit_num(limits, "instruction_limit");
    vm->cpu_limit = limit_num(limits, "cpu_limit");
    vm->heap_limit = (unsigned long long)limit_num(limits, "memory_limit");
    vm->persistent = json_is_true(json_object_get(init, "persistent"));
    vm->networked = json_is_true(json_object_get(init, "networked"));
    vm->full_isolation = json_is_true(json_object_get(init, "full_isolation"));
    const char *restart = json_string_value(json_object_get(init, "restart"));
    vm->restart_on_crash = restart && strcmp(restart, "on-crash") == 0;
    /* Fully isolated scripts never run as root: nobody, unless told otherwise */
    if (vm->full_isolation && geteuid() == 0 && !json_object_get(init, "uid")) {
        json_object_set_new(init, "uid", json_integer(BX_NOBODY));
        if (!json_object_get(init, "gid"))
            json_object_set_new(init, "gid", json_integer(BX_NOBODY));
    }
    vm->shared = json_is_true(json_object_get(init, "shared"));
    vm->cpu_share = json_number_value(json_object_get(init, "cpu_share"));  /* 0 if none */
    json_object_del(init, "persistent");    /* the manager's business, not the node's */
    json_object_del(init, "shared");
    json_object_del(init, "cpu_share");
}

static void vm_link_owner(struct vm *vm, struct client *owner)
{
    vm->owner_id = owner->id;
    /* the identity outlives the connection: a persistent VM stays its creator's */
    snprintf(vm->owner, sizeof vm->owner, "%s", owner->identity);
    vm->own_next = owner->vms;
    if (owner->vms)
        owner->vms->own_prev = vm;
    owner->vms = vm;
}

static void vm_unlink_owner(struct vm *vm)
{
    struct client *c = vm->owner_id ? mgr->slots[(uint32_t)vm->owner_id] : NULL;
    if (c && c->id != vm->owner_id)
        c = NULL;
    if (vm->own_prev)
        vm->own_prev->own_next = vm->own_next;
    else if (c && c->vms == vm)
        c->vms = vm->own_next;
    if (vm->own_next)
        vm->own_next->own_prev = vm->own_prev;
    vm->own_prev = vm->own_next = NULL;
    vm->owner_id = 0;
}

struct vm *vm_create(const char *name, json_t *init, struct client *owner,
                     json_t *orig_id, enum bx_err *code, char *err, size_t errlen)
{
    *code = BX_E_INTERNAL;
    struct vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(vm->name, sizeof vm->name, "%s", name);
    vm->init = json_incref(init);
    vm_settings(vm, init);
    /* no orig_id: nobody waits for the init reply (a pool VM, pool.c) */
    uint64_t waiter = orig_id ? owner->id : 0;
    if (vmreq_init(vm) < 0)
        snprintf(err, errlen, "out of memory");
    else
        *code = node_spawn(vm, waiter, orig_id, err, errlen);
    if (*code != BX_OK) {
        cputhrottle_forget(vm);
        vmreq_free(vm);
        json_decref(vm->init);
        json_decref(vm->isolation);
        free(vm);
        return NULL;
    }
    vm_link_owner(vm, owner);
    stats_vm_created(vm);
    registry_add(vm);
    return vm;
}

void vm_init_reply(struct vm *vm, uint64_t client_id, json_t *orig_id, json_t *msg)
{
    struct client *c = client_find(client_id);
    if (json_object_get(msg, "error")) {
        json_object_set(msg, "id", orig_id);
        if (c)
            client_send(c, msg);
        else
            events_emit(vm, "VM_CRASH", json_pack("{s:s}", "reason", "node init failed"));
        vm_destroy(vm, BX_E_VM_CRASHED, "VM failed to start");
        return;
    }
    vm->state = VM_READY;
    if (c)
        client_send_new(c, proto_reply_new(orig_id,
                        json_pack("{s:s, s:i, s:O}", "name", vm->name, "pid", (int)vm->node->pid,
                                  "isolation", vm->isolation)));
    spare_kick();   /* after the reply: flush_all() sends it before the next loop turn */
}

/* What holds a VM lets go of it here, in this order: its pool, the
 * requests in flight (each answered code/why), the node (killed; the
 * reaper frees it), its mailbox (parked senders get VM_NOT_FOUND), its
 * name, its owner, its timers. */
void vm_destroy(struct vm *vm, enum bx_err code, const char *why)
{
    if (vm->pool)
        pool_vm_gone(vm);
    vmreq_fail_all(vm, code, why, 0);
    node_detach(vm->node);
    mailbox_vm_removed(vm->name);
    names_release(vm->name);    /* a name this host claimed goes from the cluster */
    registry_remove(vm);
    vm_unlink_owner(vm);
    vmreq_free(vm);
    restart_forget(vm);
    cputhrottle_forget(vm);
    json_decref(vm->init);
    json_decref(vm->isolation);
    free(vm);
}

void vm_disown(struct client *c)
{
    struct vm *vm = c->vms, *next;
    c->vms = NULL;
    for (; vm; vm = next) {
        next = vm->own_next;
        vm->own_prev = vm->own_next = NULL;
        vm->owner_id = 0;
        if (!vm->persistent)
            vm_destroy(vm, BX_E_VM_CRASHED, "VM destroyed: its owner disconnected");
    }
}

void vm_destroy_all(enum bx_err code, const char *why)
{
    size_t n;
    struct vm **all = registry_all(&n);
    for (size_t i = 0; all && i < n; i++)
        vm_destroy(all[i], code, why);
    free(all);
}
