/* identity.c - who a connection is, and what that lets it do (docs/security.md,
 * "Identity model"). A Unix client is "uid:N" (SO_PEERCRED, taken at accept);
 * a TCP client is "token:NAME", NAME being the --token-file line whose token
 * it presented. Admins: the manager's own uid on the Unix socket and every
 * --admin IDENTITY. A VM belongs to the identity that created it. Owns the
 * token table and the admin list. */
#include "manager.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN_FILE_MAX (64 * 1024)
#define TOKEN_MAX 1024

struct bx_token {
    char name[BX_NAME_MAX + 1];
    char *secret;           /* owned */
};

static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int token_add(struct manager *m, const char *name, const char *secret,
                     char *err, size_t n)
{
    if (!proto_valid_name(name) || strchr(name, ':'))
        return snprintf(err, n, "token name '%.64s' must match ^[A-Za-z0-9_.-]{1,64}$", name), -1;
    if (!*secret || strlen(secret) > TOKEN_MAX)
        return snprintf(err, n, "token '%s' must be 1 to %d characters", name, TOKEN_MAX), -1;
    for (size_t i = 0; i < m->ntokens; i++) {
        /* a shared secret would make the identity depend on the table's order */
        if (strcmp(m->tokens[i].name, name) == 0 || strcmp(m->tokens[i].secret, secret) == 0)
            return snprintf(err, n, "token '%s' is given twice (by name or by secret)", name), -1;
    }
    struct bx_token *t = realloc(m->tokens, (m->ntokens + 1) * sizeof *t);
    if (!t)
        return snprintf(err, n, "out of memory"), -1;
    m->tokens = t;
    snprintf(t[m->ntokens].name, sizeof t[m->ntokens].name, "%s", name);
    if (!(t[m->ntokens].secret = strdup(secret)))
        return snprintf(err, n, "out of memory"), -1;
    m->ntokens++;
    return 0;
}

/* One NAME:TOKEN per line; a line without a colon is the token named
 * "default" (the one-line files of earlier versions). Blank lines and lines
 * starting with '#' are skipped. */
int identity_load_tokens(struct manager *m, const char *file, char *err, size_t n)
{
    static char buf[TOKEN_FILE_MAX + 1];
    int rc = 0;
    FILE *f = fopen(file, "r");
    if (!f)
        return snprintf(err, n, "cannot read --token-file %s", file), -1;
    size_t len = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
    fclose(f);
    if (len > TOKEN_FILE_MAX)
        len = 0, rc = (snprintf(err, n, "--token-file %s is larger than %d bytes",
                                file, TOKEN_FILE_MAX), -1);
    buf[len] = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        line = trim(line);
        if (!*line || *line == '#')
            continue;
        char *colon = strchr(line, ':');
        if (colon)
            *colon = 0;
        rc = token_add(m, colon ? trim(line) : "default", trim(colon ? colon + 1 : line), err, n);
    }
    explicit_bzero(buf, sizeof buf);    /* the secrets live on in the table only */
    if (rc == 0 && m->ntokens == 0)
        rc = (snprintf(err, n, "--token-file %s holds no token", file), -1);
    return rc;
}

/* "uid:N" or "token:NAME"; anything else is refused so a typo does not
 * silently leave a deployment without its admin. */
int identity_add_admin(struct manager *m, const char *id, char *err, size_t n)
{
    char *end;
    int ok = 0;
    if (strncmp(id, "uid:", 4) == 0 && isdigit((unsigned char)id[4])) {
        char canon[24];
        unsigned long u = strtoul(id + 4, &end, 10);
        snprintf(canon, sizeof canon, "%lu", u);
        /* compared as text with "uid:%u": "uid:007" would never match */
        ok = !*end && u < 0xFFFFFFFFUL && strcmp(canon, id + 4) == 0;
    } else if (strncmp(id, "token:", 6) == 0) {
        ok = proto_valid_name(id + 6) && !strchr(id + 6, ':');
    }
    if (!ok)
        return snprintf(err, n, "--admin wants uid:N or token:NAME, got '%.80s'", id), -1;
    const char **a = realloc(m->admins, (m->nadmins + 1) * sizeof *a);
    if (!a)
        return snprintf(err, n, "out of memory"), -1;
    m->admins = a;
    a[m->nadmins++] = id;
    return 0;
}

static int named_admin(const char *identity)
{
    for (size_t i = 0; i < mgr->nadmins; i++)
        if (strcmp(mgr->admins[i], identity) == 0)
            return 1;
    return 0;
}

/* A Unix client is the uid that connected; the manager's own uid is an
 * admin (that is how the embedding program owns its embedded manager). */
int identity_peer(struct client *c, int fd)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof cr)
        return -1;
    snprintf(c->identity, sizeof c->identity, "uid:%u", (unsigned)cr.uid);
    c->admin = cr.uid == mgr->uid || named_admin(c->identity);
    return 0;
}

/* Constant-time in the guess: the time depends on the secret's length only,
 * so it does not tell how much of a guess was right. */
static int token_equal(const char *guess, const char *secret)
{
    size_t lg = strlen(guess), ls = strlen(secret);
    unsigned char d = lg != ls;
    for (size_t i = 0; i < ls; i++)
        d |= (unsigned char)(i < lg ? guess[i] : 0) ^ (unsigned char)secret[i];
    return d == 0;
}

/* The token among all of them that the guess matches, or NULL. Every
 * token is compared, without stopping at a match, so the reply time does
 * not tell which one (nearly) matched. */
static const struct bx_token *token_match(const char *guess)
{
    const struct bx_token *hit = NULL;
    for (size_t i = 0; i < mgr->ntokens; i++) {
        int eq = token_equal(guess, mgr->tokens[i].secret);
        hit = eq ? &mgr->tokens[i] : hit;
    }
    return hit;
}

enum bx_err identity_auth(struct client *c, const char *guess, char *err, size_t n)
{
    const struct bx_token *t = guess ? token_match(guess) : NULL;
    if (!t)
        return snprintf(err, n, "bad token"), BX_E_AUTH_REQUIRED;
    char id[BX_IDENT_MAX];
    snprintf(id, sizeof id, "token:%s", t->name);
    /* The connection's VMs belong to the identity it has: it keeps it. */
    if (c->authed && strcmp(id, c->identity) != 0)
        return snprintf(err, n, "this connection is %s; connect again to be %s",
                        c->identity, id), BX_E_FORBIDDEN;
    snprintf(c->identity, sizeof c->identity, "%s", id);
    c->admin = named_admin(id);
    c->authed = 1;
    return BX_OK;
}

int identity_owns(const struct client *c, const struct vm *vm)
{
    return c->admin || strcmp(c->identity, vm->owner) == 0;
}

int identity_sees(const struct client *c, const struct vm *vm)
{
    return vm->shared || identity_owns(c, vm);
}

void identity_free(struct manager *m)
{
    for (size_t i = 0; i < m->ntokens; i++) {
        explicit_bzero(m->tokens[i].secret, strlen(m->tokens[i].secret));
        free(m->tokens[i].secret);
    }
    free(m->tokens);
    free(m->admins);
    m->tokens = NULL;
    m->admins = NULL;
    m->ntokens = m->nadmins = 0;
}
