/* namescheck.h - the pure checks of what hosts.c and names.c read from
 * NATS and from the names bucket: heartbeats, names announcements, records
 * and bucket keys. No state: the fuzzer (tests/fuzz/fuzz_names.c) links
 * them as the manager does (bxcheck). */
#ifndef BX_NAMESCHECK_H
#define BX_NAMESCHECK_H

#include <jansson.h>
#include <stddef.h>

#define NAMES_HOST_MAX 64       /* CLUSTER_HOST_MAX */
#define NAMES_KEY_MAX (64 * 3 + 1)  /* BX_NAME_MAX names, each byte at most "=XX" */

/* A host name as --host-name allows it (it becomes a subject token). */
int namescheck_host(const char *h);

struct beat {
    const char *name;   /* borrowed from the message */
    json_int_t vms, executions;
    double load;
    int leaving;
};
/* 0 and *b filled, or -1: not a heartbeat (drop it). */
int namescheck_beat(json_t *msg, struct beat *b);

/* A record is believed only with a valid "host". */
int namescheck_record(json_t *rec);

/* A "<prefix>.names" message: 0 with op ("set" with a good record, "del",
 * or "failover" as namescheck_failover takes it), name, from (borrowed),
 * or -1. */
int namescheck_announce(json_t *msg, const char **op, const char **name, const char **from);

#define NAMES_IDENT_MAX 80      /* BX_IDENT_MAX, with its NUL */

/* A failover relay: {"op": "failover", "name", "host": NEW, "record": R
 * (R.host == NEW, R.owner an identity), "from": DEAD, "pid": N}. The new
 * host tells every host, whose manager tells its own clients (namesfail.c).
 * 0 and *f filled (strings borrowed), or -1. */
struct failover_msg {
    const char *name, *host, *from, *owner;
    json_int_t pid;
    int shared;
};
int namescheck_failover(json_t *msg, struct failover_msg *f);

/* VM name <-> KV key: ':' and '.' travel as "=3A", "=2E". key_of needs
 * NAMES_KEY_MAX bytes for a valid name; name_of -1 for a key that is not
 * one a valid name encodes to. */
void namescheck_key_of(const char *name, char *key);
int namescheck_name_of(const char *key, char *name, size_t n);

#endif
