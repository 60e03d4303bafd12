/* test_pathcheck.c - the policy's pure path and module-name rules
 * (manager/pathcheck.c): normalisation, the refusals that need no file
 * system, glob matching and module paths. */
#include "check.h"
#include "pathcheck.h"

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

int main(void)
{
    test_normalise();
    test_literal();
    test_modules();
    return CHECK_DONE();
}
