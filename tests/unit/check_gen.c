/*
 * check_gen: worker/gen — a reply's flush bookkeeping: what each flush
 * carries, what is kept when text arrives during a flush or a flush is not
 * written (no text lost, none doubled), statuses set meanwhile, the whole text
 * with a final status, the cap of final statuses per flush, reply_max_chars.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/gen.h"
#include "suites.h"

static int finished_calls;
static char finished_id[37];

static void finished(void *ctx, const struct gen *g)
{
	(void)ctx;
	finished_calls++;
	strcpy(finished_id, g->id);
}

static struct gen *make(const char *id, long content_chars)
{
	struct gen *g = gen_new();

	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(g->transfer.kind, TRANSFER_REPLY);
	strcpy(g->id, id);
	strcpy(g->user_id, "u");
	g->content_chars = content_chars;
	g->whole = content_chars == 0;
	finished_calls = 0;
	return g;
}

static void text(struct gen *g, const char *s)
{
	gen_take_text(g, s, strlen(s), 1000);
}

/* The job of id in batch. */
static struct json_object *job(struct json_object *batch, const char *id)
{
	for (size_t i = 0; i < json_object_array_length(batch); i++) {
		struct json_object *o = json_object_array_get_idx(batch, i), *v;
		if (json_object_object_get_ex(o, "id", &v) && !strcmp(json_object_get_string(v), id))
			return o;
	}
	return NULL;
}

static const char *field(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

START_TEST(test_text_arriving_during_a_flush_stays_for_the_next)
{
	struct gen *g = make("a", 0);
	struct json_object *b;

	text(g, "Hello ");
	ck_assert_int_eq(g->dirty, 1);
	ck_assert_int_eq(g->first_token_ms, 1000);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(field(job(b, "a"), "text"), "Hello ");
	ck_assert_str_eq(field(job(b, "a"), "offset"), "0");
	json_object_put(b);
	text(g, "wörld");			/* arrives while the flush is in flight */
	gen_flush_written(g, finished, NULL);
	ck_assert_int_eq(g->content_chars, 6);
	ck_assert_str_eq(g->pending.data, "wörld");
	ck_assert_int_eq(g->pending_chars, 5);
	ck_assert_int_eq(g->dirty, 1);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "text"), "wörld");
	ck_assert_str_eq(field(job(b, "a"), "offset"), "6");	/* characters, not bytes */
	json_object_put(b);
	gen_flush_written(g, finished, NULL);
	ck_assert_int_eq(g->content_chars, 11);
	ck_assert_int_eq(g->dirty, 0);
	ck_assert_ptr_null(gen_flush_batch(g, NULL, 0));	/* nothing new */
	ck_assert_int_eq(finished_calls, 0);
	gen_free(g);
}
END_TEST

START_TEST(test_a_flush_not_written_goes_out_again_at_the_same_offset)
{
	struct gen *g = make("a", 40);
	struct json_object *b;

	text(g, "abc");
	b = gen_flush_batch(g, NULL, 0);
	json_object_put(b);
	text(g, "def");
	gen_flush_forget(g);			/* lost: maybe written, maybe not */
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "text"), "abcdef");
	ck_assert_str_eq(field(job(b, "a"), "offset"), "40");	/* the database appends only at 40 */
	json_object_put(b);
	gen_flush_written(g, finished, NULL);
	ck_assert_int_eq(g->content_chars, 46);
	ck_assert_uint_eq(g->pending.len, 0);
	gen_free(g);
}
END_TEST

START_TEST(test_a_status_set_during_a_flush_is_written_by_the_next)
{
	struct gen *g = make("a", 0);
	struct json_object *b;

	gen_set_status(g, "pending", NULL);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "status"), "pending");
	json_object_put(b);
	text(g, "x");
	gen_set_status(g, "streaming", NULL);	/* while pending is in flight */
	gen_flush_written(g, finished, NULL);
	ck_assert_str_eq(g->db_status, "pending");
	ck_assert_str_eq(g->status, "streaming");
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "status"), "streaming");
	json_object_put(b);
	gen_flush_written(g, finished, NULL);
	ck_assert_ptr_null(g->status);
	ck_assert_str_eq(g->db_status, "streaming");
	gen_free(g);
}
END_TEST

