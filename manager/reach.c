/* reach.c - the set of loopback addresses the VMs of this manager listen
 * on: each node reports its binds ({"listen"}) and closes ({"unlisten"}),
 * and asks ({"ask":K,"reach":A}) before a VM connects or sends to a
 * loopback address its policy does not grant; the answer goes down the
 * same channel, after every frame the manager sent that node before. A
 * node's addresses go when its channel closes (node.c: death, restart,
 * destroy). What a node says is checked by reachcheck.c; the manager
 * cannot verify a bind, so it takes loopback only, and a bounded number. */
#include "reach.h"
#include "reachcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reach_entry {
    const struct node *node;    /* borrowed: identity only, dropped with it */
    struct reachcheck_addr a;
};

static struct {
    struct reach_entry *e;      /* owned */
    size_t n, cap;
} reach;

static int same(const struct reachcheck_addr *x, const struct reachcheck_addr *y)
{
    return x->port == y->port && strcmp(x->proto, y->proto) == 0 && strcmp(x->addr, y->addr) == 0;
}

static void entry_add(struct node *n, const struct reachcheck_addr *a)
{
    size_t mine = 0;
    for (size_t i = 0; i < reach.n; i++)
        mine += reach.e[i].node == n;
    if (mine >= REACHCHECK_PER_NODE) {
        fprintf(stderr, "bioxen-manager: node %d: over %d listening addresses; %s:%d ignored\n",
                (int)n->pid, REACHCHECK_PER_NODE, a->addr, a->port);
        return;
    }
    if (reach.n == reach.cap) {
        size_t cap = reach.cap ? reach.cap * 2 : 16;
        struct reach_entry *e = realloc(reach.e, cap * sizeof *e);
        if (!e)
            return;     /* out of memory: the address stays unreachable */
        reach.e = e;
        reach.cap = cap;
    }
    reach.e[reach.n++] = (struct reach_entry){ n, *a };
}

static void entry_remove(struct node *n, const struct reachcheck_addr *a)
{
    for (size_t i = 0; i < reach.n; i++) {
        if (reach.e[i].node == n && same(&reach.e[i].a, a)) {
            reach.e[i] = reach.e[--reach.n];
            return;
        }
    }
}

static int listened(const struct reachcheck_addr *a)
{
    for (size_t i = 0; i < reach.n; i++)
        if (same(&reach.e[i].a, a))
            return 1;
    return 0;
}

void reach_node_gone(struct node *n)
{
    for (size_t i = 0; i < reach.n;) {
        if (reach.e[i].node == n)
            reach.e[i] = reach.e[--reach.n];
        else
            i++;
    }
}

/* {"answer":K,"result":bool}; a malformed ask is answered "no". */
static void answer(struct node *n, json_t *k, json_t *what)
{
    char err[128];
    struct reachcheck_addr a;
    int ok = reachcheck_addr(what, &a, err, sizeof err) == 0 && listened(&a);
    json_t *r = json_pack("{s:O, s:b}", "answer", k, "result", ok);
    if (r)
        vmreq_send_raw(n->vm, r);
    json_decref(r);
}

int reach_node_frame(struct node *n, json_t *msg)
{
    char err[128] = "a listen or unlisten frame has that one field";
    struct reachcheck_addr a;
    json_t *k = json_object_get(msg, "ask"), *what = json_object_get(msg, "reach");
    if (k && what) {
        if (json_is_integer(k))
            answer(n, k, what);
        return 1;   /* no integer: nothing to answer with; the node's wait times out */
    }
    json_t *on = json_object_get(msg, "listen"), *off = json_object_get(msg, "unlisten");
    if (!on && !off)
        return 0;
    if (json_object_size(msg) != 1 || reachcheck_addr(on ? on : off, &a, err, sizeof err) < 0) {
        fprintf(stderr, "bioxen-manager: node %d: bad %s frame: %s\n", (int)n->pid,
                on ? "listen" : "unlisten", err);
        node_broken(n);
        return 1;
    }
    if (on)
        entry_add(n, &a);
    else
        entry_remove(n, &a);
    return 1;
}
