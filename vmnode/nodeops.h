/* nodeops.h - the node's requests: the one table of ops (nodeops.c) and the
 * handlers it names. A handler gets the parsed request and its id (both
 * borrowed) and returns the reply (new reference); one that leaves the node
 * unable to serve sets n->broken, and the node exits after the reply. */
#ifndef BX_NODEOPS_H
#define BX_NODEOPS_H

#include "node.h"

typedef json_t *(*op_fn)(bx_node *n, json_t *req, json_t *id);

/* ops.c: runs request op: init only as the first, every other op only
 * after it; a name not in the table is UNKNOWN_OP. */
json_t *ops_run(bx_node *n, json_t *req, json_t *id, const char *op);

/* init.c: the VM's limits, callbacks, policy and project, then its Lua
 * state and isolation. */
json_t *init_op(bx_node *n, json_t *req, json_t *id);

/* exec.c: the ops that run the client's code. */
json_t *exec_op_exec(bx_node *n, json_t *req, json_t *id);
json_t *exec_op_call(bx_node *n, json_t *req, json_t *id);

/* state.c: the ops that read, write or rebuild the state without running a
 * chunk. */
json_t *state_op_exists(bx_node *n, json_t *req, json_t *id);
json_t *state_op_get_global(bx_node *n, json_t *req, json_t *id);
json_t *state_op_set_globals(bx_node *n, json_t *req, json_t *id);
json_t *state_op_reset(bx_node *n, json_t *req, json_t *id);
json_t *state_op_stats(bx_node *n, json_t *req, json_t *id);
json_t *state_op_net_enable(bx_node *n, json_t *req, json_t *id);
/* Pushes the value at a dotted name, walking tables from the globals with
 * raw reads (no metamethod runs); nil when a step is missing. Allocates the
 * keys: needs protection. */
void state_push_name(lua_State *L, const char *name);

#endif
