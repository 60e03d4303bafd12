/* clstub.c - TEMPORARY stand-in for cl-names' hosts.c and names.c, so that
 * cl-fwd builds and its tests run before they land. Every definition is
 * weak: the real ones win when linked. Delete this file (and its
 * CMakeLists entry) at merge. */
#include "cluster.h"
#include "hosts.h"
#include "names.h"

#define WEAK __attribute__((weak))

WEAK int hosts_alive(const char *host) { (void)host; return 1; }
WEAK json_t *hosts_report(void) { return NULL; }
WEAK const char *hosts_pick(void) { return cluster_self(); }
WEAK int hosts_on_change(hosts_change_fn fn, void *arg) { (void)fn; (void)arg; return 0; }
WEAK const char *names_where(const char *name) { (void)name; return NULL; }
