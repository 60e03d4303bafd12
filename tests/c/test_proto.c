/* test_proto.c - net/proto.c: error codes round-trip, replies/errors/events
 * have the documented shape, parse refuses malformed input, name rules. */
#include "proto.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static void test_codes(void)
{
    for (int e = 0; e < BX_E__COUNT; e++)
        CHECK(bx_err_from_code(bx_err_code((enum bx_err)e)) == (enum bx_err)e);
    CHECK(strcmp(bx_err_code(BX_E_MEMORY_LIMIT), "MEMORY_LIMIT") == 0);
    CHECK(bx_err_from_code("NO_SUCH_CODE") == BX_E_INTERNAL);
    CHECK(bx_err_from_code(NULL) == BX_E_INTERNAL);
}

static void test_shapes(void)
{
    json_t *id = json_integer(7);
    json_t *err = proto_error_new(id, BX_E_VM_NOT_FOUND, "no VM named '%s'", "x");
    size_t len;
    char *s = proto_dump(err, &len);
    CHECK(s && s[len - 1] == '\n');
    CHECK(strncmp(s, "{\"id\":7,\"error\":{\"code\":\"VM_NOT_FOUND\",\"message\":\"no VM named 'x'\"}}\n", len) == 0);
    free(s);
    json_decref(err);

    json_t *rep = proto_reply_new(id, json_integer(42));
    s = proto_dump(rep, &len);
    CHECK(s && strncmp(s, "{\"id\":7,\"result\":42}\n", len) == 0);
    free(s);
    json_decref(rep);
    json_decref(id);

    err = proto_error_new(NULL, BX_E_BAD_REQUEST, "bad");
    CHECK(json_is_null(json_object_get(err, "id")));
    json_decref(err);

    /* invalid UTF-8 in a message must not lose the error */
    err = proto_error_new(NULL, BX_E_LUA_ERROR, "%s", "\xff\xfe");
    CHECK(err && json_is_object(json_object_get(err, "error")));
    json_decref(err);

    json_t *ev = proto_event_new("TIMEOUT", "vm1", NULL);
    CHECK(json_is_string(json_object_get(ev, "vm")));
    CHECK(json_is_real(json_object_get(ev, "ts")));
    CHECK(json_is_object(json_object_get(ev, "detail")));
    json_decref(ev);
}

static void test_parse(void)
{
    char err[128];
    const char *bad[] = { "", "{", "[1,2]", "42", "\"s\"", "{\"a\":1,\"a\":2}",
                          "{\"a\":}", "nul", "{\"a\":1}x", "\xff{}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        json_t *j = proto_parse(bad[i], strlen(bad[i]), err, sizeof err);
        CHECK(j == NULL && err[0] != 0);
    }
    const char nul[] = "{\"s\":\"a\\u0000b\"}";
    json_t *j = proto_parse(nul, sizeof nul - 1, err, sizeof err);
    CHECK(j && json_string_length(json_object_get(j, "s")) == 3);
    json_decref(j);
    const char big[] = "{\"n\":9223372036854775807,\"m\":-9223372036854775808,\"f\":4.0}";
    j = proto_parse(big, sizeof big - 1, err, sizeof err);
    CHECK(j && json_integer_value(json_object_get(j, "n")) == 9223372036854775807LL);
    CHECK(j && json_is_real(json_object_get(j, "f")));
    json_decref(j);
    const char over[] = "{\"n\":9223372036854775808}";
    CHECK(proto_parse(over, sizeof over - 1, err, sizeof err) == NULL);
}

static void test_names(void)
{
    CHECK(proto_valid_name("vm1"));
    CHECK(proto_valid_name("a.b-c_d:e"));
    CHECK(!proto_valid_name(""));
    CHECK(!proto_valid_name(NULL));
    CHECK(!proto_valid_name("a/b"));
    CHECK(!proto_valid_name("a b"));
    CHECK(!proto_valid_name("\xc3\xa9"));
    char n64[65], n65[66];
    memset(n64, 'a', 64); n64[64] = 0;
    memset(n65, 'a', 65); n65[65] = 0;
    CHECK(proto_valid_name(n64));
    CHECK(!proto_valid_name(n65));
}

int main(void)
{
    test_codes();
    test_shapes();
    test_parse();
    test_names();
    return CHECK_DONE();
}
