/* promhttp.h - the Prometheus endpoint (promhttp.c): GET /metrics in text
 * exposition format 0.0.4, served by libevent's evhttp on the manager's
 * own loop, for --metrics-port. */
#ifndef BX_PROMHTTP_H
#define BX_PROMHTTP_H

#include <event2/event.h>
#include <stddef.h>

/* Listens on host:port (port 0: any free port). 0, or -1 with err. */
int promhttp_start(struct event_base *base, const char *host, int port,
                   char *err, size_t errlen);
/* The bound port, or 0 when not serving. */
int promhttp_port(void);
/* Closes the listener and every connection. Idempotent. */
void promhttp_stop(void);

#endif
