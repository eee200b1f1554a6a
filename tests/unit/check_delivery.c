/*
 * check_delivery: api/delivery and api/stream, driven over socketpairs (the
 * other end plays nginx): what a tab is sent live and by catch-up, the gap,
 * duplicate and reset rules, the queue limit, and a stream's end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/delivery.h"
#include "api/sse.h"
#include "suites.h"

#define USER_A "11111111-1111-4111-8111-111111111111"
#define USER_B "22222222-2222-4222-8222-222222222222"

static struct streams ss;
static int epfd, closed;
static char closed_user[37];

static void on_close(void *ctx, const char *user_id)
{
	(void)ctx;
	closed++;
	strcpy(closed_user, user_id);
}

static void setup(void)
{
	epfd = epoll_create1(0);
	ck_assert_int_ge(epfd, 0);
	closed = 0;
	closed_user[0] = '\0';
	streams_init(&ss, epfd, 4096, on_close, NULL);
}

static void teardown(void)
{
	for (struct stream *s = ss.all, *next; s; s = next) {
		next = s->all_next;
		stream_kill(&ss, s, "test over");
	}
	/* the dirty list may still hold streams killed while dirty */
	for (struct stream *s = ss.dirty, *next; s; s = next) {
		next = s->link;
		s->link = ss.dead;
		ss.dead = s;
	}
	ss.dirty = NULL;
	streams_free_dead(&ss);
	streams_fini(&ss);
	close(epfd);
}

/* A registered stream of user that has seen epoch.last_seq; *peer is the other end (nginx's). */
static struct stream *open_stream_at(const char *user, int32_t epoch, int64_t last_seq, int *peer)
{
	struct sse_id last = { epoch, last_seq };
	int sv[2];
	struct stream *s;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	s = stream_new(sv[0], 7, user, 1, INT64_MAX, &last);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(streams_add(&ss, s, 2000, 0), 0);
	ck_assert_int_eq(s->catching_up, 1);
	*peer = sv[1];
	return s;
}

/* The same in epoch 1, the one every page below is in unless it says. */
static struct stream *open_stream(const char *user, int64_t last_seq, int *peer)
{
	return open_stream_at(user, last_seq < 0 ? 0 : 1, last_seq, peer);
}

/* Writes every dirty stream's queue, as the hub's loop does. */
static void flush_dirty(void)
{
	struct stream *list = ss.dirty;

	ss.dirty = NULL;
	while (list) {
		struct stream *s = list;
		list = s->link;
		s->dirty = 0;
		if (s->dead) {
			s->link = ss.dead;
			ss.dead = s;
			continue;
		}
		stream_flush(&ss, s, 0);
	}
}

/*
 * What nginx got on peer: the content of the STDOUT records for request 7,
 * concatenated; *ended is set when END_REQUEST came. The caller frees it.
 */
static char *received(int peer, int *ended)
{
	static unsigned char raw[1 << 20];
	size_t len = 0, at = 0, out_len = 0;
	char *out;
	ssize_t n;

	flush_dirty();
	while ((n = read(peer, raw + len, sizeof(raw) - len)) > 0)
		len += (size_t)n;
	out = malloc(len + 1);
	ck_assert_ptr_nonnull(out);
	if (ended)
		*ended = 0;
	while (at + FCGI_HEADER_LEN <= len) {
		const unsigned char *h = raw + at;
		size_t clen = ((size_t)h[4] << 8) | h[5];
		ck_assert_int_eq(h[0], 1);
		ck_assert_int_eq((h[2] << 8) | h[3], 7);
		ck_assert_uint_le(at + FCGI_HEADER_LEN + clen + h[6], len);
		if (h[1] == 6) {
			memcpy(out + out_len, h + FCGI_HEADER_LEN, clen);
			out_len += clen;
		} else if (h[1] == 3 && ended) {
			*ended = 1;
		}
		at += FCGI_HEADER_LEN + clen + h[6];
	}
	ck_assert_uint_eq(at, len);	/* whole records only */
	out[out_len] = '\0';
	return out;
}

