/* remote.c - the target's half of forwarding (remote.h): proxy clients.
 *
 * A request forwarded from host O for its client K arrives on
 * "<prefix>.h.<self>.req" as {from: O, client: K, identity, admin, req}.
 * The proxy for (O, K) is made on first use, as authenticated as the
 * identity O vouches for (a cluster member is trusted like a manager,
 * docs/security.md), and req goes through router_dispatch exactly as a
 * socket line would: unknown ops, bad fields, other identities' VMs, limits
 * and timeouts are all the local rules. The proxy owns the VMs it creates,
 * so they go when it goes: O says "bye" for K, or O dies (hosts.h). */
#include "manager.h"
#include "cluster.h"
#include "fwdcheck.h"
#include "hosts.h"
#include "remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_BUCKETS 256

struct remote_link {
    struct remote_link *next;
    uint64_t client;            /* the client's id on its origin */
    struct client *c;           /* the proxy */
    char origin[CLUSTER_HOST_MAX + 1];
    char out[CLUSTER_HOST_MAX + 48];    /* "<prefix>.h.<origin>.out" */
};

static struct remote_link *links[LINK_BUCKETS];
_Static_assert(FWD_IDENT_MAX == BX_IDENT_MAX && FWD_HOST_MAX == CLUSTER_HOST_MAX, "fwdcheck.h");

int fwd_start(void);
int fwdlist_start(void);

static unsigned link_hash(const char *origin, uint64_t client)
{
    unsigned h = (unsigned)(client ^ (client >> 32));
    while (*origin)
        h = h * 33 + (unsigned char)*origin++;
    return h % LINK_BUCKETS;
}

static struct remote_link **link_at(const char *origin, uint64_t client)
{
    struct remote_link **pp = &links[link_hash(origin, client)];
    while (*pp && !((*pp)->client == client && strcmp((*pp)->origin, origin) == 0))
        pp = &(*pp)->next;
    return pp;
}

static struct client *proxy_for(const char *origin, uint64_t client, const char *identity, int admin)
{
    struct remote_link **pp = link_at(origin, client), *l = *pp;
    if (l)
        return l->c->closing ? NULL : l->c;
    if (!(l = calloc(1, sizeof *l)))
        return NULL;
    snprintf(l->origin, sizeof l->origin, "%s", origin);
    l->client = client;
    if (cluster_subject(l->out, sizeof l->out, "h.%s.out", origin) < 0 ||
        !(l->c = client_new_proxy(l, identity, admin))) {
        free(l);
        return NULL;
    }
    *pp = l;
    return l->c;
}

/* client_free of a proxy: it leaves the table (its VMs went before). */
void remote_proxy_gone(struct client *c)
{
    struct remote_link *l = c->remote, **pp = link_at(l->origin, l->client);
    if (*pp == l)
        *pp = l->next;
    free(l);
    c->remote = NULL;
}

/* A frame that did not fit the cluster's max payload: an error reply
 * that does, so the request still gets its one answer, never a truncated
 * one (frames without an id have nobody waiting: dropped, logged). */
static void write_too_large(struct remote_link *l, const char *buf, size_t len, const char *why)
{
    char err[256];
    json_t *frame = json_loadb(buf, len, JSON_DECODE_ANY, NULL);
    json_t *id = json_object_get(frame, "id");
    fprintf(stderr, "bioxen-manager: cluster: frame for %s: %s\n", l->origin, why);
    json_t *env = !id ? NULL : json_pack("{s:s, s:I, s:o}", "from", cluster_self(), "client",
                                         (json_int_t)l->client, "frame",
                                         proto_error_new(id, BX_E_FRAME_TOO_LARGE,
                                                         "the reply (%zu bytes): %s", len, why));
    if (env)
        cluster_publish(l->out, NULL, env, err, sizeof err);
    json_decref(env);
    json_decref(frame);
}

/* The frame goes back as {from, client, frame}, written around the
 * frame's own bytes: they are one JSON object already (the manager's own
 * encoding, or a node's line it checked), so parsing and encoding them
 * again would only cost the hot path time. The host name is a checked
 * token (cluster__host_ok), nothing to escape. */