START_TEST(test_a_final_status_carries_the_whole_text_and_frees_the_chunks)
{
	struct gen *g = make("a", 0);
	struct json_object *b;

	text(g, "one ");
	json_object_put(gen_flush_batch(g, NULL, 0));
	gen_flush_written(g, finished, NULL);
	text(g, "two");
	gen_set_status(g, "completed", NULL);
	ck_assert_int_eq(g->final, 1);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "text"), "two");
	ck_assert_str_eq(field(job(b, "a"), "content"), "one two");
	ck_assert_str_eq(field(job(b, "a"), "status"), "completed");
	json_object_put(b);
	gen_flush_written(g, finished, NULL);
	ck_assert_int_eq(finished_calls, 1);
	ck_assert_str_eq(finished_id, "a");
	ck_assert_int_eq(g->chunk_rows, 2);
	ck_assert_int_eq(g->dirty, 0);
	gen_free(g);
}
END_TEST

START_TEST(test_a_recovered_reply_lets_the_database_fold_its_chunks)
{
	struct gen *g = make("a", 10);		/* had text when claimed: not all of it is here */
	struct json_object *b;

	text(g, "more");
	gen_set_status(g, "stopped", NULL);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_ptr_null(field(job(b, "a"), "content"));
	json_object_put(b);
	gen_free(g);
}
END_TEST

START_TEST(test_at_most_four_final_statuses_per_flush)
{
	struct gen *list = NULL;
	struct json_object *b;
	int with_status = 0;
	char id[8];

	for (int i = 0; i < 6; i++) {
		struct gen *g;
		snprintf(id, sizeof(id), "g%d", i);
		g = make(id, 0);
		if (i > 0)
			text(g, "t");			/* g0 has nothing but its status */
		gen_set_status(g, "completed", NULL);
		g->next = list;
		list = g;
	}
	b = gen_flush_batch(list, NULL, 0);
	ck_assert_uint_eq(json_object_array_length(b), 5);	/* 4 finals, and one's text without it */
	for (size_t i = 0; i < json_object_array_length(b); i++)
		with_status += field(json_object_array_get_idx(b, i), "status") != NULL;
	ck_assert_int_eq(with_status, GEN_FINALS_PER_FLUSH);
	json_object_put(b);
	gen_flush_written(list, finished, NULL);
	ck_assert_int_eq(finished_calls, 4);
	b = gen_flush_batch(list, NULL, 0);
	ck_assert_uint_eq(json_object_array_length(b), 2);	/* the two that waited */
	json_object_put(b);
	while (list) {
		struct gen *g = list;
		list = g->next;
		gen_free(g);
	}
}
END_TEST

START_TEST(test_only_and_skip_suspects_pick_the_gens_of_a_flush)
{
	struct gen *a = make("a", 0), *b = make("b", 0);
	struct json_object *batch;

	a->next = b;
	text(a, "x");
	text(b, "y");
	b->suspect = 1;
	batch = gen_flush_batch(a, b, 0);
	ck_assert_uint_eq(json_object_array_length(batch), 1);
	ck_assert_ptr_nonnull(job(batch, "b"));
	json_object_put(batch);
	gen_flush_forget(a);
	batch = gen_flush_batch(a, NULL, 1);
	ck_assert_uint_eq(json_object_array_length(batch), 1);
	ck_assert_ptr_nonnull(job(batch, "a"));
	json_object_put(batch);
	gen_free(a);
	gen_free(b);
}
END_TEST

