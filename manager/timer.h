/* timer.h - seconds as libevent wants them. Every timer the manager arms
 * goes through timer_tv: a deadline from the wire can be any JSON number
 * (1e300 is valid), and a time_t overflow would arm a timer in the past. */
#ifndef BX_TIMER_H
#define BX_TIMER_H

#include <event2/event.h>
#include <sys/time.h>

#define TIMER_MAX_S 1e9     /* ~31 years: "never", without overflowing time_t */

static inline struct timeval timer_tv(double s)
{
    if (!(s > 0))           /* negative, zero and NaN: fire at once */
        s = 0;
    if (s > TIMER_MAX_S)
        s = TIMER_MAX_S;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    return tv;
}

/* Arms ev to fire once after s seconds (clamped as above). */
static inline int timer_arm(struct event *ev, double s)
{
    struct timeval tv = timer_tv(s);
    return evtimer_add(ev, &tv);
}

/* Exponential back-off: first * 2^(n-1) for the n-th failure, at most cap. */
static inline double timer_backoff(double first, unsigned n, double cap)
{
    double d = first * (double)(1u << (n > 0 ? (n - 1 < 16 ? n - 1 : 16) : 0));
    return d > cap ? cap : d;
}

#endif
