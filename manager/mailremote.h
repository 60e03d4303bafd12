/* mailremote.h - mail to and from mailboxes on other hosts of a cluster
 * (docs/cluster.md "Mail"). mailbox.c asks it when a name is not here, and
 * hands it the answers owed to senders on other hosts. Loop thread only. */
#ifndef BX_MAILREMOTE_H
#define BX_MAILREMOTE_H

#include "mbqueue.h"

int mailremote_start(void);     /* after cluster_start: subscriptions, timers */
void mailremote_stop(void);     /* after cluster_stop: forgets what is owed */

/* A send to `to`, which is not here: w (stolen) is answered once the host
 * that has it accepts it (or parks it, then accepts), or with
 * VM_NOT_FOUND / a cluster error. 0 = taken; -1 = no cluster (w untouched). */
int mailremote_send(struct mbq_who *w, const char *from, const char *to, json_t *value,
                    size_t bytes, double timeout);

/* The answer for a remote sender (w->is_remote), from mailbox.c's who_ok /
 * who_err: code BX_OK = accepted. w is not cleared. */
void mailremote_answer(struct mbq_who *w, enum bx_err code, const char *msg);

#endif