/* Skips the headers and retry: line that open every stream; returns what follows. */
static const char *after_open(const char *text)
{
	const char *p = strstr(text, "retry: 2000\n\n");

	ck_assert_ptr_nonnull(p);
	return p + strlen("retry: 2000\n\n");
}

static void event(struct stream_user *u, int64_t seq, const char *type, const char *data)
{
	delivery_event(&ss, u, 1, seq, type, strlen(type), data, strlen(data));
}

static struct replay_row row_at(int32_t epoch, int64_t seq, const char *type, const char *data)
{
	struct replay_row r = { epoch, seq, type, strlen(type), data, strlen(data) };
	return r;
}

static struct replay_row row(int64_t seq, const char *type, const char *data)
{
	return row_at(1, seq, type, data);
}

/*
 * A page of rows after a stream's last_seq, the whole rest (total = n), limit
 * 100, all in epoch 1 (the stream's last event no longer stored: the rows and
 * the head tell its history).
 */
static int page(struct stream *s, int64_t head, const struct replay_row *rows, int n)
{
	struct replay_page p = { .user_found = 1, .head = head, .head_epoch = 1, .epoch = 1, .rows = rows, .n = n,
				 .total = n, .limit = 100 };
	return delivery_page(&ss, s, &p);
}

START_TEST(test_replay_then_live_in_order_without_gaps_or_duplicates)
{
	int peer;
	struct stream *s = open_stream(USER_A, 5, &peer);
	struct replay_row rows[] = { row(6, "message.created", "{\"a\":6}"), row(7, "message.delta", "{\"a\":7}") };
	struct stream_user *u = streams_user(&ss, USER_A);
	char *got;

	ck_assert_ptr_nonnull(u);
	event(u, 6, "message.created", "{\"a\":6}");	/* arrives while catching up: left to the page */
	ck_assert_int_eq(page(s, 7, rows, 2), 0);
	ck_assert_int_eq(s->catching_up, 0);
	ck_assert_int_eq(s->last_seq, 7);
	event(u, 7, "message.delta", "{\"a\":7}");	/* the page had it: a duplicate */
	event(u, 8, "conversation.updated", "{\"a\":8}");
	event(u, 8, "conversation.updated", "{\"a\":8}");
	got = received(peer, NULL);
	ck_assert_ptr_nonnull(strstr(got, "Content-Type: text/event-stream"));
	ck_assert_str_eq(after_open(got), "id: 1.6\nevent: message.created\ndata: {\"a\":6}\n\n"
					  "id: 1.7\nevent: message.delta\ndata: {\"a\":7}\n\n"
					  "id: 1.8\nevent: conversation.updated\ndata: {\"a\":8}\n\n");
	free(got);
	close(peer);
}
END_TEST

START_TEST(test_a_gap_switches_to_catch_up_and_sends_nothing_out_of_order)
{
	int peer;
	struct stream *s = open_stream(USER_A, 3, &peer);
	struct stream_user *u = streams_user(&ss, USER_A);
	char *got;

	ck_assert_int_eq(page(s, 3, NULL, 0), 0);	/* nothing new: live */
	ck_assert_int_eq(s->catching_up, 0);
	event(u, 5, "task.updated", "{}");		/* 4 is missing */
	ck_assert_int_eq(s->catching_up, 1);
	ck_assert_int_eq(s->last_seq, 3);
	event(u, 6, "task.updated", "{}");		/* catch-up reads it, not the live path */
	got = received(peer, NULL);
	ck_assert_str_eq(after_open(got), "");
	free(got);
	{
		struct replay_row rows[] = { row(4, "a", "4"), row(5, "b", "5"), row(6, "c", "6") };
		ck_assert_int_eq(page(s, 6, rows, 3), 0);
	}
	got = received(peer, NULL);
	ck_assert_str_eq(got, "id: 1.4\nevent: a\ndata: 4\n\nid: 1.5\nevent: b\ndata: 5\n\nid: 1.6\nevent: c\ndata: 6\n\n");
	ck_assert_int_eq(s->catching_up, 0);
	free(got);
	close(peer);
}
END_TEST

