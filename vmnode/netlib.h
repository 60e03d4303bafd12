/* netlib.h - LuaSocket and the Lua `net` module inside networked VMs, under
 * the reach check of reach.h, and the idle read that also serves the VM's
 * sockets. A refusal is raised with coded.h, so the request fails with
 * POLICY_VIOLATION. */
#ifndef BX_VMNODE_NETLIB_H
#define BX_VMNODE_NETLIB_H

#include "node.h"

/* Largest encoded message (bytes of one NDJSON line, newline included). */
#define NET_MSG_MAX ((size_t)1 << 20)
/* Most sockets (servers + peers) the node polls at once. */
#define NET_FDS_MAX 512

/* Loads LuaSocket and sets the globals `socket` and `net` in L. Needs
 * protection (allocates, may raise). */
void netlib_register(lua_State *L, bx_node *n);
/* Like link_read(n, ..., 0) but, while the VM has sockets, also accepts and
 * reads them (running on_message handlers under the limits) until a frame
 * arrives on fd 3. Same return values as link_read. */
int netlib_idle_read(bx_node *n, char **line, size_t *len);
/* The policy's allow_tcp list ("host:port" strings): reach_grants. */
void netlib_configure(json_t *allow);
/* From now on only numeric addresses (and "localhost"): full isolation. */
void netlib_seal(void);

#endif
