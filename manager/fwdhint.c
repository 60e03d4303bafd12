/* fwdhint.c - where VMs of other hosts are, as this host learnt it
 * (fwdint.h, remote.h's remote_where). names_where() is the truth; a hint
 * only fills the moment its replica lags a create made through here. A
 * stale hint costs nothing worse than the VM_NOT_FOUND the named host then
 * answers, as it would for any name. */
#include "manager.h"
#include "cluster.h"
#include "fwdint.h"
#include "names.h"
#include "remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HINT_BUCKETS 1024
#define HINT_MAX 65536          /* then new ones are not kept: only hints */

struct hint {
    struct hint *next;
    char name[BX_NAME_MAX + 1];
    char host[CLUSTER_HOST_MAX + 1];
    double timeout;
};

static struct hint *hints[HINT_BUCKETS];
static size_t nhints;

static struct hint **hint_at(const char *name)
{
    unsigned h = 5381;
    for (const char *s = name; *s; s++)
        h = h * 33 + (unsigned char)*s;
    struct hint **pp = &hints[h % HINT_BUCKETS];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

void fwdhint_set(const char *name, const char *host, double timeout)
{
    struct hint **pp = hint_at(name), *h = *pp;
    if (!h && (nhints >= HINT_MAX || !(h = calloc(1, sizeof *h))))
        return;
    if (!*pp) {
        snprintf(h->name, sizeof h->name, "%s", name);
        *pp = h;
        nhints++;
    }
    snprintf(h->host, sizeof h->host, "%s", host);
    h->timeout = timeout;
}

void fwdhint_drop(const char *name)
{
    struct hint **pp = hint_at(name), *h = *pp;
    if (h) {
        *pp = h->next;
        free(h);
        nhints--;
    }
}

double fwdhint_timeout(const char *name)
{
    struct hint *h = name ? *hint_at(name) : NULL;
    return h ? h->timeout : 0;
}

/* A list (fwdlist.c) named the VM on host: keep what a create said of it. */
void remote_hint(const char *name, const char *host)
{
    struct hint *h = *hint_at(name);
    if (strcmp(host, cluster_self()) != 0 && !(h && strcmp(h->host, host) == 0))
        fwdhint_set(name, host, 0);
}

const char *remote_where(const char *name)
{
    const char *h = names_where(name);
    if (!h) {
        struct hint *t = *hint_at(name);
        h = t ? t->host : NULL;
    }
    return h && strcmp(h, cluster_self()) != 0 ? h : NULL;
}
