/* fuzz_cluster.c - libFuzzer target for what arrives over NATS for
 * forwarding (docs/cluster.md): a payload is parsed as cluster.c parses it
 * (proto_parse), its envelope checked by fwdcheck.c as remote.c, fwd.c and
 * fwdlist.c check it, and a forwarded request that passes is judged by
 * req_check, the op table's walk router_dispatch makes for a proxy client.
 * The first byte picks which envelope the rest is read as. */
#include "fwdcheck.h"
#include "proto.h"
#include "validate.h"

#include <stdint.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_env(const struct fwd_env *e, int with_client, int with_who)
{
    CHECK(fwdcheck_host(e->from) && !strchr(e->from, '.') && strlen(e->from) <= FWD_HOST_MAX);
    CHECK(!with_client || e->client > 0);
    CHECK(!with_who || (e->identity && *e->identity && strlen(e->identity) < FWD_IDENT_MAX));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct fwd_env e;
    if (size < 1)
        return 0;
    json_t *msg = proto_parse((const char *)data + 1, size - 1, err, sizeof err);
    switch (data[0] % 4) {
    case 0:
        if (fwdcheck_req(msg, &e, err, sizeof err) == 0) {
            check_env(&e, 1, 1);
            CHECK(json_is_object(e.body));
            req_check(e.body, err, sizeof err);     /* any answer, never a crash */
            /* a spread run's origin pool_config, as the target's pool parses it */
            json_t *pool = json_object_get(e.body, "pool");
            struct pool_cfg cfg;
            if (json_is_object(pool) && req_check_pool_config(pool, &cfg, err, sizeof err) == BX_OK)
                json_decref(cfg.init);
        }
        break;
    case 1:
        if (fwdcheck_out(msg, &e, err, sizeof err) == 0) {
            check_env(&e, 1, 0);
            CHECK(json_is_object(e.body));
        }
        break;
    case 2:
        if (fwdcheck_bye(msg, &e, err, sizeof err) == 0)
            check_env(&e, 1, 0);
        break;
    default:
        if (fwdcheck_list(msg, &e, err, sizeof err) == 0)
            check_env(&e, 0, 1);
        break;
    }
    json_decref(msg);
    return 0;
}
