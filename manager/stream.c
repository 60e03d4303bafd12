/* stream.c - routes stream items (node -> requester) and stream_acks
 * (requester -> node) by the request's FIFO entry: an item names the node
 * request id, which the manager swaps for the client's id, so no table of
 * streams is kept. A node is not trusted: only the three item kinds pass,
 * rebuilt field by field. */
#include "stream.h"
#include "validate.h"

#include <string.h>

static struct pending *find_node_id(struct vm *vm, json_t *id)
{
    if (!json_is_integer(id))
        return NULL;
    for (struct pending *p = vm->head; p; p = p->next)
        if (p->kind == PEND_EXEC && p->node_id == (uint64_t)json_integer_value(id))
            return p;
    return NULL;
}

/* Tells the node to stop a stream nobody reads any more. */
static void node_cancel(struct vm *vm, uint64_t node_id)
{
    json_t *m = json_pack("{s:s, s:I, s:i, s:b}", "op", "stream_ack", "stream",
                          (json_int_t)node_id, "n", 0, "cancel", 1);
    if (m)
        vmreq_send_raw(vm, m);
    json_decref(m);
}

int stream_node_frame(struct vm *vm, json_t *msg)
{
    json_t *sid = json_object_get(msg, "stream");
    if (!sid)
        return 0;
    const char *kind = json_string_value(json_object_get(msg, "kind"));
    json_t *value = json_object_get(msg, "value");
    struct pending *p = find_node_id(vm, sid);
    if (!p || !kind || !value ||
        (strcmp(kind, "print") != 0 && strcmp(kind, "yield") != 0 && strcmp(kind, "post") != 0))
        return 1;   /* the request is gone (or the frame is bad): dropped */
    struct client *c = client_find(p->client_id);
    if (!c) {
        node_cancel(vm, p->node_id);
        return 1;
    }
    json_t *out = json_pack("{s:O, s:s, s:s, s:O}", "stream", p->orig_id, "vm", vm->name,
                            "kind", kind, "value", value);
    if (out)
        client_send_new(c, out);
    return 1;
}

void stream_client_ack(struct client *c, json_t *req)
{
    if (!req_stream_ack_ok(req))
        return;
    struct vm *vm = registry_find(req_vm_name(req));
    if (!vm)
        return;
    json_t *sid = json_object_get(req, "stream");
    for (struct pending *p = vm->head; p; p = p->next) {
        /* only the requester's own exec: another client's ack is dropped */
        if (p->kind != PEND_EXEC || p->client_id != c->id || !json_equal(p->orig_id, sid))
            continue;
        json_t *n = json_object_get(req, "n");
        json_t *m = json_pack("{s:s, s:I, s:I}", "op", "stream_ack", "stream",
                              (json_int_t)p->node_id, "n", n ? json_integer_value(n) : (json_int_t)0);
        if (m && json_is_true(json_object_get(req, "cancel")))
            json_object_set_new(m, "cancel", json_true());
        if (m)
            vmreq_send_raw(vm, m);
        json_decref(m);
        return;
    }
}
