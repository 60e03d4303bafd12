/* policy.h - the node's side of the VM's policy: Lua's `fs` (read, lines)
 * and `require`, which ask the manager for bytes (after init the node can
 * open no file), and the parts of the policy the node enforces itself (tcp
 * grants through netlib.c, the heap limit, the imports list), and the
 * set_policy op. Refusals are raised with coded.h as POLICY_VIOLATION. */
#ifndef BX_VMNODE_POLICY_H
#define BX_VMNODE_POLICY_H

#include "node.h"

/* Applies a policy object ({"mem","tcp","fs","imports"}; NULL or a
 * non-object changes nothing): imports kept, tcp handed to netlib, mem
 * made the heap limit. */
void policy_configure(bx_node *n, json_t *pol);
/* For a link_await filter waiting on ask k: 1 when msg is its answer, 0 to
 * keep waiting (a stale answer, or mail queued for later), -1 for a frame
 * that has no business arriving now. */
int policy_answer_is(json_t *msg, json_int_t k);
/* The set_policy op: configures and replies true. */
json_t *policy_op_set(bx_node *n, json_t *req, json_t *id);
/* Sets the globals `fs` and `require` and the registry tables behind them.
 * Needs protection (allocates). */
void policy_register(lua_State *L);
/* An "answer" frame that arrived after its wait ended: 1 (dropped), else 0. */
int policy_frame(json_t *msg);

#endif
