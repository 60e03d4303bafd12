/* nodewire.h - the hot path of the manager <-> node wire (nodewire.c): a VM
 * op written straight into a node's output, and the fixed-shape front of a
 * node's reply read without a JSON parse. No event loop, no manager state. */
#ifndef BX_NODEWIRE_H
#define BX_NODEWIRE_H

#include <event2/buffer.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The VM's defaults for an exec/call that does not override them. */
struct nodewire_run {
    const char *timeout_text;       /* the VM's timeout as JSON text */
    uint64_t instruction_limit;
};

/* Appends {"id":id,"op":op[,"timeout":..,"instruction_limit":..],<fields
 * the node reads>}\n to out; run is NULL for ops that run no code. op must
 * be a validated VM op name. 0, or -1 when out of memory. */
int nodewire_request(struct evbuffer *out, uint64_t id, const char *op, json_t *req,
                     const struct nodewire_run *run);

/* The front of a node reply: {"id":N[,"hdr":["CODE",us,mem]] then rest. */
struct nodewire_head {
    uint64_t id;
    int has_hdr;
    char code[24];      /* "" for a result */
    uint64_t us, mem;   /* duration in µs and heap bytes (results) */
    size_t rest;        /* offset of what follows: ',' or '}' */
};

/* 0 with h filled, or -1 when the frame does not start that way (an
 * event, a callback, an init reply: the caller parses it fully). */
int nodewire_head(const char *line, size_t len, struct nodewire_head *h);

/* The client's id as JSON text into buf (cap bytes, not NUL-terminated);
 * returns the length it needs, as json_dumpb does (0 for no id). */
size_t nodewire_id_text(json_t *id, char *buf, size_t cap);

#endif
