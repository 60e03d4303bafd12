/* proto.h - the JSON control protocol shared by manager and node.
 *
 * Owns the error-code table (the one place a code's wire name lives), and
 * builds/parses frames with Jansson. See docs/protocol.md. */
#ifndef BX_PROTO_H
#define BX_PROTO_H

#include <jansson.h>
#include <stddef.h>

#define BX_PROTO_VERSION 1
#define BX_NAME_MAX 64
/* longest exec/run "filename" (the chunk name of error messages) */
#define BX_FILENAME_MAX 255
#define BX_VALUE_DEPTH_MAX 100

enum bx_err {
    BX_OK = 0,
    BX_E_BAD_REQUEST,
    BX_E_UNKNOWN_OP,
    BX_E_FRAME_TOO_LARGE,
    BX_E_AUTH_REQUIRED,
    BX_E_LUA_ERROR,
    BX_E_SYNTAX_ERROR,
    BX_E_TIMEOUT,
    BX_E_MEMORY_LIMIT,
    BX_E_INSTRUCTION_LIMIT,
    BX_E_CPU_LIMIT,
    BX_E_VM_CRASHED,
    BX_E_VM_NOT_FOUND,
    BX_E_VM_EXISTS,
    BX_E_POLICY_VIOLATION,
    BX_E_CONVERSION_ERROR,
    BX_E_SHUTTING_DOWN,
    BX_E_INTERNAL,
    BX_E_ISOLATION,     /* the isolation asked for cannot be had here */
    BX_E_FORBIDDEN,     /* an admin act (shutdown, another identity's VM) */
    BX_E_CLUSTER_UNAVAILABLE,   /* a cluster op while NATS (or JetStream) is away */
    BX_E__COUNT
};

/* "MEMORY_LIMIT" for BX_E_MEMORY_LIMIT; "OK" for BX_OK. */
const char *bx_err_code(enum bx_err e);
/* Inverse of bx_err_code; BX_E_INTERNAL for an unknown string. */
enum bx_err bx_err_from_code(const char *code);

/* {"id": id, "error": {"code": ..., "message": ...}}. id is borrowed and may
 * be NULL (sent as null). Returns a new reference, never NULL unless OOM. */
json_t *proto_error_new(json_t *id, enum bx_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"id": id, "result": result}; result is stolen (NULL means null). */
json_t *proto_reply_new(json_t *id, json_t *result);
/* {"event": type, "vm": vm, "ts": now, "detail": detail}; detail stolen,
 * vm may be NULL (omitted). */
json_t *proto_event_new(const char *type, const char *vm, json_t *detail);

/* Serialises msg compactly with a trailing '\n'. Returns a malloc'd buffer
 * the caller frees, and its length in *len; NULL on failure. */
char *proto_dump(const json_t *msg, size_t *len);
/* As proto_dump, but into scratch[cap] when the frame fits: returns scratch
 * then, else a malloc'd buffer (free it when it is not scratch), or NULL. */
char *proto_dump_into(const json_t *msg, char *scratch, size_t cap, size_t *len);

/* Parses one frame. Returns a new object, or NULL with a short reason in
 * err (never crashes on any input). Non-object frames are refused. */
json_t *proto_parse(const char *buf, size_t len, char *err, size_t errlen);

/* True when name matches ^[A-Za-z0-9_.:-]{1,64}$. */
int proto_valid_name(const char *name);

/* Current wall time in seconds (for event "ts"). */
double proto_now(void);

#endif
