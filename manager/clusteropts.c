/* clusteropts.c - the command line's cluster flags checked and turned into
 * natsOptions (servers, credentials, TLS, reconnects, the loop, the
 * connection callbacks), on the loop thread at start. */
#include "clusterint.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

#define RECONNECT_WAIT_MS 250           /* a restarted nats-server is back quickly */
#define CONNECT_TIMEOUT_MS 1000         /* per attempt; a LAN answers in far less */
#define PING_MS 2000                    /* with 2 pings out: a dead link seen in ~4-6 s, */
#define PINGS_OUT 2                     /* not nats.c's default of 4 minutes */

static void on_reconnected(natsConnection *nc, void *c) { (void)nc; (void)c; cluster__post_state(1, "reconnected"); }
static void on_disconnected(natsConnection *nc, void *c) { (void)nc; (void)c; cluster__post_state(0, "disconnected from NATS"); }
static void on_closed(natsConnection *nc, void *c) { (void)nc; (void)c; cluster__post_state(0, "NATS connection closed"); }

/* Asynchronous errors (a slow consumer, a permission violation) do not end
 * the connection: a log line, not a state change. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *c)
{
    (void)nc; (void)sub; (void)c;
    cluster__post_state(-1, natsStatus_GetText(err));   /* a BROKER_ERROR, on the loop */
}

/* Reconnect for ever, quickly; no flusher thread (SendAsap: a publish is
 * written at once, from the loop). An asynchronous subscription keeps its
 * own delivery thread: 3.4.1's shared pool (UseGlobalMessageDelivery)
 * leaks its close message when the library's garbage collector stops
 * first (seen under LeakSanitizer), and they are few. */
