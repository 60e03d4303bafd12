/* modmatch.c - import grants against module names (see modmatch.h). */
#include "modmatch.h"

#include <string.h>

int modmatch_is_family(const char *grant)
{
    size_t n = grant ? strlen(grant) : 0;
    return n > 2 && grant[n - 2] == '.' && grant[n - 1] == '*';
}

int modmatch(const char *grant, const char *name)
{
    if (!grant || !name || strchr(name, '*'))
        return 0;   /* a '*' is never in a module's name: "a.*" names no module */
    if (!modmatch_is_family(grant))
        return strcmp(grant, name) == 0;
    /* "mylib.*": the prefix with its dot, then at least one more byte */
    size_t pre = strlen(grant) - 1;
    return strlen(name) > pre && strncmp(grant, name, pre) == 0;
}
