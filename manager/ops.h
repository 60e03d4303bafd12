/* ops.h - the client op table (ops.def): each op's name, pure check and
 * flags, the arguments a check parses for its handler, and the context a
 * handler gets. The table is pure (ops.c, linked by the fuzzers); the
 * handlers are only named here and linked by the manager. */
#ifndef BX_OPS_H
#define BX_OPS_H

#include <jansson.h>
#include <stddef.h>

#include "proto.h"
#include "validate.h"

struct client;
struct vm;

#define OPF_PREAUTH 0x1u    /* allowed before auth (TCP clients) */
#define OPF_VM      0x2u    /* addresses a VM by its "vm" field: the router resolves it */
#define OPF_RUNS    0x4u    /* runs Lua code (exec, call, run) */
#define OPF_NOREPLY 0x8u    /* carries no id and gets no reply (cb_result, stream_ack) */
#define OPF_ADMIN   0x10u   /* admins only (shutdown); others get FORBIDDEN */

/* What a pure check parsed, for the handler. Zeroed before the check;
 * op_args_clear releases it after the handler (a handler that keeps a
 * reference takes it and sets the field to NULL). */
struct op_args {
    json_t *init;           /* create: the init frame (owned) */
    json_t *policy;         /* set_policy: the normalised policy (owned) */
    struct pool_cfg pool;   /* pool_config: pool.init owned */
    size_t count;           /* history: entries; mailbox_open: size (0 = default); *_recv: max */
    double timeout;         /* mail_send, mail_recv, outbox_recv: seconds, < 0 = none */
};
void op_args_clear(struct op_args *a);

/* One entry per op. What a later rule needs per op is one more member here
 * and one more column in ops.def. */
struct op_def {
    const char *name;
    enum bx_err (*check)(json_t *req, struct op_args *a, char *err, size_t n);
    unsigned flags;         /* OPF_* */
    const char *fields;     /* the fields it accepts besides id and op, space separated */
};

/* One request being carried out (router.c builds it). Everything is
 * borrowed for the handler's call. */
struct op_ctx {
    struct client *c;
    json_t *id;             /* the request's id (NULL for OPF_NOREPLY ops) */
    json_t *req;
    const struct op_def *op;
    struct vm *vm;          /* OPF_VM ops: the VM the router resolved */
    struct op_args a;
};

enum op_index {
#define OP(NAME, CHECK, HANDLER, FLAGS, FIELDS) OP_##NAME,
#include "ops.def"
#undef OP
    OP_COUNT
};

extern const struct op_def op_table[OP_COUNT];

/* The op named name (NULL-safe), or NULL when there is none. */
const struct op_def *op_lookup(const char *name);

/* BX_OK when every field of req is "id", "op" or one of d's fields; else
 * BAD_REQUEST with err naming the first unknown field. Runs before the op's
 * own check, so nothing is ever silently ignored. */
enum bx_err op_check_fields(const struct op_def *d, json_t *req, char *err, size_t n);

/* The checks and handlers the table names (a name shared by several ops
 * is declared once per op; C allows the repeats). */
#define OP(NAME, CHECK, HANDLER, FLAGS, FIELDS) \
    enum bx_err CHECK(json_t *req, struct op_args *a, char *err, size_t n); \
    void HANDLER(struct op_ctx *x);
#include "ops.def"
#undef OP

#endif
