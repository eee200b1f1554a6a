/*
 * pace: when the worker's next flush starts, and when it next reads its
 * upstreams: group commit, as databases do it. Write as soon as there is
 * something to write and the previous write is answered; let batches grow
 * only while writes queue up. Pure (no clock, no I/O): the loop (main.c) tells
 * it what happened and asks it for times; tests/unit/check_pace.c asks it the
 * same questions.
 *
 * The next flush starts (pace_next_flush), first rule that applies:
 *   1. never while one is in flight: one connection carries one flush at a
 *      time, and its answer wakes the loop, which asks again. Under load this
 *      is what batches: the longer a flush takes, the more the next carries;
 *   2. never while no reply has news;
 *   3. at once when a reply's buffer reached flush_max_bytes (urgent);
 *   4. flush_interval after the start of a flush that failed, so a database
 *      in trouble is not asked again hundreds of times a second;
 *   5. else at once, but not before flush_min_interval after the start of the
 *      previous flush (at most 1000/flush_min_interval notifying commits a
 *      second per worker), nor later than flush_interval after it (a minimum
 *      configured above flush_interval is cut to it).
 * So the flush of a token starts at most max(gap, what is left of the flush in
 * flight) after the token was read, gap = min(flush_min_interval, flush_interval).
 *
 * Reads follow the same clock (pace_next_read): reading earlier than a flush
 * can start brings no token to a tab sooner, reading later delays it.
 */
#ifndef MJS_WORKER_PACE_H
#define MJS_WORKER_PACE_H

#include <stdint.h>

#define PACE_NEVER INT64_MAX

/*
 * Upstream reads: at least this often, so transfers, their timeouts and the
 * sockets' windows move on while a flush is in flight or the gap is long...
 */
#define PACE_READ_MAX_GAP_MS 10
/*
 * ...and at most this often: each read walks every transfer (curl_multi_poll
 * and curl_multi_perform), so a wake-up per packet would cost thousands of
 * walks a second when the reads find nothing to flush.
 */
#define PACE_READ_MIN_GAP_MS 1

struct pace {
	int min_gap_ms;		/* flush_min_interval */
	int max_wait_ms;	/* flush_interval */
	int64_t last_start;	/* when the last flush started (or found nothing to send); 0: none yet */
	int failed;		/* the last flush failed (rule 4) */
	int urgent;		/* a reply's buffer reached flush_max_bytes (rule 3) */
};

void pace_init(struct pace *p, int min_gap_ms, int max_wait_ms);

/* A flush starts now (or was due and found nothing to send): urgent and failed are cleared. */
void pace_started(struct pace *p, int64_t now);

/* The flush failed in a way the same batch may pass later (not the data refused). */
void pace_failed(struct pace *p);

/* A reply's buffer reached flush_max_bytes: the next flush waits for no gap. */
void pace_urgent(struct pace *p);

/*
 * When the next flush starts: now, a later time, or PACE_NEVER (none until
 * the state changes: a flush answered, news arriving). news: some reply has
 * something to write; in_flight: a flush awaits its answer.
 */
int64_t pace_next_flush(const struct pace *p, int in_flight, int news, int64_t now);

/*
 * When the upstreams are next read, the last read having been at last_read:
 * every PACE_READ_MAX_GAP_MS while a flush is in flight; else as soon as a
 * flush may start (rule 5's time, rule 4's after a failure), but not sooner
 * than PACE_READ_MIN_GAP_MS after the last read nor later than
 * PACE_READ_MAX_GAP_MS. A time in the past means now.
 */
int64_t pace_next_read(const struct pace *p, int in_flight, int64_t last_read);

#endif
