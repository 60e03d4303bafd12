/* registry.c - name -> VM table (chained hash, grows at load 1). Owns no
 * VM: it only indexes them; vm.c frees a VM after registry_remove(). */
#include "manager.h"

#include <stdlib.h>
#include <string.h>

static size_t name_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;      /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int registry_init(struct manager *m)
{
    m->nbuckets = 64;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    return m->buckets ? 0 : -1;
}

struct vm *registry_find(const char *name)
{
    struct vm *vm = mgr->buckets[name_hash(name) & (mgr->nbuckets - 1)];
    while (vm && strcmp(vm->name, name) != 0)
        vm = vm->hnext;
    return vm;
}

static void registry_grow(void)
{
    size_t n = mgr->nbuckets * 2;
    struct vm **b = calloc(n, sizeof *b);
    if (!b)
        return;             /* keep the old table: slower, still correct */
    for (size_t i = 0; i < mgr->nbuckets; i++) {
        struct vm *vm = mgr->buckets[i], *next;
        for (; vm; vm = next) {
            next = vm->hnext;
            size_t k = name_hash(vm->name) & (n - 1);
            vm->hnext = b[k];
            b[k] = vm;
        }
    }
    free(mgr->buckets);
    mgr->buckets = b;
    mgr->nbuckets = n;
}

void registry_add(struct vm *vm)
{
    if (mgr->nvms + 1 > mgr->nbuckets)
        registry_grow();
    size_t k = name_hash(vm->name) & (mgr->nbuckets - 1);
    vm->hnext = mgr->buckets[k];
    mgr->buckets[k] = vm;
    mgr->nvms++;
}

void registry_remove(struct vm *vm)
{
    struct vm **pp = &mgr->buckets[name_hash(vm->name) & (mgr->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == vm) {
            *pp = vm->hnext;
            vm->hnext = NULL;
            mgr->nvms--;
            return;
        }
    }
}

struct vm **registry_all(size_t *n)
{
    struct vm **all = malloc((mgr->nvms + 1) * sizeof *all);
    *n = 0;
    if (!all)
        return NULL;
    for (size_t i = 0; i < mgr->nbuckets; i++)
        for (struct vm *vm = mgr->buckets[i]; vm; vm = vm->hnext)
            all[(*n)++] = vm;
    return all;
}
