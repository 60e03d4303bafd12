/* reach.h - the loopback addresses the VMs of this manager listen on, as
 * their nodes report them; a networked VM may connect to these besides its
 * grants (reach.c; docs/security.md, "Network reach"). */
#ifndef BX_REACH_H
#define BX_REACH_H

#include "manager.h"

/* {"listen":A}, {"unlisten":A} and {"ask":K,"reach":A} from node n: 1 if
 * it was one of these (handled: an ask is answered on n's channel, a bad
 * frame breaks n), else 0. */
int reach_node_frame(struct node *n, json_t *msg);
/* n can say no more (its channel closes): its addresses are gone. */
void reach_node_gone(struct node *n);

#endif
