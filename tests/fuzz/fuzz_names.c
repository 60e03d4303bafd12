/* fuzz_names.c - what hosts.c and names.c read from NATS and the names
 * bucket (manager/namescheck.c): heartbeats, names announcements, records
 * as JSON, failover relays, and bucket keys; a valid name must survive key_of/name_of. */
#include "namescheck.h"
#include "proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *msg = json_loadb((const char *)data, size, 0, NULL);
    struct beat b;
    const char *op, *name, *from;
    if (namescheck_beat(msg, &b) == 0 && !namescheck_host(b.name))
        abort();
    if (namescheck_announce(msg, &op, &name, &from) == 0 && !proto_valid_name(name))
        abort();
    struct failover_msg f;
    if (namescheck_failover(msg, &f) == 0 &&
        (!proto_valid_name(f.name) || !namescheck_host(f.host) || !namescheck_host(f.from) ||
         strlen(f.owner) >= NAMES_IDENT_MAX || f.pid < 0))
        abort();
    namescheck_record(msg);
    json_decref(msg);

    char s[256], key[NAMES_KEY_MAX], back[80];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = 0;
    namescheck_name_of(s, back, sizeof back);     /* any key at all */
    if (proto_valid_name(s)) {
        namescheck_key_of(s, key);
        if (namescheck_name_of(key, back, sizeof back) < 0 || strcmp(back, s) != 0)
            abort();
    }
    return 0;
}
