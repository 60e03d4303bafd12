/* nodeops.c - the node's table of ops, the one list of what a request may ask
 * of a node, and the dispatch that walks it (see nodeops.h). A per-op property
 * (which ops may arrive on a direct client channel, say) is a column here. */
#include "nodeops.h"

#include <string.h>

#include "policy.h"
#include "project.h"

#define OP_INIT 1u      /* the first request, and only the first */

static const struct node_op {
    const char *name;
    op_fn fn;
    unsigned flags;
} node_ops[] = {
    { "init", init_op, OP_INIT },
    { "exec", exec_op_exec, 0 },
    { "call", exec_op_call, 0 },
    { "exists", state_op_exists, 0 },
    { "get_global", state_op_get_global, 0 },
    { "set_globals", state_op_set_globals, 0 },
    { "reset", state_op_reset, 0 },
    { "stats", state_op_stats, 0 },
    { "net_enable", state_op_net_enable, 0 },
    { "set_policy", policy_op_set, 0 },
    { "get_state", project_op_get_state, 0 },
};

static const struct node_op *ops_find(const char *name)
{
    for (size_t i = 0; i < sizeof node_ops / sizeof node_ops[0]; i++)
        if (strcmp(node_ops[i].name, name) == 0)
            return &node_ops[i];
    return NULL;
}

json_t *ops_run(bx_node *n, json_t *req, json_t *id, const char *op)
{
    const struct node_op *o = ops_find(op);
    if (o && (o->flags & OP_INIT))
        return n->initialised ? proto_error_new(id, BX_E_BAD_REQUEST, "already initialised") : o->fn(n, req, id);
    if (!n->initialised)
        return proto_error_new(id, BX_E_BAD_REQUEST, "the first request must be init");
    if (!o)
        return proto_error_new(id, BX_E_UNKNOWN_OP, "unknown op '%.64s'", op);
    return o->fn(n, req, id);
}
