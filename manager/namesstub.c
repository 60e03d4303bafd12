/* namesstub.c - names.h for a build without libnats: every name is local. */
#include "names.h"

int names_start(void) { return 0; }
void names_stop(void) {}
json_t *names_record(const char *owner, json_t *init) { (void)owner; (void)init; return json_object(); }

int names_claim(const char *name, json_t *record, names_done_fn done, void *arg)
{
    (void)name; (void)record;
    done(1, "", arg);
    return 0;
}

void names_release(const char *name) { (void)name; }
const char *names_where(const char *name) { (void)name; return NULL; }

int names_lookup(const char *name, names_done_fn done, void *arg)
{
    (void)name;
    done(-1, "cluster unavailable", arg);
    return 0;
}