void remote_write(struct client *c, const char *buf, size_t len)
{
    struct remote_link *l = c->remote;
    char err[256], head[CLUSTER_HOST_MAX + 64];
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (!len || buf[0] != '{') {
        fprintf(stderr, "bioxen-manager: cluster: unencodable frame for %s dropped\n", l->origin);
        return;
    }
    int k = snprintf(head, sizeof head, "{\"from\":\"%s\",\"client\":%llu,\"frame\":",
                     cluster_self(), (unsigned long long)l->client);
    char *env = k > 0 && (size_t)k < sizeof head ? malloc((size_t)k + len + 1) : NULL;
    if (!env) {
        fprintf(stderr, "bioxen-manager: cluster: out of memory: frame for %s dropped\n", l->origin);
        return;
    }
    memcpy(env, head, (size_t)k);
    memcpy(env + k, buf, len);
    env[(size_t)k + len] = '}';
    if (cluster_publish_raw(l->out, NULL, env, (size_t)k + len + 1, err, sizeof err) < 0)
        write_too_large(l, buf, len, err);
    free(env);
}

/* No proxy to carry it out (stopping, out of memory): the origin still
 * gets the request's one reply, straight from here. */
static void refuse(const struct fwd_env *e)
{
    char subj[160], err[128];
    json_t *id = json_object_get(e->body, "id");
    if (!id || cluster_subject(subj, sizeof subj, "h.%s.out", e->from) < 0)
        return;
    json_t *m = json_pack("{s:s, s:I, s:o}", "from", cluster_self(), "client",
                          (json_int_t)e->client, "frame",
                          proto_error_new(id, BX_E_SHUTTING_DOWN, "host '%s' is shutting down",
                                          cluster_self()));
    if (m)
        cluster_publish(subj, NULL, m, err, sizeof err);
    json_decref(m);
}

/* "<prefix>.h.<self>.req". */
static void on_bye(const char *subject, const char *reply, json_t *msg, void *arg);

static void on_req(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)arg;
    struct fwd_env e;
    char err[128];
    if (json_is_true(json_object_get(msg, "bye")))     /* in order with the requests */
        return on_bye(subject, reply, msg, NULL);
    if (fwdcheck_req(msg, &e, err, sizeof err) < 0) {   /* nobody to answer */
        fprintf(stderr, "bioxen-manager: cluster: %s on %s: dropped\n", err, subject);
        return;
    }
    struct client *c = mgr->draining || mgr->shutting_down ? NULL
                     : proxy_for(e.from, e.client, e.identity, e.admin);
    if (c && !c->eof)
        client_dispatch_proxy(c, e.body);
    else
        refuse(&e);
    flush_all();
}

static void close_proxy(struct remote_link *l)
{
    if (!l->c->closing)
        client_close_soon(l->c);
}

/* {from, client, bye: true}, on "<prefix>.h.<self>.req" (see fwd.c). */
static void on_bye(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    struct fwd_env e;
    char err[128];
    struct remote_link *l = fwdcheck_bye(msg, &e, err, sizeof err) == 0
        ? *link_at(e.from, e.client) : NULL;
    if (l)
        close_proxy(l);
}

/* A dead origin says no bye: every proxy of it goes. */
static void on_host(const char *host, int up, void *arg)
{
    (void)arg;
    for (unsigned i = 0; !up && i < LINK_BUCKETS; i++)
        for (struct remote_link *l = links[i]; l; l = l->next)
            if (strcmp(l->origin, host) == 0)
                close_proxy(l);
}

/* fwd.c's probe: any answer says "here". */
static void on_ping(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)msg; (void)arg;
    char err[128];
    json_t *m = json_object();
    if (reply && m)
        cluster_publish(reply, NULL, m, err, sizeof err);
    json_decref(m);
}

int remote_start(void)
{
    char s1[160], s3[160];
    if (!cluster_enabled())
        return 0;
    cluster_on_drained(flush_all);     /* replies out before nats.c's cleanup */
    if (cluster_subject(s1, sizeof s1, "h.%s.req", cluster_self()) < 0 ||
        cluster_subject(s3, sizeof s3, "h.%s.ping", cluster_self()) < 0 ||
        cluster_subscribe(s1, NULL, on_req, NULL) < 0 ||
        cluster_subscribe(s3, NULL, on_ping, NULL) < 0 ||
        hosts_on_change(on_host, NULL) < 0)
        return -1;
    return fwd_start() < 0 || fwdlist_start() < 0 ? -1 : 0;
}
