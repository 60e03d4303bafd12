/* reach.h - where a networked VM's sockets may go (reach.c; the model is in
 * docs/security.md, "Network reach"). Every address-taking LuaSocket method
 * is wrapped: the target is resolved once, checked on its numeric address
 * and the original method is called with that address. A refusal raises
 * POLICY_VIOLATION (coded.h) after a SECURITY_VIOLATION event. */
#ifndef BX_VMNODE_REACH_H
#define BX_VMNODE_REACH_H

#include "node.h"

/* Most listening sockets a VM holds at once (the manager keeps as many). */
#define REACH_BOUND_MAX 64

/* Wraps the methods of every LuaSocket class (their metatables are in the
 * registry) and core.connect of the socket.core table at index core.
 * Needs protection (allocates). */
void reach_guard(lua_State *L, int core);
/* The policy's "host:port" grants (allow_tcp): replaces the last list. */
void reach_grants(json_t *allow);
/* From now on only numeric addresses and "localhost": full isolation. */
void reach_seal(void);
/* Reports the listeners that the collector closed since the last call
 * ({"unlisten"}); a finalizer cannot write a frame safely, so it only
 * marks them. Called between requests and before each ask. */
void reach_flush(bx_node *n);

#endif
