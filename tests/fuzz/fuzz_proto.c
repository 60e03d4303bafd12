/* fuzz_proto.c - libFuzzer target for net/proto.c: any frame the outside
 * world sends is parsed, and whatever parses is re-serialised and parsed
 * again to the same value. */
#include "proto.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    json_t *msg = proto_parse((const char *)data, size, err, sizeof err);
    if (!msg)
        return 0;
    size_t len;
    char *s = proto_dump(msg, &len);
    if (s) {
        json_t *again = proto_parse(s, len - 1, err, sizeof err);
        if (!again || !json_equal(msg, again))
            __builtin_trap();
        json_decref(again);
        free(s);
    }
    json_t *id = json_object_get(msg, "id");
    json_t *e = proto_error_new(id, BX_E_BAD_REQUEST, "%s", err);
    json_decref(e);
    proto_valid_name(json_string_value(json_object_get(msg, "name")));
    json_decref(msg);
    return 0;
}
