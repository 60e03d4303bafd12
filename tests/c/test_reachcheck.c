/* test_reachcheck.c - what the manager believes of a node's listening
 * address (manager/reachcheck.c): the one shape, loopback only, the normal
 * form two spellings of one address share. */
#include "check.h"
#include "reachcheck.h"

#include <string.h>

static int takes(const char *text, const char *addr, int port)
{
    char err[128] = "";
    struct reachcheck_addr a;
    json_t *v = json_loads(text, 0, NULL);
    int ok = v && reachcheck_addr(v, &a, err, sizeof err) == 0;
    json_decref(v);
    return ok && strcmp(a.addr, addr) == 0 && a.port == port;
}

static int refuses(const char *text)
{
    char err[128] = "";
    struct reachcheck_addr a;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    int refused = reachcheck_addr(v, &a, err, sizeof err) < 0 && err[0];
    json_decref(v);
    return refused;
}

static void test_taken(void)
{
    CHECK(takes("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\",\"port\":8080}", "127.0.0.1", 8080));
    CHECK(takes("{\"proto\":\"udp\",\"addr\":\"127.9.8.7\",\"port\":1}", "127.9.8.7", 1));
    CHECK(takes("{\"proto\":\"tcp\",\"addr\":\"::1\",\"port\":65535}", "::1", 65535));
    CHECK(takes("{\"proto\":\"tcp\",\"addr\":\"0:0:0:0:0:0:0:1\",\"port\":80}", "::1", 80));
    /* v4-mapped is the v4 address: one entry, however it is written */
    CHECK(takes("{\"proto\":\"tcp\",\"addr\":\"::ffff:127.0.0.1\",\"port\":80}", "127.0.0.1", 80));
}

static void test_refused(void)
{
    CHECK(refuses("null"));
    CHECK(refuses("[\"tcp\",\"127.0.0.1\",80]"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\"}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\",\"port\":80,\"x\":1}"));
    CHECK(refuses("{\"proto\":\"sctp\",\"addr\":\"127.0.0.1\",\"port\":80}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"10.0.0.1\",\"port\":80}"));     /* not loopback */
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"0.0.0.0\",\"port\":80}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"::\",\"port\":80}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"::ffff:10.0.0.1\",\"port\":80}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"localhost\",\"port\":80}"));    /* numeric only */
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\\u0000x\",\"port\":80}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\",\"port\":0}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\",\"port\":65536}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\",\"port\":80.0}"));
    CHECK(refuses("{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\",\"port\":\"80\"}"));
}

int main(void)
{
    test_taken();
    test_refused();
    return CHECK_DONE();
}