START_TEST(test_reply_max_chars_cuts_at_a_character)
{
	struct gen *g = make("a", 0);

	g->max_chars = 5;
	text(g, "ab");
	text(g, "cdé€f");			/* 3 more fit: c, d, é */
	ck_assert_int_eq(g->cut, 1);
	ck_assert_str_eq(g->pending.data, "abcdé");
	ck_assert_int_eq(g->pending_chars, 5);
	text(g, "more");
	ck_assert_str_eq(g->pending.data, "abcdé");
	gen_free(g);
}
END_TEST

START_TEST(test_a_deleted_message_ends_its_gen)
{
	struct gen *g = make("a", 0);

	text(g, "x");
	gen_flush_gone(g, "a");
	ck_assert_int_eq(g->final, 1);
	ck_assert_int_eq(g->stop, 1);
	ck_assert_int_eq(g->dirty, 0);
	ck_assert_ptr_null(gen_flush_batch(g, NULL, 0));
	ck_assert_ptr_eq(gen_find(g, "a"), g);
	ck_assert_ptr_null(gen_find(g, "b"));
	gen_free(g);
}
END_TEST

START_TEST(test_reasoning_has_its_own_offsets_and_the_final_says_usage_and_why)
{
	struct gen *g = make("a", 0);
	struct json_object *b, *u;

	gen_take_reasoning(g, "Let me ", 7, 500);
	ck_assert_int_eq(g->first_token_ms, 500);	/* the first token of either part */
	text(g, "Hi");
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "reasoning"), "Let me ");
	ck_assert_str_eq(field(job(b, "a"), "reasoning_offset"), "0");
	ck_assert_str_eq(field(job(b, "a"), "text"), "Hi");
	json_object_put(b);
	gen_take_reasoning(g, "thínk", 6, 600);		/* during the flush */
	gen_flush_written(g, finished, NULL);
	ck_assert_int_eq(g->reasoning_chars, 7);
	ck_assert_int_eq(g->content_chars, 2);
	ck_assert_str_eq(g->pending_reasoning.data, "thínk");
	g->has_usage = 1;
	g->input_tokens = 12;
	g->output_tokens = 30;
	strcpy(g->finish_reason, "length");
	gen_set_status(g, "completed", NULL);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "reasoning"), "thínk");
	ck_assert_str_eq(field(job(b, "a"), "reasoning_offset"), "7");
	ck_assert_str_eq(field(job(b, "a"), "text"), "");
	ck_assert_str_eq(field(job(b, "a"), "finish_reason"), "length");
	ck_assert(json_object_object_get_ex(job(b, "a"), "usage", &u));
	ck_assert_str_eq(json_object_to_json_string_ext(u, JSON_C_TO_STRING_PLAIN), "{\"input_tokens\":12,\"output_tokens\":30}");
	json_object_put(b);
	gen_flush_written(g, finished, NULL);
	ck_assert_int_eq(g->reasoning_chars, 12);
	ck_assert_int_eq(g->dirty, 0);
	ck_assert_int_eq(finished_calls, 1);
	gen_free(g);
}
END_TEST

/* Flushes everything of g and says it was written. */
static void flush_all(struct gen *g)
{
	json_object_put(gen_flush_batch(g, NULL, 0));
	gen_flush_written(g, finished, NULL);
}

START_TEST(test_text_lost_in_a_failover_goes_out_again_from_where_the_database_stands)
{
	struct gen *g = make("a", 0);
	struct json_object *b;

	text(g, "naïve ");
	flush_all(g);
	text(g, "café ");
	flush_all(g);				/* 11 characters written, as far as the worker knows */
	text(g, "au lait");			/* not flushed yet */
	ck_assert_int_eq(gen_rewind(g, 11, 0), 0);	/* the database has it all: nothing to do */
	ck_assert_int_eq(g->content_chars, 11);
	ck_assert_int_eq(gen_rewind(g, 3, 0), 0);	/* a failover kept only "naï" */
	ck_assert_int_eq(g->content_chars, 3);
	ck_assert_str_eq(g->pending.data, "ve café au lait");
	ck_assert_int_eq(g->pending_chars, 15);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "offset"), "3");
	ck_assert_str_eq(field(job(b, "a"), "text"), "ve café au lait");
	json_object_put(b);
	gen_flush_written(g, finished, NULL);
	ck_assert_int_eq(g->content_chars, 18);
	gen_set_status(g, "completed", NULL);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "content"), "naïve café au lait");	/* no text twice */
	json_object_put(b);
	gen_free(g);
}
END_TEST

