/* server.c - the listeners: the Unix socket (always; owner-only unless
 * --socket-mode/--socket-group open it) and TCP (only with a token file).
 * Accepted connections go to client_accept(). Owns the TCP address
 * actually bound, which "hello" reports (--tcp HOST:0 picks a port). */
#include "manager.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char tcp_bound[NI_MAXHOST + 24];  /* "" until TCP listens */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    (void)sa; (void)salen;
    struct manager *m = arg;
    client_accept(m, fd, l == m->tcp_l);
}

/* --socket-group NAME or GID: the group the socket is opened to. */
static int socket_gid(const char *group, gid_t *gid, char *err, size_t errlen)
{
    char *end;
    struct group *g = getgrnam(group);
    unsigned long v = strtoul(group, &end, 10);
    if (g)
        *gid = g->gr_gid;
    else if (*group && !*end && v < 0xFFFFFFFFUL)
        *gid = (gid_t)v;
    else
        return snprintf(err, errlen, "--socket-group %s: no such group", group), -1;
    return 0;
}

/* The socket is bound owner-only (umask 077), then opened as far as the
 * deployment asked: --socket-mode, and --socket-group (0660 unless a mode
 * is given). Each uid that connects is its own identity (identity.c). */
static int socket_access(struct manager *m, gid_t gid, char *err, size_t errlen)
{
    unsigned mode = m->socket_mode;
    if (!mode && m->socket_group)
        mode = 0660;
    if (gid != (gid_t)-1 && chown(m->socket_path, (uid_t)-1, gid) < 0)
        return snprintf(err, errlen, "--socket-group %s: %s", m->socket_group, strerror(errno)), -1;
    if (mode && chmod(m->socket_path, (mode_t)mode) < 0)
        return snprintf(err, errlen, "--socket-mode %04o: %s", mode, strerror(errno)), -1;
    return 0;
}

static int listen_unix(struct manager *m, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    gid_t gid = (gid_t)-1;
    if (strlen(m->socket_path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "socket path too long: %s", m->socket_path);
        return -1;
    }
    if (m->socket_group && socket_gid(m->socket_group, &gid, err, errlen) < 0)
        return -1;      /* before anything is bound or removed */
    strcpy(sun.sun_path, m->socket_path);
    /* A stale socket from a dead manager would make bind fail; only ever
     * remove a socket, never a file someone else put there. */
    if (stat(m->socket_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(m->socket_path);
    mode_t old = umask(0077);   /* owner-only: the socket runs arbitrary code */
    m->unix_l = evconnlistener_new_bind(m->base, accept_cb, m,
                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128,
                    (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (!m->unix_l) {
        snprintf(err, errlen, "listen on %s: %s", m->socket_path, strerror(errno));
        return -1;
    }
    return socket_access(m, gid, err, errlen);
}

/* The numeric HOST:PORT the kernel gave us, in the form --tcp takes, so a
 * client can connect to it as printed (IPv6 hosts are not bracketed). */
static int tcp_record_bound(struct manager *m, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[16];
    int rc = -1;
    if (getsockname(evconnlistener_get_fd(m->tcp_l), (struct sockaddr *)&ss, &len) == 0)
        rc = getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                         NI_NUMERICHOST | NI_NUMERICSERV);
    if (rc != 0) {
        snprintf(err, errlen, "--tcp %s: cannot read the bound address", m->tcp_addr);
        return -1;
    }
    snprintf(tcp_bound, sizeof tcp_bound, "%s:%s", host, port);
    return 0;
}

const char *server_tcp_bound(void)
{
    return tcp_bound[0] ? tcp_bound : NULL;
}

static int listen_tcp(struct manager *m, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(m->tcp_addr, ':');
    if (!colon || (size_t)(colon - m->tcp_addr) >= sizeof host) {
        snprintf(err, errlen, "--tcp wants HOST:PORT, got %s", m->tcp_addr);
        return -1;
    }
    memcpy(host, m->tcp_addr, colon - m->tcp_addr);
    host[colon - m->tcp_addr] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "--tcp %s: %s", m->tcp_addr, gai_strerror(rc));
        return -1;
    }
    m->tcp_l = evconnlistener_new_bind(m->base, accept_cb, m,
                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
                    128, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!m->tcp_l) {
        snprintf(err, errlen, "listen on %s: %s", m->tcp_addr, strerror(errno));
        return -1;
    }
    return tcp_record_bound(m, err, errlen);
}

/* On failure nothing is left listening, and no socket file is left behind
 * (a client would find a path nobody answers on). */
int server_listen(struct manager *m, char *err, size_t errlen)
{
    if (listen_unix(m, err, errlen) < 0 || (m->tcp_addr && listen_tcp(m, err, errlen) < 0)) {
        server_close(m);
        return -1;
    }
    return 0;
}

/* Stops accepting; the socket file goes so nobody connects to a dead path. */
void server_close(struct manager *m)
{
    if (m->unix_l) {
        evconnlistener_free(m->unix_l);
        unlink(m->socket_path);
    }
    if (m->tcp_l)
        evconnlistener_free(m->tcp_l);
    m->unix_l = m->tcp_l = NULL;
    tcp_bound[0] = 0;
}