START_TEST(test_without_last_event_id_a_stream_starts_at_the_head)
{
	int peer;
	struct stream *s = open_stream(USER_A, -1, &peer);
	char *got;

	ck_assert_int_eq(page(s, 42, NULL, 0), 0);
	ck_assert_int_eq(s->last_seq, 42);
	ck_assert_int_eq(s->catching_up, 0);
	event(streams_user(&ss, USER_A), 43, "x", "{}");
	got = received(peer, NULL);
	ck_assert_str_eq(after_open(got), "id: 1.42\n\nid: 1.43\nevent: x\ndata: {}\n\n");
	free(got);
	close(peer);
}
END_TEST

START_TEST(test_events_no_longer_stored_give_reset_at_the_head)
{
	int peer1, peer2;
	struct stream *pruned = open_stream(USER_A, 3, &peer1);
	struct stream *elsewhere = open_stream(USER_A, 900, &peer2);
	struct replay_row rows[] = { row(10, "a", "10") };
	char *got;

	ck_assert_int_eq(page(pruned, 12, rows, 1), 0);	/* 4..9 are gone */
	ck_assert_int_eq(pruned->last_seq, 12);
	ck_assert_int_eq(page(elsewhere, 12, NULL, 0), 0);	/* an id past the head: a lost history */
	ck_assert_int_eq(elsewhere->last_seq, 12);
	got = received(peer1, NULL);
	ck_assert_str_eq(after_open(got), "id: 1.12\nevent: reset\ndata: {\"seq\":12,\"epoch\":1,\"reason\":\"pruned\"}\n\n");
	free(got);
	got = received(peer2, NULL);
	ck_assert_str_eq(after_open(got),
			 "id: 1.12\nevent: reset\ndata: {\"seq\":12,\"epoch\":1,\"reason\":\"history\"}\n\n");
	free(got);
	/* still in catch-up: the next page, from the head, finds it live */
	ck_assert_int_eq(pruned->catching_up, 1);
	ck_assert_int_eq(page(pruned, 12, NULL, 0), 0);
	ck_assert_int_eq(pruned->catching_up, 0);
	close(peer1);
	close(peer2);
}
END_TEST

START_TEST(test_a_full_page_or_a_byte_capped_page_keeps_catching_up)
{
	int peer;
	struct stream *s = open_stream(USER_A, 0, &peer);
	struct replay_row rows[] = { row(1, "a", "1"), row(2, "b", "2") };
	struct replay_page full = { .user_found = 1, .head = 9, .head_epoch = 1, .epoch = 1, .rows = rows, .n = 2,
				    .total = 2, .limit = 2 };
	struct replay_page capped = { .user_found = 1, .head = 9, .head_epoch = 1, .epoch = 1, .rows = rows, .n = 2,
				      .total = 5, .limit = 100 };
	char *got;

	ck_assert_int_eq(delivery_page(&ss, s, &full), 0);
	ck_assert_int_eq(s->catching_up, 1);		/* the page was full: more may follow */
	ck_assert_int_eq(s->last_seq, 2);
	s->last_seq = 0;
	free(received(peer, NULL));
	ck_assert_int_eq(delivery_page(&ss, s, &capped), 0);
	ck_assert_int_eq(s->catching_up, 1);		/* 3 more were left out for room */
	got = received(peer, NULL);
	ck_assert_str_eq(got, "id: 1.1\nevent: a\ndata: 1\n\nid: 1.2\nevent: b\ndata: 2\n\n");
	free(got);
	close(peer);
}
END_TEST

