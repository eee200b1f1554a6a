/*
 * pace: when the next flush starts and the next read happens (pace.h).
 */
#include "worker/pace.h"

#include <string.h>

void pace_init(struct pace *p, int min_gap_ms, int max_wait_ms)
{
	memset(p, 0, sizeof(*p));
	p->min_gap_ms = min_gap_ms;
	p->max_wait_ms = max_wait_ms;
}

void pace_started(struct pace *p, int64_t now)
{
	p->last_start = now;
	p->failed = 0;
	p->urgent = 0;
}

void pace_failed(struct pace *p)
{
	p->failed = 1;
}

void pace_urgent(struct pace *p)
{
	p->urgent = 1;
}

/* The earliest a flush may start by rules 4 and 5, with news waiting. */
static int64_t may_start(const struct pace *p)
{
	int gap = p->min_gap_ms < p->max_wait_ms ? p->min_gap_ms : p->max_wait_ms;

	if (p->last_start == 0)
		return 0;
	return p->last_start + (p->failed ? p->max_wait_ms : gap);
}

int64_t pace_next_flush(const struct pace *p, int in_flight, int news, int64_t now)
{
	int64_t t;

	if (in_flight || !news)
		return PACE_NEVER;
	if (p->urgent)
		return now;
	t = may_start(p);
	return t > now ? t : now;
}

int64_t pace_next_read(const struct pace *p, int in_flight, int64_t last_read)
{
	int64_t t = last_read + PACE_READ_MAX_GAP_MS, flush;

	if (in_flight)
		return t;
	flush = may_start(p);
	if (flush < last_read + PACE_READ_MIN_GAP_MS)
		flush = last_read + PACE_READ_MIN_GAP_MS;
	return flush < t ? flush : t;
}
