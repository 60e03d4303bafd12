/* reachaddr.h - addresses as the reach check compares them (reachaddr.c):
 * for reach.c only. */
#ifndef BX_VMNODE_REACHADDR_H
#define BX_VMNODE_REACHADDR_H

#include <netdb.h>
#include <stddef.h>

/* A target as checked: what LuaSocket gets, and what is compared. */
struct reach_target {
    char use[NI_MAXHOST];   /* the numeric address as resolved */
    char key[NI_MAXHOST];   /* the same, normalised (v4-mapped as v4) */
    int port;
};

/* s as normal numeric text (a v4-mapped v6 address as v4) into out; -1 if
 * s is not a numeric address. */
int reachaddr_normal(const char *s, char *out, size_t n);
/* key (normal text) is in 127/8 or ::1. */
int reachaddr_loopback(const char *key);
/* key is 0.0.0.0 or ::. */
int reachaddr_wildcard(const char *key);
/* host ("*" the wildcard, "localhost" 127.0.0.1 without a lookup) into
 * t->use/key, resolved once. 0; -1 with *err (static text) when it does not
 * resolve; -2 when it is a name and full isolation forbids lookups; -3 when
 * it is a name no grant names (not looked up: see reachaddr_may_look_up). */
int reachaddr_resolve(const char *host, struct reach_target *t, const char **err);
/* Whether a DNS query for host may go out: only for a name a grant names.
 * A query carries its name to whatever resolver serves it, so a name the
 * script made up would be a way out past every check. */
int reachaddr_may_look_up(const char *host);
/* Full isolation: no lookups at all (they read files). */
int reachaddr_sealed(void);
/* given: the host as the script wrote it, t: what it resolved to. A grant
 * with the same name is that grant; otherwise the grant's host must mean
 * t's address (its port equal to t's). */
int reachaddr_granted(const char *given, const struct reach_target *t);

#endif