START_TEST(test_the_queue_limit_leaves_events_to_catch_up_and_one_big_event_fits_alone)
{
	int peer;
	struct stream *s = open_stream(USER_A, 0, &peer);
	struct stream_user *u = streams_user(&ss, USER_A);
	char *big = malloc(10000), *got;

	memset(big, 'x', 9999);
	big[9999] = '\0';
	free(received(peer, NULL));				/* the opening is written */
	ck_assert_int_eq(page(s, 0, NULL, 0), 0);
	ck_assert_int_eq(s->catching_up, 0);
	event(u, 1, "message.updated", big);		/* bigger than queue_max, on an empty queue */
	ck_assert_int_eq(s->last_seq, 1);
	event(u, 2, "message.delta", "{}");		/* does not fit behind it */
	ck_assert_int_eq(s->catching_up, 1);
	ck_assert_int_eq(s->last_seq, 1);
	ck_assert_uint_eq(delivery_page_room(&ss, s), 0);	/* no room for a page yet */
	got = received(peer, NULL);
	ck_assert_uint_eq(strlen(got), strlen("id: 1.1\nevent: message.updated\ndata: \n\n") + 9999);
	ck_assert_uint_eq(delivery_page_room(&ss, s), 2048);	/* half of queue_max, once written */
	free(got);
	free(big);
	close(peer);
}
END_TEST