int cluster__options(natsOptions **out, struct event_base *base, const struct cluster_opts *o,
                     char *err, size_t n)
{
    char name[CLUSTER_HOST_MAX + 16];
    snprintf(name, sizeof name, "bioxen-%s", o->host);
    if (natsOptions_Create(out) != NATS_OK) {
        snprintf(err, n, "cluster: %s", nats_GetLastError(NULL));
        return -1;
    }
    if (cluster__servers(*out, o->urls, err, n) < 0 || cluster__auth(*out, o, err, n) < 0)
        return -1;
    natsStatus s = natsOptions_SetName(*out, name);
    if (s == NATS_OK) s = cluster__set_loop(*out, base);
    if (s == NATS_OK) s = natsOptions_SetSendAsap(*out, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(*out, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(*out, RECONNECT_WAIT_MS);
    if (s == NATS_OK) s = natsOptions_SetTimeout(*out, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(*out, PING_MS);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(*out, PINGS_OUT);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(*out, on_disconnected, NULL);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(*out, on_reconnected, NULL);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(*out, on_closed, NULL);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(*out, on_error, NULL);
    if (s != NATS_OK) {
        snprintf(err, n, "cluster: %s", natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

/* "nats://[user[:pass]@]host[:port]" or tls://: checked here, because
 * nats.c only parses them on the worker, where a typo would become an
 * endless reconnect instead of an error at the command line. */
static int url_ok(const char *u, size_t len)
{
    const char *end = u + len, *p;
    if (len > 7 && !strncmp(u, "nats://", 7))
        p = u + 7;
    else if (len > 6 && !strncmp(u, "tls://", 6))
        p = u + 6;
    else
        return 0;
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    const char *colon = p, *host = p;
    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (colon == host || *colon != ':')
        colon = end;        /* no port: nats.c's default 4222 */
    if (colon == host)
        return 0;
    for (const char *q = host; q < colon; q++)
        if (!isalnum((unsigned char)*q) && !strchr(".-_[]:", *q))
            return 0;
    if (colon < end) {
        long port = 0;
        if (colon + 1 == end || end - colon > 6)
            return 0;
        for (const char *q = colon + 1; q < end; q++) {
            if (!isdigit((unsigned char)*q))
                return 0;
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return 0;
    }
    return 1;
}

/* Splits --cluster on commas into opts (nats.c copies the strings). */
int cluster__servers(natsOptions *opts, const char *urls, char *err, size_t n)
{
    const char *list[16];
    char *copy = strdup(urls), *save = NULL;
    int k = 0, ok = copy != NULL;
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && ok; t = strtok_r(NULL, ",", &save)) {
        if (k == 16 || !url_ok(t, strlen(t))) {
            snprintf(err, n, k == 16 ? "--cluster: at most 16 URLs" :
                     "--cluster: '%s' is not a nats://HOST[:PORT] or tls://HOST[:PORT] URL", t);
            ok = 0;
        } else
            list[k++] = t;
    }
    if (ok && k == 0) {
        snprintf(err, n, "--cluster: no URL given");
        ok = 0;
    }
    if (ok && natsOptions_SetServers(opts, list, k) != NATS_OK) {
        snprintf(err, n, "--cluster: %s", nats_GetLastError(NULL));
        ok = 0;
    }
    free(copy);
    return ok ? 0 : -1;
}

static int read_secret(const char *file, char *buf, size_t n)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    size_t k = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[k] = 0;
    while (k && isspace((unsigned char)buf[k - 1]))
        buf[--k] = 0;
    return k ? 0 : -1;
}

/* The public key line ("U" + 55 base32 characters) of an nkey file:
 * nats.c signs the server's nonce with the file's seed ("SU...") but must
 * be told the public key, and `nk -gen user -pubout` writes both. */
static int nkey_public(const char *file, char *pub, size_t n)
{
    char line[256];
    int found = 0;
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    while (!found && fgets(line, sizeof line, f)) {
        char *p = line, *e;
        while (isspace((unsigned char)*p))
            p++;
        for (e = p; isalnum((unsigned char)*e); e++)
            ;
        if (p[0] == 'U' && e - p == 56 && (size_t)(e - p) < n) {
            memcpy(pub, p, 56);
            pub[56] = 0;
            found = 1;
        }
    }
    explicit_bzero(line, sizeof line);      /* a seed line may have been read */
    fclose(f);
    return found ? 0 : -1;
}

static int auth_nkey(natsOptions *opts, const struct cluster_opts *o, char *err, size_t n)
{
    char pub[64];
    if (o->creds) {
        snprintf(err, n, "--cluster-nkey and --cluster-creds: one or the other");
        return -1;
    }
    if (access(o->nkey_file, R_OK) < 0) {
        snprintf(err, n, "--cluster-nkey %s: %s", o->nkey_file, strerror(errno));
        return -1;
    }
    if (nkey_public(o->nkey_file, pub, sizeof pub) < 0) {
        snprintf(err, n, "--cluster-nkey %s: no public key in it (a line of 56 characters "
                 "starting with U, as `nk -gen user -pubout` writes after the seed)", o->nkey_file);
        return -1;
    }
    if (natsOptions_SetNKeyFromSeed(opts, pub, o->nkey_file) != NATS_OK) {
        snprintf(err, n, "--cluster-nkey %s: %s", o->nkey_file, nats_GetLastError(NULL));
        return -1;
    }
    return 0;
}

/* Credentials and TLS, each only when its flag was given. */
int cluster__auth(natsOptions *opts, const struct cluster_opts *o, char *err, size_t n)
{
    char tok[4096];
    if (o->nkey_file && auth_nkey(opts, o, err, n) < 0)
        return -1;
    if (o->token_file && (read_secret(o->token_file, tok, sizeof tok) < 0 ||
                          natsOptions_SetToken(opts, tok) != NATS_OK)) {
        snprintf(err, n, "--cluster-token-file: cannot read a token from %s", o->token_file);
        return -1;
    }
    /* nats.c reads the .creds file only when it connects: check it now */
    if (o->creds && access(o->creds, R_OK) < 0) {
        snprintf(err, n, "--cluster-creds %s: %s", o->creds, strerror(errno));
        return -1;
    }
    if (o->creds && natsOptions_SetUserCredentialsFromFiles(opts, o->creds, NULL) != NATS_OK) {
        snprintf(err, n, "--cluster-creds %s: %s", o->creds, nats_GetLastError(NULL));
        return -1;
    }
    if (o->ca_file && (natsOptions_SetSecure(opts, true) != NATS_OK ||
                       natsOptions_LoadCATrustedCertificates(opts, o->ca_file) != NATS_OK)) {
        snprintf(err, n, "--cluster-ca %s: %s", o->ca_file, nats_GetLastError(NULL));
        return -1;
    }
    if (!o->cert_file != !o->key_file) {
        snprintf(err, n, "--cluster-cert and --cluster-key go together");
        return -1;
    }
    if (o->cert_file && (natsOptions_SetSecure(opts, true) != NATS_OK ||
                         natsOptions_LoadCertificatesChain(opts, o->cert_file, o->key_file) != NATS_OK)) {
        snprintf(err, n, "--cluster-cert %s: %s", o->cert_file, nats_GetLastError(NULL));
        return -1;
    }
    return 0;
}

/* A host name is a subject token: a VM-name-like word without dots. */
int cluster__host_ok(const char *h)
{
    return h && proto_valid_name(h) && strlen(h) <= CLUSTER_HOST_MAX && !strchr(h, '.');
}

