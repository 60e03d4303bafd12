/* proto.c - error codes and frame encode/decode for the JSON protocol.
 * Shared by the manager and the node. */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const err_codes[BX_E__COUNT] = {
    [BX_OK] = "OK",
    [BX_E_BAD_REQUEST] = "BAD_REQUEST",
    [BX_E_UNKNOWN_OP] = "UNKNOWN_OP",
    [BX_E_FRAME_TOO_LARGE] = "FRAME_TOO_LARGE",
    [BX_E_AUTH_REQUIRED] = "AUTH_REQUIRED",
    [BX_E_LUA_ERROR] = "LUA_ERROR",
    [BX_E_SYNTAX_ERROR] = "SYNTAX_ERROR",
    [BX_E_TIMEOUT] = "TIMEOUT",
    [BX_E_MEMORY_LIMIT] = "MEMORY_LIMIT",
    [BX_E_INSTRUCTION_LIMIT] = "INSTRUCTION_LIMIT",
    [BX_E_CPU_LIMIT] = "CPU_LIMIT",
    [BX_E_VM_CRASHED] = "VM_CRASHED",
    [BX_E_VM_NOT_FOUND] = "VM_NOT_FOUND",
    [BX_E_VM_EXISTS] = "VM_EXISTS",
    [BX_E_POLICY_VIOLATION] = "POLICY_VIOLATION",
    [BX_E_CONVERSION_ERROR] = "CONVERSION_ERROR",
    [BX_E_SHUTTING_DOWN] = "SHUTTING_DOWN",
    [BX_E_INTERNAL] = "INTERNAL",
    [BX_E_ISOLATION] = "ISOLATION_UNAVAILABLE",
    [BX_E_FORBIDDEN] = "FORBIDDEN",
    [BX_E_CLUSTER_UNAVAILABLE] = "CLUSTER_UNAVAILABLE",
};

const char *bx_err_code(enum bx_err e)
{
    if ((int)e < 0 || e >= BX_E__COUNT)
        return "INTERNAL";
    return err_codes[e];
}

enum bx_err bx_err_from_code(const char *code)
{
    for (int i = 0; code && i < BX_E__COUNT; i++)
        if (strcmp(err_codes[i], code) == 0)
            return (enum bx_err)i;
    return BX_E_INTERNAL;
}

json_t *proto_error_new(json_t *id, enum bx_err e, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *err = json_pack("{s:s, s:s}", "code", bx_err_code(e), "message", msg);
    if (!err) /* message was not valid UTF-8: keep the code, drop the text */
        err = json_pack("{s:s, s:s}", "code", bx_err_code(e), "message", "(unprintable message)");
    return json_pack("{s:O?, s:o}", "id", id, "error", err);
}

json_t *proto_reply_new(json_t *id, json_t *result)
{
    return json_pack("{s:O?, s:o?}", "id", id, "result", result);
}

json_t *proto_event_new(const char *type, const char *vm, json_t *detail)
{
    json_t *ev = json_pack("{s:s, s:f, s:o}", "event", type, "ts", proto_now(),
                           "detail", detail ? detail : json_object());
    if (ev && vm)
        json_object_set_new(ev, "vm", json_string(vm));
    return ev;
}

/* Most frames are small: one json_dumpb pass into the caller's scratch,
 * where proto_dump needs two (size, then bytes) and a malloc. */
char *proto_dump_into(const json_t *msg, char *scratch, size_t cap, size_t *len)
{
    size_t n = cap > 1 ? json_dumpb(msg, scratch, cap - 1, JSON_COMPACT) : 0;
    if (n == 0 || n > cap - 1)
        return proto_dump(msg, len);    /* too big (or empty): malloc'd */
    scratch[n] = '\n';
    *len = n + 1;
    return scratch;
}

char *proto_dump(const json_t *msg, size_t *len)
{
    size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
    if (n == 0)
        return NULL;
    char *buf = malloc(n + 1);
    if (!buf)
        return NULL;
    if (json_dumpb(msg, buf, n, JSON_COMPACT) != n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\n';
    *len = n + 1;
    return buf;
}

json_t *proto_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *msg = json_loadb(buf, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (!msg) {
        snprintf(err, errlen, "malformed JSON at byte %d: %s", jerr.position, jerr.text);
        return NULL;
    }
    if (!json_is_object(msg)) {
        snprintf(err, errlen, "a frame must be a JSON object");
        json_decref(msg);
        return NULL;
    }
    return msg;
}

int proto_valid_name(const char *name)
{
    size_t n = 0;
    if (!name)
        return 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok || n >= BX_NAME_MAX)
            return 0;
    }
    return n > 0;
}

double proto_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
