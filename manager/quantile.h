/* quantile.h - a ring of the latest values and nearest-rank quantiles over
 * it (quantile.c). Pure: no I/O, no manager state, so the unit test links
 * it alone. stats.c keeps the manager's duration window in one. */
#ifndef BX_QUANTILE_H
#define BX_QUANTILE_H

#include <stddef.h>

/* The last `cap` values pushed (the oldest leaves first), in ring order,
 * which no quantile depends on. v is borrowed storage of cap doubles;
 * zero len/pos/sum is the empty ring. */
struct qring {
    double *v;
    size_t cap, len, pos;
    double sum;                 /* of the values held now */
};

void qring_push(struct qring *r, double x);

/* The nearest-rank q-quantile of n sorted values (0 < q <= 1): the
 * smallest value with at least q*n values at or below it, i.e. the value
 * of rank ceil(q*n). Never interpolates, so it is always a value that was
 * seen. n == 0 gives 0. */
double quantile_sorted(const double *sorted, size_t n, double q);

/* out[i] = the qs[i]-quantile of what r holds, for i < k (0 with r empty).
 * Sorts a copy; 0, or -1 when out of memory (out then all 0). */
int qring_quantiles(const struct qring *r, const double *qs, size_t k, double *out);

#endif
