/* check.h - the tiny assertion harness of the C unit tests.
 * Each test file counts checks and ends with CHECK_DONE(), which prints the
 * "N passed, N failed" line ctest logs and CI reads. */
#ifndef BX_CHECK_H
#define BX_CHECK_H
#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
    if (cond) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_DONE() (printf("%d passed, %d failed\n", check_passed, check_failed), check_failed != 0)
#endif
