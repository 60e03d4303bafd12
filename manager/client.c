/* client.c - one client connection: frame reading, replies (and the count
 * of replies still owed), back-pressure, half-close and deferred freeing.
 * A client is freed only from the reaper event, never inside its own
 * callbacks (client_close_soon). */
#include "manager.h"
#include "mailbox.h"
#include "ops.h"
#include "remote.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void client_maybe_finish(struct client *c);
static void client_reaper_cb(evutil_socket_t fd, short ev, void *arg);

static int slot_alloc(uint32_t *slot)
{
    if (mgr->nfree) {
        *slot = mgr->free_slots[--mgr->nfree];
        return 0;
    }
    uint32_t n = mgr->nslots ? mgr->nslots * 2 : 64;
    struct client **s = realloc(mgr->slots, n * sizeof *s);
    if (!s)
        return -1;
    mgr->slots = s;
    uint32_t *f = realloc(mgr->free_slots, n * sizeof *f);
    if (!f)
        return -1;
    mgr->free_slots = f;
    for (uint32_t i = n; i-- > mgr->nslots + 1;)
        mgr->free_slots[mgr->nfree++] = i;
    *slot = mgr->nslots;
    for (uint32_t i = mgr->nslots; i < n; i++)
        mgr->slots[i] = NULL;
    mgr->nslots = n;
    return 0;
}

void client_accept(struct manager *m, evutil_socket_t fd, int is_tcp)
{
    uint32_t slot;
    struct client *c = calloc(1, sizeof *c);
    /* a Unix client is its uid from the start; a TCP one is nobody until auth */
    if (!c || m->shutting_down || (!is_tcp && identity_peer(c, fd) < 0) ||
        slot_alloc(&slot) < 0) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        mgr->free_slots[mgr->nfree++] = slot;
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->id = ((uint64_t)++m->gen << 32) | slot;
    c->is_tcp = is_tcp;
    c->authed = !is_tcp;
    m->slots[slot] = c;
    m->nclients++;
    bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
    bufferevent_disable(c->bev, EV_WRITE);   /* on by default; see flush.c */
    bufferevent_enable(c->bev, EV_READ);
}

/* A client with no socket: the proxy of a client of another host (remote.c).
 * Authenticated as the identity the origin forwarded; what it is sent goes
 * to remote_write. NULL when out of memory or shutting down. */
struct client *client_new_proxy(struct remote_link *link, const char *identity, int admin)
{
    uint32_t slot;
    struct client *c = calloc(1, sizeof *c);
    if (!c || mgr->shutting_down || slot_alloc(&slot) < 0) {
        free(c);
        return NULL;
    }
    c->id = ((uint64_t)++mgr->gen << 32) | slot;
    c->remote = link;
    c->authed = 1;
    c->admin = admin;
    snprintf(c->identity, sizeof c->identity, "%s", identity);
    mgr->slots[slot] = c;
    mgr->nclients++;
    return c;
}

struct client *client_find(uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if (id == 0 || slot >= mgr->nslots)
        return NULL;
    struct client *c = mgr->slots[slot];
    return c && c->id == id && !c->closing ? c : NULL;
}

/* Queue a frame; flush.c writes everything queued during this callback in
 * one writev when it ends, so pipelined replies batch themselves. */
static void client_write(struct client *c, const char *buf, size_t len)
{
    if (c->remote)          /* the transport seam: a proxy has no socket */
        return remote_write(c, buf, len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, buf, len);
    flush_mark(c->bev, &c->dirty);
    /* A client that does not read must not grow our memory without bound:
     * stop reading its requests until its replies drain (le-proxy). */
    if (!c->reading_paused && evbuffer_get_length(out) > MGR_OUT_HIGH) {
        c->reading_paused = 1;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, MGR_OUT_HIGH / 2, 0);
        bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    }
}

/* A reply is the one frame that carries "id" (events, callbacks and stream
 * items carry none), and each settles one request read from this client. */
static void reply_sent(struct client *c)
{
    if (c->owed)
        c->owed--;
    client_maybe_finish(c);
}

void client_send(struct client *c, json_t *msg)
{
    size_t len;
    char scratch[4096];
    if (!c || c->closing || !msg)
        return;
    char *buf = proto_dump_into(msg, scratch, sizeof scratch, &len);
    if (buf) {
        client_write(c, buf, len);
        if (buf != scratch)
            free(buf);
    }
    if (json_object_get(msg, "id"))
        reply_sent(c);
}

