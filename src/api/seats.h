/*
 * seats: how many streams each user holds in this process, for
 * max_streams_per_user. REST threads take a seat before handing a stream to
 * the hub; the hub gives it back when the stream closes. Thread-safe.
 */
#ifndef MJS_API_SEATS_H
#define MJS_API_SEATS_H

#include <pthread.h>
#include <stddef.h>

#define SEATS_BUCKETS 4096

struct seat;

struct seats {
	pthread_mutex_t lock;
	int max;			/* max_streams_per_user */
	struct seat *buckets[SEATS_BUCKETS];
};

void seats_init(struct seats *st, int max);
void seats_fini(struct seats *st);

/* 0: taken; -1: the user holds max already; -2: out of memory. */
int seats_take(struct seats *st, const char *user_id);
void seats_give(struct seats *st, const char *user_id);

/*
 * Writes the users holding max seats as a PostgreSQL uuid[] literal ("{...}"),
 * at most max_users of them; returns how many.
 */
int seats_capped(struct seats *st, char *out, size_t len, int max_users);

#endif
