/*
 * hist: the histogram of bench/sse_load (hist.h).
 */
#include "hist.h"

int hist_index(int64_t v)
{
	int msb, shift;

	if (v < 2 * HIST_SUB)
		return (int)v;
	msb = 63 - __builtin_clzll((unsigned long long)v);
	shift = msb - 6;
	return (shift + 1) * HIST_SUB + (int)((v >> shift) - HIST_SUB);
}

/* The middle of bucket i, in µs. */
double hist_value(int i)
{
	int shift;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	return (double)((int64_t)(i % HIST_SUB + HIST_SUB) << shift) + (double)((int64_t)1 << shift) / 2.0;
}

void hist_add(struct hist *h, int64_t us)
{
	if (us < 0) {
		h->negative++;
		us = 0;
	}
	if (h->count == 0 || us < h->min_us)
		h->min_us = us;
	if (us > h->max_us)
		h->max_us = us;
	h->count++;
	h->sum_us += (double)us;
	h->b[hist_index(us)]++;
}

double hist_quantile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (p >= 1.0)
		return (double)h->max_us;
	rank = (uint64_t)(p * (double)h->count);
	if ((double)rank < p * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			double v = hist_value(i);
			if (v > (double)h->max_us)
				v = (double)h->max_us;
			if (v < (double)h->min_us)
				v = (double)h->min_us;
			return v;
		}
	}
	return (double)h->max_us;
}
