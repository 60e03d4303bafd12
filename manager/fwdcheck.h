/* fwdcheck.h - the pure checks of what arrives over NATS for forwarding
 * (remote.c, fwd.c, fwdlist.c): the envelope around a forwarded request
 * or a frame, before anything of the manager sees it. The request inside
 * then goes through router_dispatch, the op table's own checks. Linked by
 * the fuzzers (tests/fuzz/fuzz_cluster.c). */
#ifndef BX_FWDCHECK_H
#define BX_FWDCHECK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define FWD_HOST_MAX 64         /* CLUSTER_HOST_MAX */
#define FWD_IDENT_MAX 80        /* BX_IDENT_MAX */

/* Everything borrowed from the message checked. */
struct fwd_env {
    const char *from;           /* the sending host: a subject token */
    uint64_t client;            /* the client's id on the origin */
    const char *identity;       /* req: "uid:N" / "token:NAME"; list too */
    int admin;
    json_t *body;               /* req: the request; out: the frame */
};

/* A host name as a subject token: 1-64 of A-Za-z0-9_:- (no dots, no wildcards). */
int fwdcheck_host(const char *h);
/* {from, client, identity, admin, req}: 0, or -1 with err. */
int fwdcheck_req(json_t *msg, struct fwd_env *e, char *err, size_t n);
/* {from, client, frame}: 0, or -1 with err. */
int fwdcheck_out(json_t *msg, struct fwd_env *e, char *err, size_t n);
/* {from, client} (bye), {from, identity, admin} (list): 0 or -1. */
int fwdcheck_bye(json_t *msg, struct fwd_env *e, char *err, size_t n);
int fwdcheck_list(json_t *msg, struct fwd_env *e, char *err, size_t n);

#endif
