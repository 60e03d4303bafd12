/* policy.h - the manager's side of a VM's policy (docs/protocol.md
 * "Policy"): it reads every file a VM may see (fs.read, require'd modules)
 * and sends the bytes over the node's channel, because the node itself can
 * open nothing. The policy lives in vm->init["policy"], so a restarted node
 * gets the current one. Called by router.c (set_policy), vmproc.c (asks
 * from a node) and main.c (--module-dir). */
#ifndef BX_POLICY_H
#define BX_POLICY_H

#include "manager.h"

/* --module-dir: resolves dir (it must be a directory). 0, or -1 with err. */
int policy_set_module_dir(const char *dir, char *err, size_t n);
/* A node frame carrying "ask" (fs_read or module): answered at once,
 * returns 1; any other frame: 0. */
int policy_node_frame(struct vm *vm, json_t *msg);
/* set_policy: 1 if op was it (handled and answered), else 0. */
int policy_client_op(struct client *c, json_t *id, const char *op, json_t *req);
void policy_free(void);

#endif
