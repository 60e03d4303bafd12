/* test_nodewire.c - the manager's hot-path node wire (manager/nodewire.c):
 * request frames written without a JSON tree, reply fronts read without a
 * parse, and the shapes that must fall back to a full parse. */
#include "check.h"
#include "nodewire.h"

#include <stdlib.h>
#include <string.h>

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = 0;
    return s;
}

static void test_request(void)
{
    struct evbuffer *b = evbuffer_new();
    json_t *req = json_loads("{\"id\":\"x\",\"op\":\"exec\",\"vm\":\"v\",\"code\":\"return \\\"a\\\\n\\\"\","
                             "\"junk\":1,\"timeout\":0.5}", 0, NULL);
    struct nodewire_run run = {"5", 7};
    CHECK(nodewire_request(b, 42, "exec", req, &run) == 0);
    char *s = drain(b);
    CHECK(strcmp(s, "{\"id\":42,\"op\":\"exec\",\"timeout\":0.5,\"instruction_limit\":7,"
                    "\"code\":\"return \\\"a\\\\n\\\"\"}\n") == 0);
    free(s);
    CHECK(nodewire_request(b, 1, "stats", req, NULL) == 0);
    s = drain(b);
    CHECK(strcmp(s, "{\"id\":1,\"op\":\"stats\",\"code\":\"return \\\"a\\\\n\\\"\"}\n") == 0);
    free(s);
    json_decref(req);
    req = json_loads("{\"id\":1,\"op\":\"call\",\"fn\":\"f\",\"args\":[1,{}]}", 0, NULL);
    CHECK(nodewire_request(b, 9, "call", req, &run) == 0);
    s = drain(b);
    CHECK(strcmp(s, "{\"id\":9,\"op\":\"call\",\"timeout\":5,\"instruction_limit\":7,"
                    "\"fn\":\"f\",\"args\":[1,{}]}\n") == 0);
    free(s);
    json_decref(req);
    evbuffer_free(b);
}

static void test_head(void)
{
    struct nodewire_head h;
    const char *ok = "{\"id\":12,\"hdr\":[\"\",34,5600],\"result\":{\"values\":[2]}}";
    CHECK(nodewire_head(ok, strlen(ok), &h) == 0);
    CHECK(h.id == 12 && h.has_hdr && h.code[0] == 0 && h.us == 34 && h.mem == 5600);
    CHECK(strcmp(ok + h.rest, ",\"result\":{\"values\":[2]}}") == 0);
    const char *err = "{\"id\":3,\"hdr\":[\"TIMEOUT\",0,0],\"error\":{}}";
    CHECK(nodewire_head(err, strlen(err), &h) == 0 && strcmp(h.code, "TIMEOUT") == 0);
    const char *plain = "{\"id\":7,\"result\":true}";
    CHECK(nodewire_head(plain, strlen(plain), &h) == 0 && !h.has_hdr && plain[h.rest] == ',');
    const char *bare = "{\"id\":7}";
    CHECK(nodewire_head(bare, strlen(bare), &h) == 0 && bare[h.rest] == '}');
    /* anything else is parsed in full by the caller */
    const char *bad[] = {
        "{\"event\":\"X\"}", "{\"id\":null,\"error\":{}}", "{\"id\":-1}", "{\"id\":1.5}",
        "{\"id\":\"7\"}", "{\"id\":12345678901234567890123}", "{\"id\":1,\"hdr\":[\"\",1]}",
        "{\"id\":1,\"hdr\":[\"bad\",1,2]}", "{\"id\":1", "{\"id\":1 ,", "{\"id\":",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(nodewire_head(bad[i], strlen(bad[i]), &h) < 0);
}

static void test_id_text(void)
{
    char buf[32];
    json_t *id = json_integer(-5);
    size_t n = nodewire_id_text(id, buf, sizeof buf);
    CHECK(n == 2 && memcmp(buf, "-5", 2) == 0);
    json_decref(id);
    id = json_stringn("a\0\"", 3);
    n = nodewire_id_text(id, buf, sizeof buf);
    CHECK(n == 11 && memcmp(buf, "\"a\\u0000\\\"\"", 11) == 0);
    json_decref(id);
    CHECK(nodewire_id_text(NULL, buf, sizeof buf) == 0);
}

int main(void)
{
    test_request();
    test_head();
    test_id_text();
    return CHECK_DONE();
}
