/* quantile.c - the ring of recent values and nearest-rank quantiles over it
 * (see quantile.h). Nearest rank because a p99 must be a run that happened:
 * with one 150 ms run among nine fast ones, p99 is that run, where an index
 * of (n-1)*0.99 rounded down names the ninth fastest. */
#include "quantile.h"

#include <stdlib.h>
#include <string.h>

void qring_push(struct qring *r, double x)
{
    if (r->cap == 0)
        return;
    if (r->len == r->cap)
        r->sum -= r->v[r->pos];     /* the oldest leaves */
    else
        r->len++;
    r->v[r->pos] = x;
    r->pos = (r->pos + 1) % r->cap;
    r->sum += x;
}

double quantile_sorted(const double *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    /* q*n carries the rounding of q (0.99*100 is 98.99999999999999 or
     * 99.00000000000001): an integral rank must not round up to the next */
    double want = q * (double)n - 1e-9;
    size_t rank = want <= 0 ? 0 : (size_t)want;
    if ((double)rank < want)
        rank++;                 /* ceil without libm */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int qring_quantiles(const struct qring *r, const double *qs, size_t k, double *out)
{
    memset(out, 0, k * sizeof *out);
    if (r->len == 0)
        return 0;
    double *s = malloc(r->len * sizeof *s);
    if (!s)
        return -1;
    memcpy(s, r->v, r->len * sizeof *s);    /* the first len slots are the held ones */
    qsort(s, r->len, sizeof *s, cmp_double);
    for (size_t i = 0; i < k; i++)
        out[i] = quantile_sorted(s, r->len, qs[i]);
    free(s);
    return 0;
}
