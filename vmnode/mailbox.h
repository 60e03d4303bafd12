/* mailbox.h - the Lua `mailbox` table (send, recv, flush, name), `post` and
 * the node's side of the mail frames (acks and pulled mail, also those that
 * arrive while the node is idle). */
#ifndef BX_VMNODE_MAILBOX_H
#define BX_VMNODE_MAILBOX_H

#include "node.h"

/* Un-acked sends a node may have in flight to names already confirmed. */
#define MAILBOX_WINDOW 64
#define MAILBOX_PULL_MAX 256

/* Remembers the VM's own name (from init; NULL leaves it empty). */
void mailbox_init(const char *name);
/* Sets the globals `mailbox` and `post` in L. Needs protection (allocates). */
void mailbox_register(lua_State *L);
/* Consumes a mail_ack / mail_items frame: 1 if msg was one, else 0. */
int mailbox_frame(json_t *msg);

#endif
