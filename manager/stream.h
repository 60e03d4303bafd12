/* stream.h - the manager's part of streamed exec (docs/protocol.md
 * "Streaming"): stream items from a node go to the client that made the
 * request, stream_acks from that client go to the node. */
#ifndef BX_MGR_STREAM_H
#define BX_MGR_STREAM_H

#include "manager.h"

/* A node frame carrying "stream": forwarded to the requester, or dropped
 * when its request is gone. 1 if msg was one, else 0. */
int stream_node_frame(struct vm *vm, json_t *msg);
/* {"op":"stream_ack",...} from a client: passed to the node if c made the
 * request, else dropped (no reply either way). */
void stream_client_ack(struct client *c, json_t *req);

#endif
