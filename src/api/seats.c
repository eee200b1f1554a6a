/*
 * seats: streams per user in this process (seats.h).
 */
#include "api/seats.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seat {
	char id[37];
	int n;
	struct seat *next;
};

static unsigned hash_id(const char *id)
{
	return util_hash(id) % SEATS_BUCKETS;
}

void seats_init(struct seats *st, int max)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	st->max = max;
}

void seats_fini(struct seats *st)
{
	for (int i = 0; i < SEATS_BUCKETS; i++) {
		while (st->buckets[i]) {
			struct seat *s = st->buckets[i];
			st->buckets[i] = s->next;
			free(s);
		}
	}
	pthread_mutex_destroy(&st->lock);
}

int seats_take(struct seats *st, const char *user_id)
{
	unsigned b = hash_id(user_id);
	struct seat *s;
	int rc = -1;

	pthread_mutex_lock(&st->lock);
	for (s = st->buckets[b]; s && strcmp(s->id, user_id); s = s->next)
		;
	if (!s && (s = calloc(1, sizeof(*s)))) {
		snprintf(s->id, sizeof(s->id), "%s", user_id);
		s->next = st->buckets[b];
		st->buckets[b] = s;
	}
	if (!s)
		rc = -2;
	else if (s->n < st->max) {
		s->n++;
		rc = 0;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void seats_give(struct seats *st, const char *user_id)
{
	struct seat **pp, *s;

	pthread_mutex_lock(&st->lock);
	for (pp = &st->buckets[hash_id(user_id)]; (s = *pp); pp = &s->next) {
		if (!strcmp(s->id, user_id)) {
			if (--s->n <= 0) {
				*pp = s->next;
				free(s);
			}
			break;
		}
	}
	pthread_mutex_unlock(&st->lock);
}

int seats_capped(struct seats *st, char *out, size_t len, int max_users)
{
	size_t used = 0;
	int count = 0;

	if (len < 3)
		return 0;
	out[used++] = '{';
	pthread_mutex_lock(&st->lock);
	for (int b = 0; b < SEATS_BUCKETS && count < max_users; b++) {
		for (struct seat *s = st->buckets[b]; s && count < max_users; s = s->next) {
			if (s->n < st->max || used + 38 >= len)
				continue;
			used += (size_t)snprintf(out + used, len - used, "%s%s", count ? "," : "", s->id);
			count++;
		}
	}
	pthread_mutex_unlock(&st->lock);
	out[used++] = '}';
	out[used] = '\0';
	return count;
}
