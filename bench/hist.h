/*
 * hist: a log-linear histogram of microseconds for bench/sse_load: values below
 * 128 exactly, above that 64 sub-buckets per power of two (relative error under
 * 1.6 %), enough for 2^63 µs, in a fixed 32 KiB: memory does not grow with the
 * number of samples. Unit-tested in tests/unit/check_bench.c.
 */
#ifndef MJS_BENCH_HIST_H
#define MJS_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_BUCKETS (HIST_SUB * 64)

struct hist {
	uint64_t count;
	uint64_t negative;	/* negative values (stamps from the future: clock trouble), counted as 0 */
	int64_t min_us, max_us;
	double sum_us;
	uint64_t b[HIST_BUCKETS];
};

/* The bucket of value v (>= 0), and the value a bucket stands for (its middle). */
int hist_index(int64_t v);
double hist_value(int i);

void hist_add(struct hist *h, int64_t us);

/* The p-quantile (0 < p <= 1) in µs, within the buckets' error; the exact max for p == 1. */
double hist_quantile(const struct hist *h, double p);

#endif
