/* fuzz_policy.c - libFuzzer target for the manager's policy rules: the
 * validator that normalises a policy object (policycheck.c, run on create and
 * set_policy) and the pure path checker that decides which files fs.read
 * may ask for (pathcheck.c, run before any realpath or open).
 *
 * Input: a JSON policy, a newline, then a path (also tried as a module
 * name). Invariants: a policy that passes is in normal form (exactly mem,
 * tcp, fs, imports), survives the wire and normalises to itself; a path
 * that passes is absolute, normalised (no "//", ".", ".."), outside /proc,
 * /sys and /dev, matches a granted glob, and normalises to itself; a valid
 * module name maps to a relative "a/b.lua" path without "..". */
#include "modmatch.h"
#include "pathcheck.h"
#include "validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_wire(json_t *msg)
{
    char err[160];
    size_t len;
    char *s = proto_dump(msg, &len);
    CHECK(s && len > 0 && s[len - 1] == '\n' && !memchr(s, '\n', len - 1));
    json_t *back = proto_parse(s, len - 1, err, sizeof err);
    CHECK(back && json_equal(back, msg));
    json_decref(back);
    free(s);
}

static json_t *check_policy(const char *text, size_t len)
{
    char err[512];
    json_t *pol = json_loadb(text, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    json_t *norm = req_policy_normal(pol, err, sizeof err);
    json_decref(pol);
    if (!norm) {
        CHECK(err[0] != 0 && memchr(err, 0, sizeof err));
        return NULL;
    }
    CHECK(json_object_size(norm) == 4);
    json_t *mem = json_object_get(norm, "mem");
    CHECK(json_is_null(mem) || (json_is_integer(mem) && json_integer_value(mem) >= 0));
    CHECK(json_array_size(json_object_get(norm, "tcp")) <= POLICY_TCP_MAX);
    CHECK(json_array_size(json_object_get(norm, "fs")) <= POLICY_FS_MAX);
    CHECK(json_array_size(json_object_get(norm, "imports")) <= POLICY_IMPORTS_MAX);
    check_wire(norm);
    json_t *again = req_policy_normal(norm, err, sizeof err);
    CHECK(again && json_equal(again, norm));
    json_decref(again);
    return norm;
}

static void check_normal_form(const char *p)
{
    CHECK(p[0] == '/');
    CHECK(!strstr(p, "//") && !strstr(p, "/./") && !strstr(p, "/../"));
    size_t l = strlen(p);
    CHECK(l == 1 || p[l - 1] != '/');
    CHECK(!(l >= 2 && strcmp(p + l - 2, "/.") == 0) && !(l >= 3 && strcmp(p + l - 3, "/..") == 0));
    char again[PATH_TEXT_MAX + 1];
    const char *why;
    CHECK(path_normalise(p, again, sizeof again, &why) == 0 && strcmp(again, p) == 0);
}

static void check_path(json_t *globs, const char *path)
{
    char norm[PATH_TEXT_MAX + 1], small[8];
    const char *why = NULL;
    if (path_check_literal(globs, path, norm, sizeof norm, &why) == 0) {
        check_normal_form(norm);
        CHECK(!path_in_kernel_area(norm) && path_glob_match(globs, norm));
        CHECK(path_inside("/", norm));
    } else {
        CHECK(why && *why);
    }
    /* a short buffer is refused, never overrun */
    if (path_normalise(path, small, sizeof small, &why) == 0)
        CHECK(strlen(small) < sizeof small);
}

static void check_module(const char *name)
{
    char rel[MODULE_NAME_MAX + 8];
    int ok = module_name_valid(name);
    CHECK(ok == (module_rel_path(name, rel, sizeof rel) == 0));
    if (!ok)
        return;
    size_t l = strlen(rel);
    CHECK(rel[0] != '/' && !strstr(rel, "..") && l > 4 && strcmp(rel + l - 4, ".lua") == 0);
}

/* Import grants (modmatch.c): every granted name is one a policy may
 * name; a family never covers its own stem nor a name that merely starts
 * like it; an exact grant covers itself only. */
static void check_grants(json_t *norm, const char *name)
{
    size_t i, nl = strlen(name);
    json_t *g;
    json_array_foreach(json_object_get(norm, "imports"), i, g) {
        const char *gs = json_string_value(g);
        CHECK(gs);
        if (!modmatch(gs, name))
            continue;
        if (!modmatch_is_family(gs)) {
            CHECK(strcmp(gs, name) == 0);
            continue;
        }
        size_t stem = strlen(gs) - 2;
        CHECK(nl > stem + 1 && strncmp(gs, name, stem) == 0 && name[stem] == '.');
    }
    CHECK(modmatch(name, name) == !strchr(name, '*'));
}

/* Severity is one of the four, whatever the event says. */
static void check_severity(const char *s)
{
    const char *v = security_severity(s, s, s);
    CHECK(v && (!strcmp(v, "info") || !strcmp(v, "warn") || !strcmp(v, "error") ||
                !strcmp(v, "critical")));
    CHECK(security_severity(NULL, NULL, NULL) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - (const char *)data) : size;
    json_t *norm = check_policy((const char *)data, plen);
    size_t rest = nl ? size - plen - 1 : 0;
    char *path = malloc(rest + 1);
    CHECK(path);
    memcpy(path, nl ? nl + 1 : "", rest);
    path[rest] = 0;   /* a NUL inside ends the C string, as a JSON string cannot carry one here */
    json_t *globs = norm ? json_object_get(norm, "fs") : NULL;
    json_t *own = NULL;
    if (!globs) {   /* no valid policy: glob with the path itself, a worst case */
        own = json_pack("[s]", "/*");
        globs = own;
    }
    check_path(globs, path);
    check_module(path);
    if (norm)
        check_grants(norm, path);
    check_severity(path);
    free(path);
    json_decref(own);
    json_decref(norm);
    return 0;
}
