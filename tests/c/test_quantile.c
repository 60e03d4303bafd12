/* test_quantile.c - nearest-rank quantiles and the ring they are taken over
 * (manager/quantile.c), on distributions whose answer is known by hand:
 * all equal, one outlier, a uniform ramp, and a ring that has wrapped. */
#include "check.h"
#include "quantile.h"

static double window[8];

static struct qring ring_of(double *storage, size_t cap)
{
    struct qring r = {.v = storage, .cap = cap};
    return r;
}

/* p50 and p99 of what r holds */
static void p50_p99(const struct qring *r, double *p50, double *p99)
{
    static const double qs[2] = {0.5, 0.99};
    double out[2] = {-1, -1};
    CHECK(qring_quantiles(r, qs, 2, out) == 0);
    *p50 = out[0];
    *p99 = out[1];
}

static void test_empty_and_equal(void)
{
    struct qring r = ring_of(window, 8);
    double p50, p99;
    p50_p99(&r, &p50, &p99);
    CHECK(p50 == 0 && p99 == 0);
    qring_push(&r, 2.5);
    p50_p99(&r, &p50, &p99);
    CHECK(p50 == 2.5 && p99 == 2.5);    /* one value is every quantile */
    for (int i = 0; i < 6; i++)
        qring_push(&r, 2.5);
    p50_p99(&r, &p50, &p99);
    CHECK(p50 == 2.5 && p99 == 2.5 && r.len == 7 && r.sum == 17.5);
}

/* The case: one 150 ms run among nine sub-millisecond ones. */
static void test_one_outlier(void)
{
    double v[10];
    struct qring r = ring_of(v, 10);
    for (int i = 0; i < 9; i++)
        qring_push(&r, 0.010 + i * 0.001);
    qring_push(&r, 150.0);
    double p50, p99;
    p50_p99(&r, &p50, &p99);
    CHECK(p99 == 150.0);
    CHECK(p50 == 0.014);                /* rank 5 of 10 */
    /* first in the ring instead of last: order does not matter */
    struct qring r2 = ring_of(v, 10);
    qring_push(&r2, 150.0);
    for (int i = 0; i < 9; i++)
        qring_push(&r2, 0.010 + i * 0.001);
    p50_p99(&r2, &p50, &p99);
    CHECK(p99 == 150.0 && p50 == 0.014);
}

/* 1..n in shuffled order: the q-quantile is ceil(q*n). */
static void test_ramp(void)
{
    static double v[1000];
    static const size_t ns[] = {1, 2, 3, 10, 99, 100, 101, 200, 1000};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        struct qring r = ring_of(v, n);
        for (size_t i = 0; i < n; i++)
            qring_push(&r, (double)((i * 7919) % n + 1));   /* a permutation of 1..n */
        double p50, p99;
        p50_p99(&r, &p50, &p99);
        size_t want50 = (n + 1) / 2, want99 = (99 * n + 99) / 100;
        CHECK(p50 == (double)want50);
        CHECK(p99 == (double)want99);
    }
    double s[100];
    for (int i = 0; i < 100; i++)
        s[i] = i + 1;
    CHECK(quantile_sorted(s, 100, 0.99) == 99);     /* not 100: 0.99*100 rounds */
    CHECK(quantile_sorted(s, 100, 0.999) == 100);
    CHECK(quantile_sorted(s, 100, 1.0) == 100);
    CHECK(quantile_sorted(s, 100, 0.01) == 1);
    CHECK(quantile_sorted(s, 100, 0.0) == 1);
    CHECK(quantile_sorted(s, 0, 0.5) == 0);
}

/* Past its capacity the ring holds the latest cap values only: the old
 * outliers leave the quantiles and the sum. */
static void test_wrapped(void)
{
    struct qring r = ring_of(window, 8);
    for (int i = 0; i < 8; i++)
        qring_push(&r, 1000.0);
    double p50, p99;
    p50_p99(&r, &p50, &p99);
    CHECK(p50 == 1000.0 && p99 == 1000.0);
    for (int i = 1; i <= 7; i++)
        qring_push(&r, (double)i);
    p50_p99(&r, &p50, &p99);
    CHECK(r.len == 8 && p99 == 1000.0 && p50 == 4.0);   /* one old value left */
    CHECK(r.sum == 1028.0);
    for (int i = 8; i <= 20; i++)
        qring_push(&r, (double)i);
    p50_p99(&r, &p50, &p99);
    CHECK(r.len == 8 && r.pos == 4);    /* holds 13..20 */
    CHECK(p50 == 16.0 && p99 == 20.0);
    CHECK(r.sum == 13 + 14 + 15 + 16 + 17 + 18 + 19 + 20);
}

int main(void)
{
    test_empty_and_equal();
    test_one_outlier();
    test_ramp();
    test_wrapped();
    return CHECK_DONE();
}