/* The same bytes as below, as one line for remote_write. */
static void send_passed_remote(struct client *c, const char *id, size_t id_len,
                               const char *rest, size_t rest_len)
{
    char *b = malloc(rest_len + id_len + 8);
    if (b) {
        size_t k = 1;
        b[0] = '{';
        if (rest_len > 1) {
            memcpy(b + k, rest + 1, rest_len - 2);
            k += rest_len - 2;
            b[k++] = ',';
        }
        memcpy(b + k, "\"id\":", 5);
        memcpy(b + k + 5, id, id_len);
        k += 5 + id_len;
        memcpy(b + k, "}\n", 2);
        client_write(c, b, k + 2);
        free(b);
    }
    reply_sent(c);
}

void client_send_passed(struct client *c, const char *id, size_t id_len,
                        const char *rest, size_t rest_len)
{
    if (!c || c->closing)
        return;
    /* The client's id goes LAST: these bytes come from the node unparsed,
     * and a hostile node could add an "id" key of its own. JSON readers
     * keep the last of duplicate keys, and a client that cannot parse the
     * line still finds its id at the fixed end (docs/protocol.md). */
    if (rest_len == 0 || rest[rest_len - 1] != '}')
        rest = "}", rest_len = 1;
    if (c->remote)
        return send_passed_remote(c, id, id_len, rest, rest_len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, "{", 1);
    if (rest_len > 1) {                     /* rest is ,"k":v...} or } */
        evbuffer_add(out, rest + 1, rest_len - 2);
        evbuffer_add(out, ",", 1);
    }
    evbuffer_add(out, "\"id\":", 5);
    evbuffer_add(out, id, id_len);
    client_write(c, "}\n", 2);   /* marks the flush and checks the watermark */
    reply_sent(c);
}

void client_send_new(struct client *c, json_t *msg)
{
    client_send(c, msg);
    json_decref(msg);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    if (c->reading_paused && !mgr->shutting_down) {
        c->reading_paused = 0;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_setcb(bev, client_read_cb, NULL, client_event_cb, c);
        if (!c->eof)                /* after EOF only what was read is left */
            bufferevent_enable(bev, EV_READ);
        client_read_cb(bev, c);     /* frames may already be waiting */
    }
}

/* The OPF_NOREPLY ops (cb_result, stream_ack) from an authenticated client
 * get no reply (router.c drops a bad one unanswered); every other line,
 * unparsable ones included, is owed exactly one. */
static int owes_reply(const struct client *c, const struct op_def *op)
{
    return !(c->authed && op && (op->flags & OPF_NOREPLY));
}

static void client_handle_line(struct client *c, const char *line, size_t len)
{
    char err[256];
    json_t *req = proto_parse(line, len, err, sizeof err);
    c->owed++;              /* before dispatch: the reply may go out inside it */
    if (!req) {
        client_send_new(c, proto_error_new(NULL, BX_E_BAD_REQUEST, "%s", err));
        return;
    }
    /* looked up once here: the router takes it rather than scan again */
    const struct op_def *op = op_lookup(json_string_value(json_object_get(req, "op")));
    if (!owes_reply(c, op))
        c->owed--;
    router_dispatch_op(c, req, op);
    json_decref(req);
}

/* A proxy's request (remote.c): owed a reply as a socket line is, so a
 * draining manager waits for it like for a half-closed client's. */
void client_dispatch_proxy(struct client *c, json_t *req)
{
    const struct op_def *op = op_lookup(json_string_value(json_object_get(req, "op")));
    c->owed++;
    if (!owes_reply(c, op))
        c->owed--;
    router_dispatch_op(c, req, op);
    client_maybe_finish(c);
}

/* One call handles every complete frame in the input. The length limit is
 * checked before a whole line is in, so a peer cannot make us buffer more. */
static void client_read_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!c->closing && !c->reading_paused) {
        const char *line;
        size_t len;
        int rc = linebuf_next(in, &c->scanned, mgr->max_frame, &line, &len);
        if (rc < 0) {
            client_send_new(c, proto_error_new(NULL, BX_E_FRAME_TOO_LARGE,
                            "frame longer than %zu bytes", mgr->max_frame));
            client_close_soon(c);
            break;
        }
        if (rc == 0)
            break;
        if (len > 0)
            client_handle_line(c, line, len);
        evbuffer_drain(in, len + 1);
    }
    flush_all();
    client_maybe_finish(c);
}

/* A Unix peer that closed both directions shows POLLHUP; one that only
 * shut its sending side (socat, nc, `printf | tool`) does not. A TCP peer's
 * FIN looks like a half-close until a write fails, which is then an error. */
