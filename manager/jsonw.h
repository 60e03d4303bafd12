/* jsonw.h - hand-written JSON for the hot frames (jsonw.c). */
#ifndef BX_JSONW_H
#define BX_JSONW_H

#include <event2/buffer.h>
#include <jansson.h>

/* v as compact JSON text appended to out; 0, or -1 (out of memory). */
int jsonw_value(struct evbuffer *out, const json_t *v);
/* {"mail_items":K,"items":[[from,value],...]} and its newline; items as
 * mbqueue.c take() builds them. 0, or -1 (the frame may be partial: the
 * node then breaks the link, as for any failed write). */
int jsonw_mail_items(struct evbuffer *out, const json_t *k, const json_t *items);

#endif
