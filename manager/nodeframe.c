/* nodeframe.c - where a frame from a node goes: a reply to the request
 * queue, a callback to the VM's owner, a stream item, mail, a listening
 * address (reach.c), a policy ask or an event. The one place the feature
 * modules see node frames. Owns nothing; a node is not trusted, so a frame
 * that is no valid JSON breaks it. */
#include "manager.h"
#include "mailbox.h"
#include "policy.h"
#include "reach.h"
#include "stream.h"

#include <stdio.h>

/* A Lua call of a registered name: to the owner, who answers with a
 * cb_result; with no owner the node is answered at once. */
static void callback_frame(struct vm *vm, json_t *msg)
{
    struct client *owner = client_find(vm->owner_id);
    if (owner) {
        json_object_set_new(msg, "vm", json_string(vm->name));
        client_send(owner, msg);
        return;
    }
    json_t *r = json_pack("{s:s, s:O, s:s}", "op", "cb_result", "callback",
                          json_object_get(msg, "callback"), "error", "callback owner is gone");
    vmreq_send_raw(vm, r);
    json_decref(r);
}

static void event_frame(struct vm *vm, json_t *msg)
{
    json_object_set_new(msg, "vm", json_string(vm->name));
    json_object_set_new(msg, "ts", json_real(proto_now()));
    /* "layer" is the manager's to set (seccomp: critical); a node's would
     * choose its own severity */
    json_object_del(json_object_get(msg, "detail"), "layer");
    events_emit_json(vm, json_incref(msg));
}

void nodeframe_route(struct node *n, const char *line, size_t len)
{
    char err[256];
    if (vmreq_reply_passed(n, line, len) == 0)
        return;     /* the hot path: a reply, unparsed */
    if (mailbox_node_fast(n->vm, line, len))
        return;     /* the other hot path: the node's own mail and posts */
    json_t *msg = proto_parse(line, len, err, sizeof err);
    if (!msg) {
        fprintf(stderr, "bioxen-manager: node %d: %s\n", (int)n->pid, err);
        node_broken(n);
        return;
    }
    if (json_object_get(msg, "callback"))
        callback_frame(n->vm, msg);
    else if (stream_node_frame(n->vm, msg))
        ; /* a stream item: to its requester */
    else if (mailbox_node_frame(n->vm, msg, len))
        ; /* mail, mail_pull: mailbox.c answers */
    else if (reach_node_frame(n, msg))
        ; /* listen, unlisten, ask reach: before policy, which takes any ask */
    else if (policy_node_frame(n->vm, msg))
        ; /* ask: fs_read, module */
    else if (json_is_string(json_object_get(msg, "event")))
        event_frame(n->vm, msg);
    else
        vmreq_reply(n, msg);
    json_decref(msg);
}

void nodeframe_done(struct vm *vm)
{
    if (vm->pool)
        pool_vm_settled(vm);    /* the pool may hand it its next run */
}