static int peer_gone(struct client *c)
{
    struct pollfd p = {.fd = bufferevent_getfd(c->bev), .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* End of input means "no more requests", not "gone": what was read is
 * carried out and answered, then the connection closes (client_maybe_finish).
 * A last line without its LF is still a request. */
static void client_half_close(struct client *c)
{
    if (c->eof || c->closing)
        return;
    c->eof = 1;
    bufferevent_disable(c->bev, EV_READ);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);
    if (n > 0 && evbuffer_pullup(in, -1)[n - 1] != '\n') {
        evbuffer_unfreeze(in, 0);   /* a socket bufferevent freezes its input's end */
        evbuffer_add(in, "\n", 1);
        evbuffer_freeze(in, 0);
    }
    client_read_cb(c->bev, c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct client *c = arg;
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !peer_gone(c))
        return client_half_close(c);
    /* An error (or a peer gone both ways) means nobody will read what we
     * owe. A socket bufferevent freezes its output's start, where a plain
     * drain fails silently: the reaper then waited on bytes no write could
     * ever take (a client leaving mid-map lingered ~30 s with its pool). */
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_unfreeze(out, 1);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_freeze(out, 1);
    client_close_soon(c);
}

/* The socket closes first, so a peer waiting for EOF (socat) is not kept
 * waiting while the connection's VMs are torn down. */
static void client_free(struct client *c)
{
    c->closing = 1;         /* replies to the VMs torn down below are dropped */
    events_metrics_listen(c, 0);
    if (c->bev) {
        flush_forget(c->bev, &c->dirty);
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    remote_client_gone(c);
    pool_client_gone(c);
    vm_disown(c);
    mailbox_client_gone(c);
    events_unsubscribe(c);
    mgr->slots[(uint32_t)c->id] = NULL;
    mgr->free_slots[mgr->nfree++] = (uint32_t)c->id;
    mgr->nclients--;
    free(c);
}

static void close_list_add(struct client *c)
{
    if (c->listed)
        return;
    c->listed = 1;
    c->close_next = mgr->close_list;
    mgr->close_list = c;
    if (!mgr->reaper)
        mgr->reaper = evtimer_new(mgr->base, client_reaper_cb, NULL);
    event_active(mgr->reaper, EV_TIMEOUT, 0);
}

/* A half-closed client is done once every request it sent has its reply;
 * the reaper then frees it after its output has flushed. Never frees here:
 * this runs inside reply paths (a node's frame, a pool run). */
static void client_maybe_finish(struct client *c)
{
    if (c->eof && !c->closing && c->owed == 0 && !c->reading_paused)
        close_list_add(c);
}

/* Frees closing clients whose output has flushed (or whose peer is gone). */
static void client_reaper_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    struct client **pp = &mgr->close_list;
    while (*pp) {
        struct client *c = *pp;
        if (!c->bev || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            *pp = c->close_next;
            client_free(c);
        } else {
            pp = &c->close_next;
        }
    }
    if (mgr->close_list) {      /* some still flushing: look again soon */
        struct timeval tv = {0, 20000};
        event_add(mgr->reaper, &tv);
    }
}

/* Marks c closing: no more reads, its VMs are torn down and it is freed once
 * its last frames are written (a FRAME_TOO_LARGE error must reach the peer). */
void client_close_soon(struct client *c)
{
    if (c->closing)
        return;
    c->closing = 1;         /* first: replies to the VMs torn down are dropped */
    vm_disown(c);
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
    close_list_add(c);
}

void client_stop_all(struct manager *m)
{
    for (uint32_t i = 0; i < m->nslots; i++)
        if (m->slots[i] && m->slots[i]->bev)
            bufferevent_disable(m->slots[i]->bev, EV_READ);
}

void client_drain_all(struct manager *m)
{
    for (uint32_t i = 0; i < m->nslots; i++)
        if (m->slots[i] && m->slots[i]->bev)
            client_half_close(m->slots[i]);
        else if (m->slots[i]) {     /* a proxy: done once its requests are answered */
            m->slots[i]->eof = 1;
            client_maybe_finish(m->slots[i]);
        }
}

size_t client_count(struct manager *m)
{
    return m->nclients;
}

int client_all_flushed(struct manager *m)
{
    for (uint32_t i = 0; i < m->nslots; i++)
        if (m->slots[i] && m->slots[i]->bev && evbuffer_get_length(bufferevent_get_output(m->slots[i]->bev)))
            return 0;
    return 1;
}

void client_free_all(struct manager *m)
{
    for (uint32_t i = 0; i < m->nslots; i++)
        if (m->slots[i])
            client_free(m->slots[i]);
    m->close_list = NULL;
    if (m->reaper)
        event_free(m->reaper);
    m->reaper = NULL;
    free(m->slots);
    free(m->free_slots);
}