START_TEST(test_without_its_own_copy_a_gen_goes_on_from_what_is_stored)
{
	struct gen *g = make("a", 40);		/* recovered with text: the database folds it */
	struct json_object *b;

	text(g, "abcdef");
	flush_all(g);
	g->reasoning_chars = 9;
	ck_assert_int_eq(gen_rewind(g, 42, 5), 4 + 4);	/* "cdef" and 4 of the reasoning are gone */
	ck_assert_int_eq(g->content_chars, 42);
	ck_assert_int_eq(g->reasoning_chars, 5);
	text(g, "g");
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "offset"), "42");
	ck_assert_str_eq(field(job(b, "a"), "text"), "g");
	json_object_put(b);
	gen_free(g);
}
END_TEST

START_TEST(test_a_flush_whose_commit_landed_but_whose_answer_was_lost_is_not_sent_again)
{
	struct gen *g = make("a", 0);
	struct json_object *b;

	text(g, "héllo ");
	flush_all(g);				/* 6 characters */
	text(g, "wörld ");
	json_object_put(gen_flush_batch(g, NULL, 0));	/* in flight... */
	text(g, "again");			/* ...while more arrives */
	gen_flush_forget(g);			/* the connection broke: the answer never came */
	ck_assert_int_eq(gen_rewind(g, 12, 0), 0);	/* but the database has "héllo wörld " */
	ck_assert_int_eq(g->content_chars, 12);
	ck_assert_str_eq(g->pending.data, "again");
	ck_assert_int_eq(g->pending_chars, 5);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "offset"), "12");
	ck_assert_str_eq(field(job(b, "a"), "text"), "again");
	json_object_put(b);
	gen_flush_written(g, finished, NULL);
	gen_set_status(g, "completed", NULL);
	b = gen_flush_batch(g, NULL, 0);
	ck_assert_str_eq(field(job(b, "a"), "content"), "héllo wörld again");
	json_object_put(b);
	gen_free(g);
}
END_TEST

Suite *gen_suite(void)
{
	Suite *s = suite_create("gen");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_text_arriving_during_a_flush_stays_for_the_next);
	tcase_add_test(tc, test_a_flush_not_written_goes_out_again_at_the_same_offset);
	tcase_add_test(tc, test_a_status_set_during_a_flush_is_written_by_the_next);
	tcase_add_test(tc, test_a_final_status_carries_the_whole_text_and_frees_the_chunks);
	tcase_add_test(tc, test_a_recovered_reply_lets_the_database_fold_its_chunks);
	tcase_add_test(tc, test_at_most_four_final_statuses_per_flush);
	tcase_add_test(tc, test_only_and_skip_suspects_pick_the_gens_of_a_flush);
	tcase_add_test(tc, test_reply_max_chars_cuts_at_a_character);
	tcase_add_test(tc, test_a_deleted_message_ends_its_gen);
	tcase_add_test(tc, test_reasoning_has_its_own_offsets_and_the_final_says_usage_and_why);
	tcase_add_test(tc, test_text_lost_in_a_failover_goes_out_again_from_where_the_database_stands);
	tcase_add_test(tc, test_without_its_own_copy_a_gen_goes_on_from_what_is_stored);
	tcase_add_test(tc, test_a_flush_whose_commit_landed_but_whose_answer_was_lost_is_not_sent_again);
	suite_add_tcase(s, tc);
	return s;
}
