/* mailcheck.h - the pure checks of the mailbox fields, from clients (the
 * mailbox ops, create's mailbox_size/outbox_size) and from nodes (mail_pull):
 * sizes, pull counts and timeouts. No mailbox state; the ops' checks are
 * named in ops.def, so the router and the request fuzzer run them. */
#ifndef BX_MAILCHECK_H
#define BX_MAILCHECK_H

#include <jansson.h>
#include <stddef.h>

#include "proto.h"

#define MAILBOX_SIZE_MAX 1000000    /* messages one box may be sized to hold */
#define MAILBOX_PULL_DEFAULT 256    /* messages one pull answers with */
#define MAILBOX_PULL_MAX 1024

/* A size field: absent or null (0: the default), an integer
 * 1..MAILBOX_SIZE_MAX, or -1 when bad. */
long long mailcheck_size(json_t *obj, const char *key);
/* "timeout": a non-negative number of seconds, else -1 (none). */
double mailcheck_timeout(json_t *obj);
/* "max": how many messages a pull may take, clamped to 1..MAILBOX_PULL_MAX. */
size_t mailcheck_max(json_t *obj);
/* create's mailbox_size and outbox_size: BX_OK or BAD_REQUEST. */
enum bx_err mailcheck_create(json_t *req, char *err, size_t n);

#endif
