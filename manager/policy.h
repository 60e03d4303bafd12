/* policy.h - the manager's side of a VM's policy (docs/protocol.md
 * "Policy"): it reads every file a VM may see (fs.read, require'd modules)
 * and sends the bytes over the node's channel, because the node itself can
 * open nothing. The policy lives in vm->init["policy"], so a restarted node
 * gets the current one. The set_policy op is in the op table (ops.def:
 * policy_op_set_policy). */
#ifndef BX_POLICY_H
#define BX_POLICY_H

#include "manager.h"

/* --module-dir: resolves dir (it must be a directory). 0, or -1 with err. */
int policy_set_module_dir(const char *dir, char *err, size_t n);
/* A node frame carrying "ask" (fs_read or module): answered at once,
 * returns 1; any other frame: 0. */
int policy_node_frame(struct vm *vm, json_t *msg);
void policy_free(void);

#endif
