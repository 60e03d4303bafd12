/* reachcheck.c - checks a listening address a node reports or asks about
 * ({"listen"}, {"unlisten"}, {"ask":K,"reach"}; docs/protocol.md, "Network
 * reach"). A node is not trusted: this is all the manager believes of it.
 * Pure (no state), so the fuzzer runs it as the manager does. */
#include "reachcheck.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* text as normal numeric text into out, if it is a loopback address. */
static int loopback_normal(const char *text, char *out, size_t n)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char b[16];
    if (inet_pton(AF_INET, text, b) == 1)
        return b[0] == 127 && inet_ntop(AF_INET, b, out, (socklen_t)n) ? 0 : -1;
    if (inet_pton(AF_INET6, text, b) != 1)
        return -1;
    if (memcmp(b, mapped, sizeof mapped) == 0)
        return b[12] == 127 && inet_ntop(AF_INET, b + 12, out, (socklen_t)n) ? 0 : -1;
    return IN6_IS_ADDR_LOOPBACK((struct in6_addr *)b) && inet_ntop(AF_INET6, b, out, (socklen_t)n)
           ? 0 : -1;
}

int reachcheck_addr(json_t *v, struct reachcheck_addr *out, char *err, size_t errlen)
{
    json_t *proto = json_object_get(v, "proto"), *addr = json_object_get(v, "addr");
    json_t *port = json_object_get(v, "port");
    const char *p = json_string_value(proto), *a = json_string_value(addr);
    if (!json_is_object(v) || json_object_size(v) != 3 || !p || !a || !json_is_integer(port)) {
        snprintf(err, errlen, "a listening address is {\"proto\",\"addr\",\"port\"} and nothing else");
        return -1;
    }
    if (strcmp(p, "tcp") != 0 && strcmp(p, "udp") != 0) {
        snprintf(err, errlen, "proto must be \"tcp\" or \"udp\"");
        return -1;
    }
    if (json_integer_value(port) < 1 || json_integer_value(port) > 65535) {
        snprintf(err, errlen, "port must be 1-65535");
        return -1;
    }
    if (strlen(a) != json_string_length(addr) || loopback_normal(a, out->addr, sizeof out->addr) < 0) {
        snprintf(err, errlen, "addr must be a numeric loopback address");
        return -1;
    }
    snprintf(out->proto, sizeof out->proto, "%s", p);
    out->port = (int)json_integer_value(port);
    return 0;
}
