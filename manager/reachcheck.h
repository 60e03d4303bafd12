/* reachcheck.h - the one shape a node may report a listening address in
 * (reachcheck.c): pure, no manager state, linked alone into fuzz_reach. */
#ifndef BX_REACHCHECK_H
#define BX_REACHCHECK_H

#include <jansson.h>
#include <netinet/in.h>
#include <stddef.h>

/* Most listening addresses one node may hold (as vmnode/reach.h). */
#define REACHCHECK_PER_NODE 64

/* A listening address in normal form. */
struct reachcheck_addr {
    char proto[4];                  /* "tcp" or "udp" */
    char addr[INET6_ADDRSTRLEN];    /* numeric, v4-mapped written as v4 */
    int port;                       /* 1-65535 */
};

/* v must be {"proto":"tcp"|"udp","addr":A,"port":P} and nothing else, A a
 * numeric loopback address (127/8 or ::1: a node cannot prove it bound any
 * other, and only loopback is what VMs serve each other on), P 1-65535.
 * 0 with out in normal form; -1 with a reason in err. */
int reachcheck_addr(json_t *v, struct reachcheck_addr *out, char *err, size_t errlen);

#endif
