/* mailbox.h - named mailboxes held by the manager: one per VM plus those a
 * client opens. The VM's life (create, removal), node mail frames and a
 * client's departure come in here; the client ops are in the op table
 * (ops.def: mailbox_op_*). */
#ifndef BX_MAILBOX_H
#define BX_MAILBOX_H

#include "manager.h"

/* create: checks mailbox_size and that no mailbox holds the name. */
enum bx_err mailbox_check_create(json_t *req, char *err, size_t n);
/* A VM's mailbox and outbox, made with the VM (sizes from its init
 * "mailbox_size" and "outbox_size");
 * 0 or -1 when memory ran out. */
int mailbox_vm_added(struct vm *vm);
/* The VM is gone for good: its mailbox and outbox go, parked senders and
 * outbox readers fail with VM_NOT_FOUND. */
void mailbox_vm_removed(const char *name);
/* A node frame carrying "mail", "post" or "mail_pull": handled, returns 1; else 0. */
int mailbox_node_frame(struct vm *vm, json_t *msg, size_t len);
/* The same for mail and post frames in the node's own shape, unparsed (mailcheck_node_fast): 1 if handled. */
int mailbox_node_fast(struct vm *vm, const char *line, size_t len);
/* The client left: its mailboxes close. */
void mailbox_client_gone(struct client *c);
void mailbox_free_all(void);

/* For mailremote.c: a send from another host into the local box `to`
 * (w is a remote waiter, stolen): -1 when no box here has that name (w
 * untouched), 1 when parked, 0 when answered. */
struct mbq_who;
int mailbox_deliver_remote(const char *to, const char *from, json_t *value, size_t bytes,
                           struct mbq_who *w, double timeout);
/* Answers any waiter in its dialect (BX_OK: accepted); w is not cleared. */
void mailbox_answer(struct mbq_who *w, enum bx_err code, const char *msg);
/* Messages that senders on host (gone now) had parked here go: those
 * senders were told their send failed. */
void mailbox_host_gone(const char *host);

#endif
