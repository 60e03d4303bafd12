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

/* What another host's manager sends (mailremote.c; docs/cluster.md "Mail").
 * A batch is an object whose string field hkey names the sending host and
 * whose array field akey holds the items; the host name or NULL
 * (malformed: dropped with a log line, as there is nobody to answer). */
const char *mailcheck_batch(json_t *msg, const char *hkey, const char *akey, json_t **items);
/* A mail item [seq, from, to, value, timeout, bytes]: 0, or -1 when
 * malformed (*seq is set when at least the seq was readable, else -1). */
struct mailcheck_mail {
    long long seq;
    const char *from, *to;
    json_t *value;          /* borrowed */
    double timeout;         /* < 0: none */
    size_t bytes;
};
int mailcheck_mail(json_t *item, struct mailcheck_mail *m);
/* An ack item [seq] (accepted), [seq, "PARKED"] or [seq, CODE, MESSAGE]:
 * 0 with *code NULL, "PARKED" or the error code; -1 when malformed. */
int mailcheck_ack(json_t *item, long long *seq, const char **code, const char **message);

/* The node's own frames {"mail":K,"to":"NAME","value":V},
 * {"post":K,"value":V} and {"mail_pull":K,"max":N[,"timeout":T]}, in
 * exactly the bytes its reply_build writes (jansson keeps key order), read
 * without building the outer object (the generic parse costs ~9k
 * instructions a frame; see docs/architecture.md). 1 with f filled
 * when line has that shape, NAME is a valid name and V one JSON value (T
 * one JSON value too); 0 otherwise, and the caller parses it generically.
 * It never reads a line differently from proto_parse (fuzz_mail checks). */
enum mailfast_kind { MAILFAST_MAIL, MAILFAST_POST, MAILFAST_PULL };
struct mailcheck_fast {
    enum mailfast_kind kind;
    long long k;
    char to[BX_NAME_MAX + 1];   /* MAIL */
    json_t *value;              /* MAIL, POST: a new reference */
    size_t max;                 /* PULL: as mailcheck_max */
    double timeout;             /* PULL: as mailcheck_timeout */
};
int mailcheck_node_fast(const char *line, size_t len, struct mailcheck_fast *f);

#endif
