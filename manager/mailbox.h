/* mailbox.h - named mailboxes held by the manager: one per VM plus those a
 * client opens. Called by router.c (client ops, create checks), vmproc.c
 * (node mail frames, VM birth and death) and client.c (client gone). */
#ifndef BX_MAILBOX_H
#define BX_MAILBOX_H

#include "manager.h"

#define MAILBOX_DEFAULT_COUNT 1024
#define MAILBOX_DEFAULT_BYTES ((size_t)16 << 20)

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
/* A client op (mailbox_open/close, mail_send, mail_recv, outbox_recv): 1
 * if handled. */
int mailbox_client_op(struct client *c, json_t *id, const char *op, json_t *req);
/* The client left: its mailboxes close. */
void mailbox_client_gone(struct client *c);
void mailbox_free_all(void);

#endif
