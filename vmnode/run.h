/* run.h - the frame around one request that touches the Lua state: its
 * limits armed and disarmed, its print output captured, its stack restored,
 * and its result or failure built into the reply (with the header reply.c
 * puts in front of exec and call replies). */
#ifndef BX_RUN_H
#define BX_RUN_H

#include "node.h"

typedef struct bx_run {
    bx_node *n;         /* borrowed */
    json_t *id;         /* the request's id, borrowed */
    int base;           /* stack top before the request */
    double t0;          /* monotonic ms at the start */
    int ctx_ref;        /* registry ref of the saved context names (context.c) */
} bx_run;

/* Starts the request: the timeout and instruction_limit of req (NULL: the
 * VM's own) armed, output and memory flags reset. 0, or -1 with a
 * BAD_REQUEST reply in *reply (nothing armed). */
int run_begin(bx_run *r, bx_node *n, json_t *id, json_t *req, json_t **reply);
/* Ends it: limits disarmed, the stack back at base, the last cb_result
 * freed. Every run_begin that returned 0 has one. */
void run_end(bx_run *r);
/* The result reply of the values from stack slot first to the top, with the
 * output; a value that does not convert makes it an error reply. */
json_t *run_result_new(bx_run *r, int first);
/* The error reply of a failed load (loading) or pcall that returned status,
 * the error object on top (luaerr.c decides what it means), with the
 * output; counted as an error. */
json_t *run_error_new(bx_run *r, int status, int loading);
/* context.c: sets the object ctx's fields as globals for this run only
 * (run_end puts back what those names held). BX_OK, or
 * BX_E_CONVERSION_ERROR / BX_E_MEMORY_LIMIT with a reason in err. */
enum bx_err run_context(bx_run *r, json_t *ctx, char *err, size_t errlen);
void run_context_restore(bx_run *r);

#endif
