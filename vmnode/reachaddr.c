/* reachaddr.c - addresses as the reach check (reach.c) compares them:
 * numeric text in one normal form, one resolution per target, and the
 * policy's host:port grants matched on what they resolve to. */
#include "reach.h"
#include "reachaddr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GRANT_MAX 64

static struct {
    int ngrant;
    struct { char host[256]; int port; } grant[GRANT_MAX];
    int sealed;             /* full isolation: no name lookups (no files) */
} ra;

void reach_seal(void)
{
    ra.sealed = 1;
}

int reachaddr_sealed(void)
{
    return ra.sealed;
}

/* ---- addresses ------------------------------------------------------------ */

/* s as normal numeric text (a v4-mapped v6 address as v4); -1 if s is not
 * a numeric address. */
int reachaddr_normal(const char *s, char *out, size_t n)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char b[16];
    if (inet_pton(AF_INET, s, b) == 1)
        return inet_ntop(AF_INET, b, out, (socklen_t)n) ? 0 : -1;
    if (inet_pton(AF_INET6, s, b) != 1)
        return -1;
    if (memcmp(b, mapped, sizeof mapped) == 0)
        return inet_ntop(AF_INET, b + 12, out, (socklen_t)n) ? 0 : -1;
    return inet_ntop(AF_INET6, b, out, (socklen_t)n) ? 0 : -1;
}

int reachaddr_loopback(const char *key)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, key, b) == 1)
        return b[0] == 127;
    return strcmp(key, "::1") == 0;
}

int reachaddr_wildcard(const char *key)
{
    return strcmp(key, "0.0.0.0") == 0 || strcmp(key, "::") == 0;
}

/* host -> t->use/key. 0; -1 with *err when it does not resolve; -2 when it
 * is a name and names cannot be looked up (full isolation). */
int reachaddr_resolve(const char *host, struct reach_target *t, const char **err)
{
    if (strcmp(host, "*") == 0)
        host = "0.0.0.0";
    else if (strcasecmp(host, "localhost") == 0)
        host = "127.0.0.1";     /* no lookup: /etc/hosts may be out of reach */
    if (reachaddr_normal(host, t->key, sizeof t->key) == 0) {
        snprintf(t->use, sizeof t->use, "%s", host);
        return 0;
    }
    if (ra.sealed)
        return -2;
    if (!reachaddr_may_look_up(host))
        return -3;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *p, *pick = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        *err = gai_strerror(rc);
        return -1;
    }
    for (p = res; p; p = p->ai_next)
        if (!pick || (pick->ai_family != AF_INET && p->ai_family == AF_INET))
            pick = p;
    rc = pick ? getnameinfo(pick->ai_addr, pick->ai_addrlen, t->use, sizeof t->use, NULL, 0,
                            NI_NUMERICHOST) : -1;
    freeaddrinfo(res);
    if (rc != 0) {
        *err = "host not found";
        return -1;
    }
    if (reachaddr_normal(t->use, t->key, sizeof t->key) < 0)
        snprintf(t->key, sizeof t->key, "%s", t->use);    /* a scoped v6 address */
    return 0;
}

/* ---- grants --------------------------------------------------------------- */

void reach_grants(json_t *allow)
{
    size_t i;
    json_t *a;
    ra.ngrant = 0;
    json_array_foreach(allow, i, a) {
        const char *s = json_string_value(a), *colon = s ? strrchr(s, ':') : NULL;
        if (!colon || ra.ngrant >= GRANT_MAX)
            continue;
        size_t hl = (size_t)(colon - s);
        if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']')
            s++, hl -= 2;   /* "[::1]:80" */
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (hl == 0 || hl >= sizeof ra.grant[0].host || *end || end == colon + 1 || port < 0 ||
            port > 65535)
            continue;   /* the manager validated the list; this never happens */
        memcpy(ra.grant[ra.ngrant].host, s, hl);
        ra.grant[ra.ngrant].host[hl] = 0;
        ra.grant[ra.ngrant++].port = (int)port;
    }
}

int reachaddr_may_look_up(const char *host)
{
    for (int i = 0; i < ra.ngrant; i++)
        if (strcasecmp(ra.grant[i].host, host) == 0)
            return 1;
    return 0;
}

/* Whether the grant's host h names the address key now. */
static int grant_means(const char *h, const char *key)
{
    char norm[NI_MAXHOST];
    if (strcasecmp(h, "localhost") == 0)
        return strcmp(key, "127.0.0.1") == 0 || strcmp(key, "::1") == 0;
    if (strcmp(h, "*") == 0)
        return reachaddr_wildcard(key);
    if (reachaddr_normal(h, norm, sizeof norm) == 0)
        return strcmp(norm, key) == 0;
    if (ra.sealed)
        return 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *p;
    if (getaddrinfo(h, NULL, &hints, &res) != 0)
        return 0;
    int found = 0;
    for (p = res; p && !found; p = p->ai_next) {
        char num[NI_MAXHOST];
        found = getnameinfo(p->ai_addr, p->ai_addrlen, num, sizeof num, NULL, 0, NI_NUMERICHOST) == 0 &&
                reachaddr_normal(num, norm, sizeof norm) == 0 && strcmp(norm, key) == 0;
    }
    freeaddrinfo(res);
    return found;
}

/* given: the host as the script wrote it. The same name as a grant's is
 * that grant (t holds what it resolves to now); otherwise the grant's host
 * must mean t's address. */
int reachaddr_granted(const char *given, const struct reach_target *t)
{
    for (int i = 0; i < ra.ngrant; i++)
        if (ra.grant[i].port == t->port &&
            (strcasecmp(ra.grant[i].host, given) == 0 || grant_means(ra.grant[i].host, t->key)))
            return 1;
    return 0;
}