START_TEST(test_a_catch_up_page_stops_at_the_low_water_mark)
{
	int peer;
	struct stream *s = open_stream(USER_A, 0, &peer);
	char data[1500];
	struct replay_row rows[4];

	memset(data, 'y', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	for (int i = 0; i < 4; i++)
		rows[i] = row(i + 1, "a", data);
	free(received(peer, NULL));
	ck_assert_int_eq(page(s, 4, rows, 4), 1);	/* two fit below 2048 queued; the rest waits */
	ck_assert_int_eq(s->last_seq, 2);
	ck_assert_int_eq(s->catching_up, 1);
	free(received(peer, NULL));
	ck_assert_int_eq(page(s, 4, rows + 2, 2), 0);
	ck_assert_int_eq(s->last_seq, 4);
	ck_assert_int_eq(s->catching_up, 0);
	close(peer);
}
END_TEST

START_TEST(test_events_go_to_their_users_streams_only)
{
	int pa1, pa2, pb;
	struct stream *a1 = open_stream(USER_A, 0, &pa1), *a2 = open_stream(USER_A, 0, &pa2);
	struct stream *b = open_stream(USER_B, 0, &pb);
	char *got;

	page(a1, 0, NULL, 0);
	page(a2, 0, NULL, 0);
	page(b, 0, NULL, 0);
	event(streams_user(&ss, USER_A), 1, "conversation.created", "{\"who\":\"a\"}");
	for (int i = 0; i < 2; i++) {
		got = received(i ? pa2 : pa1, NULL);
		ck_assert_str_eq(after_open(got), "id: 1.1\nevent: conversation.created\ndata: {\"who\":\"a\"}\n\n");
		free(got);
	}
	got = received(pb, NULL);
	ck_assert_str_eq(after_open(got), "");
	free(got);
	delivery_missing(&ss, streams_user(&ss, USER_A));	/* an event without its data */
	ck_assert_int_eq(a1->catching_up, 1);
	ck_assert_int_eq(a2->catching_up, 1);
	ck_assert_int_eq(b->catching_up, 0);
	close(pa1);
	close(pa2);
	close(pb);
}
END_TEST

START_TEST(test_a_deleted_user_or_a_gone_client_ends_the_stream)
{
	int peer1, peer2, ended;
	struct stream *s = open_stream(USER_A, 0, &peer1);
	struct replay_page gone = { .user_found = 0 };
	char *got, scratch[16];

	ck_assert_int_eq(delivery_page(&ss, s, &gone), 0);
	ck_assert_int_eq(closed, 1);
	ck_assert_str_eq(closed_user, USER_A);
	ck_assert_ptr_null(streams_user(&ss, USER_A));
	got = received(peer1, &ended);
	free(got);
	ck_assert_int_eq(read(peer1, scratch, sizeof(scratch)), 0);	/* closed */
	close(peer1);

	s = open_stream(USER_B, 0, &peer2);
	close(peer2);					/* the client went away */
	stream_readable(&ss, s);
	ck_assert_int_eq(closed, 2);
	ck_assert_int_eq(s->dead, 1);
	ck_assert_ptr_null(streams_user(&ss, USER_B));
}
END_TEST

START_TEST(test_stream_end_sends_end_request)
{
	int peer, ended;
	struct stream *s = open_stream(USER_A, -1, &peer);
	char *got;

	page(s, 1, NULL, 0);
	stream_end(&ss, s, "session ended");
	got = received(peer, &ended);
	ck_assert_int_eq(ended, 1);
	ck_assert_str_eq(after_open(got), "id: 1.1\n\n");
	free(got);
	close(peer);
}
END_TEST

/* A page after a failover: the current epoch is 2; after_epoch is the stored epoch of the stream's last seq. */
static int page_after_failover(struct stream *s, int64_t head, int32_t after_epoch, const struct replay_row *rows,
			       int n)
{
	struct replay_page p = { .user_found = 1, .head = head, .head_epoch = 2, .epoch = 2,
				 .after_epoch = after_epoch, .rows = rows, .n = n, .total = n, .limit = 100 };
	return delivery_page(&ss, s, &p);
}

START_TEST(test_a_tab_whose_events_survived_a_failover_resumes_in_the_new_epoch)
{
	int peer;
	struct stream *s = open_stream_at(USER_A, 1, 100, &peer);
	struct replay_row rows[] = { row_at(2, 101, "task.updated", "{}") };
	char *got;

	free(received(peer, NULL));
	ck_assert_int_eq(page_after_failover(s, 101, 1, rows, 1), 0);	/* event 100 is still 1.100 */
	ck_assert_int_eq(s->catching_up, 0);
	ck_assert_int_eq(s->last_epoch, 2);
	delivery_event(&ss, streams_user(&ss, USER_A), 2, 102, "task.deleted", 12, "{}", 2);
	got = received(peer, NULL);
	ck_assert_str_eq(got, "id: 2.101\nevent: task.updated\ndata: {}\n\nid: 2.102\nevent: task.deleted\ndata: {}\n\n");
	free(got);
	close(peer);
}
END_TEST

START_TEST(test_a_tab_from_a_lost_history_gets_reset_never_a_skip)
{
	int p1, p2, p3;
	struct stream *reused = open_stream_at(USER_A, 1, 100, &p1);	/* 100 was lost, and is another event now */
	struct stream *ahead = open_stream_at(USER_A, 1, 104, &p2);	/* 101..104 lost, not yet reused */
	struct stream *pruned = open_stream_at(USER_A, 1, 98, &p3);	/* 98 pruned since; 99 is from epoch 2 */
	struct replay_row rows[] = { row_at(2, 101, "task.updated", "{}") };
	struct replay_row after98[] = { row_at(2, 99, "x", "{}"), row_at(2, 100, "y", "{}"), row_at(2, 101, "z", "{}") };
	const char *want = "id: 2.101\nevent: reset\ndata: {\"seq\":101,\"epoch\":2,\"reason\":\"history\"}\n\n";
	char *got;

	for (int i = 0; i < 3; i++)
		free(received(i == 0 ? p1 : i == 1 ? p2 : p3, NULL));
	ck_assert_int_eq(page_after_failover(reused, 101, 2, rows, 1), 0);
	ck_assert_int_eq(page_after_failover(ahead, 101, 0, NULL, 0), 0);
	ck_assert_int_eq(page_after_failover(pruned, 101, 0, after98, 3), 0);
	for (int i = 0; i < 3; i++) {
		got = received(i == 0 ? p1 : i == 1 ? p2 : p3, NULL);
		ck_assert_str_eq(got, want);
		free(got);
	}
	ck_assert_int_eq(reused->last_epoch, 2);
	ck_assert_int_eq(reused->last_seq, 101);
	/* and from the reset on, the stream is in the new history */
	ck_assert_int_eq(page_after_failover(reused, 101, 2, NULL, 0), 0);
	ck_assert_int_eq(reused->catching_up, 0);
	close(p1);
	close(p2);
	close(p3);
}
END_TEST

START_TEST(test_a_bare_seq_means_the_current_epoch_and_gets_bare_ids)
{
	int p1, p2, p3, p4;
	struct stream *current = open_stream_at(USER_A, 0, 5, &p1);	/* Last-Event-ID: 5 */
	struct stream *older = open_stream_at(USER_A, 0, 5, &p2);
	struct stream *none = open_stream_at(USER_A, 7, 0, &p3);	/* saw nothing: any epoch will do */
	struct stream *full = open_stream_at(USER_A, 2, 5, &p4);	/* Last-Event-ID: 2.5 */
	struct replay_row rows[] = { row_at(2, 6, "a", "{}") };
	struct replay_row from1[] = { row_at(1, 1, "a", "{}") };
	char *got;

	for (int i = 0; i < 4; i++)
		free(received(i == 0 ? p1 : i == 1 ? p2 : i == 2 ? p3 : p4, NULL));
	/* a client that sent a bare seq reads ids as numbers: its ids go out bare */
	ck_assert_int_eq(page_after_failover(current, 6, 2, rows, 1), 0);
	ck_assert_int_eq(page_after_failover(full, 6, 2, rows, 1), 0);
	delivery_event(&ss, streams_user(&ss, USER_A), 2, 7, "b", 1, "{}", 2);
	got = received(p1, NULL);
	ck_assert_str_eq(got, "id: 6\nevent: a\ndata: {}\n\nid: 7\nevent: b\ndata: {}\n\n");
	free(got);
	got = received(p4, NULL);
	ck_assert_str_eq(got, "id: 2.6\nevent: a\ndata: {}\n\nid: 2.7\nevent: b\ndata: {}\n\n");
	free(got);
	ck_assert_int_eq(current->last_epoch, 2);
	ck_assert_int_eq(page_after_failover(older, 6, 1, rows, 1), 0);	/* 5 is from epoch 1, not the current */
	got = received(p2, NULL);
	ck_assert_str_eq(got, "id: 6\nevent: reset\ndata: {\"seq\":6,\"epoch\":2,\"reason\":\"history\"}\n\n");
	free(got);
	ck_assert_int_eq(page_after_failover(none, 1, 0, from1, 1), 0);
	got = received(p3, NULL);
	ck_assert_str_eq(got, "id: 1.1\nevent: a\ndata: {}\n\n");
	free(got);
	close(p1);
	close(p2);
	close(p3);
	close(p4);
}
END_TEST

Suite *delivery_suite(void)
{
	Suite *s = suite_create("delivery");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_replay_then_live_in_order_without_gaps_or_duplicates);
	tcase_add_test(tc, test_a_gap_switches_to_catch_up_and_sends_nothing_out_of_order);
	tcase_add_test(tc, test_without_last_event_id_a_stream_starts_at_the_head);
	tcase_add_test(tc, test_events_no_longer_stored_give_reset_at_the_head);
	tcase_add_test(tc, test_a_full_page_or_a_byte_capped_page_keeps_catching_up);
	tcase_add_test(tc, test_the_queue_limit_leaves_events_to_catch_up_and_one_big_event_fits_alone);
	tcase_add_test(tc, test_a_catch_up_page_stops_at_the_low_water_mark);
	tcase_add_test(tc, test_events_go_to_their_users_streams_only);
	tcase_add_test(tc, test_a_deleted_user_or_a_gone_client_ends_the_stream);
	tcase_add_test(tc, test_stream_end_sends_end_request);
	tcase_add_test(tc, test_a_tab_whose_events_survived_a_failover_resumes_in_the_new_epoch);
	tcase_add_test(tc, test_a_tab_from_a_lost_history_gets_reset_never_a_skip);
	tcase_add_test(tc, test_a_bare_seq_means_the_current_epoch_and_gets_bare_ids);
	suite_add_tcase(s, tc);
	return s;
}
