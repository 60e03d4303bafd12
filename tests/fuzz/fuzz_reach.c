/* fuzz_reach.c - libFuzzer target for what the manager believes of a
 * node's listening address (manager/reachcheck.c, run on every listen,
 * unlisten and reach ask) and for the node's own normal form of addresses
 * and grants (vmnode/reachaddr.c), which must agree with it: a VM's
 * listener the node reports in a form the manager files differently would
 * be unreachable, or reachable under a second name.
 *
 * Input: a JSON value, a newline, then an address text and, after a second
 * newline, a "host:port" grant. Invariants: an accepted address is a
 * numeric loopback address in normal form, port 1-65535, and its normal
 * form is accepted unchanged; the node's normal form is idempotent, and a
 * loopback address in it is filed under the same text by the manager; a
 * grant matches exactly the port it names. */
#include "reachaddr.h"
#include "reach.h"
#include "reachcheck.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_manager(const char *text, size_t len)
{
    char err[128];
    struct reachcheck_addr a, b;
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (reachcheck_addr(v, &a, err, sizeof err) < 0) {
        CHECK(err[0] != 0 && memchr(err, 0, sizeof err));
        json_decref(v);
        return;
    }
    unsigned char buf[16];
    CHECK(a.port >= 1 && a.port <= 65535);
    CHECK(strcmp(a.proto, "tcp") == 0 || strcmp(a.proto, "udp") == 0);
    CHECK((inet_pton(AF_INET, a.addr, buf) == 1 && buf[0] == 127) || strcmp(a.addr, "::1") == 0);
    json_t *norm = json_pack("{s:s, s:s, s:i}", "proto", a.proto, "addr", a.addr, "port", a.port);
    CHECK(norm && reachcheck_addr(norm, &b, err, sizeof err) == 0);
    CHECK(strcmp(a.addr, b.addr) == 0 && a.port == b.port && strcmp(a.proto, b.proto) == 0);
    json_decref(norm);
    json_decref(v);
}

static void check_node(const char *addr)
{
    char err[128], out[NI_MAXHOST], again[NI_MAXHOST];
    struct reachcheck_addr a;
    if (reachaddr_normal(addr, out, sizeof out) < 0)
        return;
    CHECK(reachaddr_normal(out, again, sizeof again) == 0 && strcmp(out, again) == 0);
    json_t *v = json_pack("{s:s, s:s, s:i}", "proto", "tcp", "addr", out, "port", 80);
    int filed = reachcheck_addr(v, &a, err, sizeof err) == 0;
    CHECK(filed == reachaddr_loopback(out));
    CHECK(!filed || strcmp(a.addr, out) == 0);
    json_decref(v);
}

static void check_grant(const char *grant, const char *addr)
{
    struct reach_target t;
    const char *err = NULL;
    json_t *list = json_pack("[s]", grant);
    reach_grants(list);
    if (reachaddr_resolve(addr, &t, &err) == 0) {
        for (int port = 0; port < 3; port++) {
            t.port = port;
            int g = reachaddr_granted(addr, &t);
            const char *colon = strrchr(grant, ':');
            CHECK(!g || (colon && atoi(colon + 1) == port));
        }
    }
    reach_grants(NULL);
    json_decref(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int sealed;
    if (!sealed) {
        reach_seal();   /* no name lookups: a fuzzer does no DNS */
        sealed = 1;
    }
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t jlen = nl ? (size_t)(nl - text) : size;
    check_manager(text, jlen);
    if (!nl)
        return 0;
    char *rest = strndup(nl + 1, size - jlen - 1);
    char *nl2 = strchr(rest, '\n');
    if (nl2)
        *nl2 = 0;
    check_node(rest);
    if (nl2)
        check_grant(nl2 + 1, rest);
    free(rest);
    return 0;
}
