/* fuzz_request.c - libFuzzer target for what a client can send the manager:
 * bytes arrive in arbitrary chunks, are cut into frames by the manager's own
 * linebuf.c over a libevent evbuffer (as client.c does), parsed by
 * proto_parse, and judged by validate.c's req_check, which walks the op
 * table (ops.def) as router.c does, so every op's pure check is reached.
 * The op's check is then run again as the router runs it, with its parsed
 * arguments: a create that passes has its init frame checked and its limits
 * parsed by the node's limits_parse, as the node would on init. Every
 * error must serialise into a reply the client can parse. The first input
 * byte picks the frame limit and the chunk size. */
#include "manager.h"
#include "node.h"
#include "ops.h"
#include "validate.h"

#include <stdint.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* A message we would send must survive the trip through the wire. */
static void check_wire(json_t *msg)
{
    char err[160];
    size_t len;
    CHECK(msg);
    char *s = proto_dump(msg, &len);
    CHECK(s && len > 0 && s[len - 1] == '\n' && !memchr(s, '\n', len - 1));
    json_t *back = proto_parse(s, len - 1, err, sizeof err);
    CHECK(back && json_equal(back, msg));
    json_decref(back);
    free(s);
}

static void check_init(json_t *init)
{
    char err[256];
    bx_limits lim;
    CHECK(!json_object_get(init, "id") && !json_object_get(init, "op") &&
          !json_object_get(init, "name"));
    CHECK(json_is_object(json_object_get(init, "limits")));
    CHECK(json_is_array(json_object_get(init, "callbacks")));
    CHECK(json_is_boolean(json_object_get(init, "networked")));
    check_wire(init);
    /* every limit the manager let through, the node must accept */
    CHECK(limits_parse(json_object_get(init, "limits"), &lim, err, sizeof err) == 0);
    CHECK(lim.timeout >= 0 && lim.cpu_limit >= 0 && lim.instruction_limit >= 0);
    CHECK(lim.max_output >= 1);
}

/* The wire fails closed: a request that passed names no field its op
 * does not declare (an independent re-check of op_check_fields). */
static void check_fields_declared(const struct op_def *d, json_t *req)
{
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        size_t k = strlen(key);
        int found = !strcmp(key, "id") || !strcmp(key, "op");
        for (const char *p = d->fields; k && !found && (p = strstr(p, key)); p++)
            found = (p == d->fields || p[-1] == ' ') && (p[k] == ' ' || p[k] == 0);
        CHECK(found);
    }
}

/* A run that passed names its chunk by a filename the node can print: 1
 * to BX_FILENAME_MAX bytes, no control characters, never with chunkname;
 * its context is an object. */
static void check_run_names(json_t *req)
{
    json_t *f = json_object_get(req, "filename"), *ctx = json_object_get(req, "context");
    if (f) {
        const char *s = json_string_value(f);
        size_t n = json_string_length(f);
        CHECK(s && n >= 1 && n <= BX_FILENAME_MAX && !json_object_get(req, "chunkname"));
        for (size_t i = 0; i < n; i++)
            CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
    }
    CHECK(!ctx || json_is_object(ctx));
}

/* What the router does after req_check's gates: the op's check, with the
 * arguments it parses for the handler. Must agree with req_check. */
static void check_op(json_t *req, enum bx_err code)
{
    char err[512] = "";
    const struct op_def *d = op_lookup(json_string_value(json_object_get(req, "op")));
    if (!d || (code != BX_OK && !(d->flags & OPF_NOREPLY)))
        return;
    struct op_args a = {0};
    enum bx_err e = op_check_fields(d, req, err, sizeof err);
    if (e == BX_OK)
        e = d->check(req, &a, err, sizeof err);
    CHECK(e == code || (d->flags & OPF_NOREPLY));
    CHECK(e == BX_OK || err[0]);
    if (e == BX_OK)
        check_fields_declared(d, req);
    if (e == BX_OK && strcmp(d->name, "create") == 0) {
        CHECK(proto_valid_name(json_string_value(json_object_get(req, "name"))));
        check_init(a.init);
    }
    if (e == BX_OK && (d->flags & OPF_VM) && (d->flags & OPF_RUNS))
        CHECK(req_vm_name(req));
    if (e == BX_OK && (d->flags & OPF_RUNS))
        check_run_names(req);
    if (e == BX_OK && strcmp(d->name, "set_policy") == 0)
        CHECK(json_object_size(a.policy) == 4);
    if (e == BX_OK && strcmp(d->name, "pool_config") == 0) {
        CHECK(a.pool.max >= 1 && a.pool.min <= a.pool.max && a.pool.max <= POOL_MAX_VMS);
        check_init(a.pool.init);
    }
    op_args_clear(&a);
}

static void handle_frame(const char *line, size_t len)
{
    char err[512] = "";
    json_t *req = proto_parse(line, len, err, sizeof err);
    if (!req) {
        json_t *e = proto_error_new(NULL, BX_E_BAD_REQUEST, "%s", err);
        check_wire(e);
        json_decref(e);
        return;
    }
    enum bx_err code = req_check(req, err, sizeof err);
    json_t *id = json_object_get(req, "id");
    check_op(req, code);
    if (code != BX_OK) {
        CHECK(code == BX_E_BAD_REQUEST || code == BX_E_UNKNOWN_OP || code == BX_E_INTERNAL);
        /* a bad id is answered with a null id, as router.c does */
        json_t *e = proto_error_new(req_check_id(req, err + 256, 256) == BX_OK ? id : NULL,
                                    code, "%s", err);
        check_wire(e);
        json_decref(e);
    }
    json_decref(req);
}

/* Every op of the table is one req_check knows: none is judged unknown. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    char err[512];
    for (size_t i = 0; i < OP_COUNT; i++) {
        json_t *req = json_pack("{s:i, s:s}", "id", 1, "op", op_table[i].name);
        CHECK(req && op_lookup(op_table[i].name) == &op_table[i]);
        CHECK(req_check(req, err, sizeof err) != BX_E_UNKNOWN_OP);
        json_decref(req);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = 16 + (size_t)(data[0] & 0x3f) * 64;
    size_t chunk = 1 + (size_t)(data[0] >> 6) * 97;
    struct evbuffer *in = evbuffer_new();
    size_t scanned = 0, off = 1;
    int broken = 0;
    CHECK(in);
    while (off < size && !broken) {
        size_t n = size - off < chunk ? size - off : chunk;
        CHECK(evbuffer_add(in, data + off, n) == 0);
        off += n;
        for (;;) {
            const char *line;
            size_t len;
            int rc = linebuf_next(in, &scanned, max, &line, &len);
            if (rc < 0) {
                broken = 1;     /* FRAME_TOO_LARGE: client.c closes here */
                break;
            }
            if (rc == 0)
                break;
            CHECK(len <= max && line[len] == '\n' && !memchr(line, '\n', len));
            if (len > 0)
                handle_frame(line, len);
            evbuffer_drain(in, len + 1);
        }
    }
    /* a partial frame longer than max is refused before its newline comes */
    if (!broken)
        CHECK(evbuffer_get_length(in) <= max);
    evbuffer_free(in);
    return 0;
}
