/* test_pathcheck.c - the policy's pure path and module-name rules
 * (manager/pathcheck.c): normalisation, the refusals that need no file
 * system, glob matching and module paths. */
#include "check.h"
#include "modmatch.h"
#include "pathcheck.h"
#include "validate.h"

#include <string.h>

static int norm_is(const char *in, const char *want)
{
    char out[64];
    const char *why = NULL;
    return path_normalise(in, out, sizeof out, &why) == 0 && strcmp(out, want) == 0;
}

static int refused(const char *in)
{
    char out[64];
    const char *why = NULL;
    return path_normalise(in, out, sizeof out, &why) < 0 && why && *why;
}

static void test_normalise(void)
{
    CHECK(norm_is("/", "/"));
    CHECK(norm_is("//srv///data/", "/srv/data"));
    CHECK(norm_is("/srv/./data/./a.csv", "/srv/data/a.csv"));
    CHECK(norm_is("/./", "/"));
    CHECK(norm_is("/a/..b/c..", "/a/..b/c.."));     /* only a whole ".." is a climb */
    CHECK(refused(""));
    CHECK(refused("srv/a.csv"));
    CHECK(refused("./a"));
    CHECK(refused("/srv/../etc/passwd"));
    CHECK(refused("/srv/data/.."));
    CHECK(refused("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* > 64 */
}

static void test_literal(void)
{
    json_t *globs = json_pack("[s, s]", "/srv/data/*.csv", "/*");
    char norm[128];
    const char *why = NULL;
    CHECK(path_check_literal(globs, "/srv/data/a.csv", norm, sizeof norm, &why) == 0);
    CHECK(strcmp(norm, "/srv/data/a.csv") == 0);
    CHECK(path_check_literal(globs, "/srv//data/./a.csv", norm, sizeof norm, &why) == 0);
    CHECK(path_check_literal(globs, "/srv/data/sub/a.csv", norm, sizeof norm, &why) < 0);  /* a star stops at a slash */
    CHECK(path_check_literal(globs, "/srv/data/a.txt", norm, sizeof norm, &why) < 0);
    CHECK(path_check_literal(globs, "/proc", norm, sizeof norm, &why) < 0);   /* a glob matches, yet */
    CHECK(strstr(why, "/proc") != NULL);
    CHECK(path_check_literal(globs, "/dev", norm, sizeof norm, &why) < 0);
    CHECK(path_check_literal(globs, "/etc", norm, sizeof norm, &why) == 0);
    CHECK(path_in_kernel_area("/sys/kernel") && path_in_kernel_area("/proc/self/mem"));
    CHECK(!path_in_kernel_area("/process") && !path_in_kernel_area("/devices"));
    CHECK(path_inside("/m", "/m/a.lua") && path_inside("/m", "/m") && !path_inside("/m", "/mx/a.lua"));
    CHECK(path_inside("/", "/anything"));
    json_decref(globs);
}

static void test_modules(void)
{
    char rel[300];
    CHECK(module_name_valid("mymod") && module_name_valid("pkg.util_2") && module_name_valid("_x"));
    CHECK(!module_name_valid("") && !module_name_valid("1x") && !module_name_valid("a..b"));
    CHECK(!module_name_valid("a.") && !module_name_valid(".a") && !module_name_valid("a/b"));
    CHECK(!module_name_valid("a.1b") && !module_name_valid("a b"));
    CHECK(module_rel_path("pkg.util", rel, sizeof rel) == 0 && strcmp(rel, "pkg/util.lua") == 0);
    CHECK(module_rel_path("a..b", rel, sizeof rel) < 0);
    CHECK(module_rel_path("abc", rel, 8) == 0 && module_rel_path("abcd", rel, 8) < 0);
}

/* Import families (as IsoBox scopes): below the stem only. */
static void test_import_families(void)
{
    CHECK(modmatch("mylib.*", "mylib.a") && modmatch("mylib.*", "mylib.a.b"));
    CHECK(!modmatch("mylib.*", "mylib") && !modmatch("mylib.*", "mylibx") &&
          !modmatch("mylib.*", "mylibx.a") && !modmatch("mylib.*", "mylib."));
    CHECK(modmatch("mylib", "mylib") && !modmatch("mylib", "mylib.a"));
    CHECK(!modmatch("mylib.*", "mylib.*") && !modmatch(NULL, "a") && !modmatch("a", NULL));
    CHECK(modmatch_is_family("a.*") && !modmatch_is_family(".*") && !modmatch_is_family("a*"));
    /* the policy takes a family of a valid stem, nothing looser */
    char err[256];
    json_t *ok = json_pack("{s:[s, s]}", "imports", "mylib.*", "a.b.*");
    json_t *bad = json_pack("{s:[s]}", "imports", "*"), *bad2 = json_pack("{s:[s]}", "imports", "a.*.b");
    json_t *n1 = req_policy_normal(ok, err, sizeof err);
    CHECK(n1 != NULL);
    CHECK(req_policy_normal(bad, err, sizeof err) == NULL && req_policy_normal(bad2, err, sizeof err) == NULL);
    json_decref(n1);
    json_decref(ok);
    json_decref(bad);
    json_decref(bad2);
}

/* The severity table of docs/security.md. */
static void test_severity(void)
{
    CHECK(strcmp(security_severity("seccomp", NULL, NULL), "critical") == 0);
    CHECK(strcmp(security_severity(NULL, "require", "not in the policy's imports"), "warn") == 0);
    CHECK(strcmp(security_severity(NULL, "require", "the module's file lies outside the module directory"), "error") == 0);
    CHECK(strcmp(security_severity(NULL, "fs_read", "no allow_fs grant matches the path"), "error") == 0);
    CHECK(strcmp(security_severity(NULL, "fs_read", "/proc, /sys and /dev are never readable"), "critical") == 0);
    CHECK(strcmp(security_severity(NULL, "connect", "loopback only, beyond it an allow_tcp grant"), "error") == 0);
    CHECK(strcmp(security_severity(NULL, "listen", "bind it first"), "info") == 0);
    CHECK(strcmp(security_severity(NULL, NULL, NULL), "warn") == 0);
}

static void test_filename(void)
{
    const char *why = NULL;
    char big[300];
    memset(big, 'a', sizeof big);
    CHECK(req_filename_ok("calc.lua", 8, &why) && req_filename_ok("@scope/x y.lua", 14, &why));
    CHECK(!req_filename_ok("", 0, &why) && why && *why);
    CHECK(!req_filename_ok("a\nb", 3, &why) && !req_filename_ok("a\x7f", 2, &why));
    CHECK(!req_filename_ok(big, 256, &why) && req_filename_ok(big, 255, &why));
}

int main(void)
{
    test_normalise();
    test_literal();
    test_modules();
    test_import_families();
    test_severity();
    test_filename();
    return CHECK_DONE();
}
