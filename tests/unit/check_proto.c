/*
 * check_proto: the four chat protocols (worker/proto_*.c through
 * worker/upstream_sse.c): a real-shaped stream of each, fed whole, byte by
 * byte and in random splits, gives the same answer, reasoning, finish reason
 * and usage; their error events fail the reply with the upstream's words; and
 * the request each builds (url, headers, body) is what its API expects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/proto.h"
#include "worker/upstream_sse.h"
#include "suites.h"

/* What a parser ended with, as one comparable line. */
static void outcome(struct upstream_sse *p, char *out, size_t len)
{
	snprintf(out, len, "content=[%s] reasoning=[%s] finish=%s usage=%d/%ld/%ld done=%d failed=%d error=[%s]",
		 p->content.data ? p->content.data : "", p->reasoning.data ? p->reasoning.data : "", p->finish_reason,
		 p->has_usage, p->input_tokens, p->output_tokens, p->done, p->failed, p->error);
}

/* Parses stream split at the sorted offsets cuts[0..ncuts), then finishes. */
static void parse(enum upstream_protocol proto, const char *stream, const size_t *cuts, int ncuts, char *out,
		  size_t len)
{
	struct upstream_sse p;
	size_t at = 0, n = strlen(stream);

	upstream_sse_init(&p);
	p.proto = proto;
	for (int k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : n;
		upstream_sse_feed(&p, stream + at, end - at);
		at = end;
	}
	upstream_sse_finish(&p);
	outcome(&p, out, len);
	upstream_sse_free(&p);
}

/* The stream must give want whole, byte by byte, and in 300 random splits. */
static void check_every_split(enum upstream_protocol proto, const char *stream, const char *want)
{
	size_t n = strlen(stream), *cuts = malloc(sizeof(size_t) * (n + 1));
	char got[2048];

	parse(proto, stream, NULL, 0, got, sizeof(got));
	ck_assert_str_eq(got, want);
	for (size_t i = 0; i < n; i++)
		cuts[i] = i + 1;
	parse(proto, stream, cuts, (int)n, got, sizeof(got));
	ck_assert_msg(!strcmp(got, want), "byte by byte: %s", got);
	srand(42);
	for (int round = 0; round < 300; round++) {
		int k = 1 + rand() % 8;
		for (int i = 0; i < k; i++)
			cuts[i] = (size_t)rand() % (n + 1);
		for (int i = 1; i < k; i++)
			for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
				size_t t = cuts[j];
				cuts[j] = cuts[j - 1];
				cuts[j - 1] = t;
			}
		parse(proto, stream, cuts, k, got, sizeof(got));
		ck_assert_msg(!strcmp(got, want), "split %d: %s", round, got);
	}
	free(cuts);
}

START_TEST(test_openai_chat_answer_reasoning_usage_and_length)
{
	check_every_split(PROTO_OPENAI_CHAT,
		"data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
		"\"reasoning_content\":\"Let me \"}}]}\n\n"
		": keep-alive\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"think.\"}}]}\r\n\r\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u4e16\\u754c\"},\"finish_reason\":\"length\"}]}\n\n"
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}\n\n"
		"data: [DONE]\n\n",
		"content=[Hello 世界] reasoning=[Let me think.] finish=length usage=1/12/34 done=1 failed=0 error=[]");
}
END_TEST

START_TEST(test_openai_responses_typed_events)
{
	check_every_split(PROTO_OPENAI_RESPONSES,
		"event: response.created\n"
		"data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\"}}\n\n"
		"event: response.reasoning_summary_text.delta\n"
		"data: {\"type\":\"response.reasoning_summary_text.delta\",\"item_id\":\"rs_1\",\"summary_index\":0,"
		"\"delta\":\"Thinking\"}\n\n"
		"event: response.output_text.delta\n"
		"data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"delta\":\"Hi\"}\n\n"
		"event: response.output_text.delta\n"
		"data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"delta\":\" there\"}\n\n"
		"event: response.output_text.done\n"
		"data: {\"type\":\"response.output_text.done\",\"text\":\"Hi there\"}\n\n"
		"event: response.completed\n"
		"data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\","
		"\"usage\":{\"input_tokens\":5,\"output_tokens\":7,\"total_tokens\":12}}}\n\n",
		"content=[Hi there] reasoning=[Thinking] finish=stop usage=1/5/7 done=1 failed=0 error=[]");
	check_every_split(PROTO_OPENAI_RESPONSES,
		"event: response.output_text.delta\n"
		"data: {\"type\":\"response.output_text.delta\",\"delta\":\"cut\"}\n\n"
		"event: response.incomplete\n"
		"data: {\"type\":\"response.incomplete\",\"response\":{\"incomplete_details\":{\"reason\":"
		"\"max_output_tokens\"},\"usage\":{\"input_tokens\":3,\"output_tokens\":16}}}\n\n",
		"content=[cut] reasoning=[] finish=length usage=1/3/16 done=1 failed=0 error=[]");
}
END_TEST

START_TEST(test_anthropic_event_lines_thinking_and_ping)
{
	check_every_split(PROTO_ANTHROPIC,
		"event: message_start\n"
		"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
		"\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
		"event: content_block_start\n"
		"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Hmm\"}}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQ\"}}\n\n"
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
		"event: ping\ndata: {\"type\": \"ping\"}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
		"event: message_delta\n"
		"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},"
		"\"usage\":{\"output_tokens\":15}}\n\n"
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		"content=[Hello] reasoning=[Hmm] finish=length usage=1/25/15 done=1 failed=0 error=[]");
}
END_TEST

START_TEST(test_gemini_thought_parts_and_the_end_at_close)
{
	check_every_split(PROTO_GEMINI,
		"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Pondering\",\"thought\": true}],"
		"\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9}}\r\n\r\n"
		"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi \"}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n"
		"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"you\"}],\"role\": \"model\"},"
		"\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,"
		"\"candidatesTokenCount\": 3,\"thoughtsTokenCount\": 4,\"totalTokenCount\": 16}}\r\n\r\n",
		"content=[Hi you] reasoning=[Pondering] finish=stop usage=1/9/7 done=1 failed=0 error=[]");
	/* closed before any finishReason: not done (the worker fails the reply) */
	check_every_split(PROTO_GEMINI,
		"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\r\n\r\n",
		"content=[Hi] reasoning=[] finish= usage=0/0/0 done=0 failed=0 error=[]");
}
END_TEST

START_TEST(test_error_events_fail_with_the_upstreams_words)
{
	check_every_split(PROTO_ANTHROPIC,
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n"
		"event: error\n"
		"data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
		"content=[par] reasoning=[] finish= usage=0/0/0 done=0 failed=1 error=[upstream error: Overloaded]");
	check_every_split(PROTO_OPENAI_RESPONSES,
		"event: response.failed\n"
		"data: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\","
		"\"message\":\"boom\"}}}\n\n",
		"content=[] reasoning=[] finish= usage=0/0/0 done=0 failed=1 error=[upstream error: boom]");
	check_every_split(PROTO_OPENAI_RESPONSES,
		"event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}\n\n",
		"content=[] reasoning=[] finish= usage=0/0/0 done=0 failed=1 error=[upstream error: slow down]");
	check_every_split(PROTO_GEMINI,
		"data: {\"error\": {\"code\": 500,\"message\": \"Internal error\",\"status\": \"INTERNAL\"}}\r\n\r\n",
		"content=[] reasoning=[] finish= usage=0/0/0 done=0 failed=1 error=[upstream error: Internal error]");
	check_every_split(PROTO_OPENAI_CHAT,
		"data: {\"error\":{\"message\":\"context too long\",\"type\":\"invalid_request_error\"}}\n\n",
		"content=[] reasoning=[] finish= usage=0/0/0 done=0 failed=1 error=[upstream error: context too long]");
}
END_TEST

START_TEST(test_untrusted_text_is_made_valid_utf8)
{
	/* a lone surrogate (json-c makes it U+FFFD) and a NUL in a JSON string; raw invalid bytes */
	check_every_split(PROTO_ANTHROPIC,
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\ud800b\\u0000c\"}}\n\n"
		"event: content_block_delta\n"
		"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"x\xff\xfey\"}}\n\n",
		"content=[a\xef\xbf\xbd" "b?c] reasoning=[x??y] finish= usage=0/0/0 done=0 failed=0 error=[]");
}
END_TEST

START_TEST(test_gemini_error_bodies_are_arrays)
{
	static const char body[] = "[{\"error\": {\"code\": 400, \"message\": \"API key not valid. Please pass a valid "
				   "API key.\", \"status\": \"INVALID_ARGUMENT\"}}]";
	char out[200];

	upstream_error_message(body, strlen(body), out, sizeof(out));
	ck_assert_str_eq(out, "API key not valid. Please pass a valid API key.");
}
END_TEST

START_TEST(test_protocol_names)
{
	enum upstream_protocol p;

	ck_assert_int_eq(config_protocol_parse("anthropic", &p), 0);
	ck_assert_int_eq(p, PROTO_ANTHROPIC);
	ck_assert_str_eq(config_protocol_name(PROTO_GEMINI), "gemini");
	ck_assert_int_eq(config_protocol_parse("openai", &p), -1);
	ck_assert_int_eq(config_protocol_parse("openai-responses", &p), 0);
	ck_assert_int_eq(p, PROTO_OPENAI_RESPONSES);
}
END_TEST

static const struct chat_turn TURNS[] = {
	{ "assistant", "Earlier answer", 14 },
	{ "user", "Hi", 2 },
	{ "user", "Are you there?", 14 },
};

/* The request of proto for TURNS, with its headers joined by "|". */
static void build(enum upstream_protocol proto, const char *model, int max_tokens, struct proto_request *out,
		  char *headers, size_t len)
{
	struct chat_request r = { "https://api.example/v1/", "k3y", model, "Be brief.", TURNS, 3, max_tokens, 0 };
	size_t used = 0;

	ck_assert_int_eq(proto_request_build(proto, &r, out), 0);
	headers[0] = '\0';
	for (int i = 0; i < out->nheaders; i++)
		used += (size_t)snprintf(headers + used, len - used, "%s%s", i ? "|" : "", out->headers[i]);
}

START_TEST(test_requests_of_each_protocol)
{
	struct proto_request r;
	char h[512];

	build(PROTO_OPENAI_CHAT, "gpt-4o", 100, &r, h, sizeof(h));
	ck_assert_str_eq(r.url, "https://api.example/v1/chat/completions");
	ck_assert_str_eq(h, "Content-Type: application/json|Accept: text/event-stream|Authorization: Bearer k3y");
	ck_assert_str_eq(r.body, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
				 "{\"role\":\"assistant\",\"content\":\"Earlier answer\"},{\"role\":\"user\",\"content\":\"Hi\"},"
				 "{\"role\":\"user\",\"content\":\"Are you there?\"}],\"stream\":true,"
				 "\"stream_options\":{\"include_usage\":true},\"max_tokens\":100}");
	proto_request_free(&r);

	build(PROTO_OPENAI_RESPONSES, "o4-mini", 0, &r, h, sizeof(h));
	ck_assert_str_eq(r.url, "https://api.example/v1/responses");
	ck_assert_str_eq(h, "Content-Type: application/json|Accept: text/event-stream|Authorization: Bearer k3y");
	ck_assert_str_eq(r.body, "{\"model\":\"o4-mini\",\"instructions\":\"Be brief.\",\"input\":["
				 "{\"role\":\"assistant\",\"content\":\"Earlier answer\"},{\"role\":\"user\",\"content\":\"Hi\"},"
				 "{\"role\":\"user\",\"content\":\"Are you there?\"}],\"stream\":true,\"store\":false}");
	proto_request_free(&r);

	/* the messages alternate starting with the user; the system prompt apart; max_tokens required */
	build(PROTO_ANTHROPIC, "claude-sonnet-4-5", 0, &r, h, sizeof(h));
	ck_assert_str_eq(r.url, "https://api.example/v1/v1/messages");
	ck_assert_str_eq(h, "Content-Type: application/json|Accept: text/event-stream|anthropic-version: 2023-06-01|"
			    "x-api-key: k3y");
	ck_assert_str_eq(r.body, "{\"model\":\"claude-sonnet-4-5\",\"system\":\"Be brief.\",\"messages\":["
				 "{\"role\":\"user\",\"content\":\"(conversation continues)\"},"
				 "{\"role\":\"assistant\",\"content\":\"Earlier answer\"},"
				 "{\"role\":\"user\",\"content\":\"Hi\\n\\nAre you there?\"}],\"max_tokens\":8192,\"stream\":true}");
	proto_request_free(&r);

	build(PROTO_GEMINI, "gemini 2.5/flash", 64, &r, h, sizeof(h));
	ck_assert_str_eq(r.url, "https://api.example/v1/v1beta/models/gemini%202.5%2Fflash:streamGenerateContent?alt=sse");
	ck_assert_str_eq(h, "Content-Type: application/json|Accept: text/event-stream|x-goog-api-key: k3y");
	ck_assert_str_eq(r.body, "{\"contents\":[{\"role\":\"model\",\"parts\":[{\"text\":\"Earlier answer\"}]},"
				 "{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]},{\"role\":\"user\",\"parts\":[{\"text\":"
				 "\"Are you there?\"}]}],\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},"
				 "\"generationConfig\":{\"maxOutputTokens\":64}}");
	proto_request_free(&r);
}
END_TEST

START_TEST(test_requests_ask_for_reasoning_in_each_protocols_way)
{
	struct chat_turn turn = { "user", "Hi", 2 };
	struct chat_request q = { "https://x.example", "", "m", "", &turn, 1, 0, 1 };
	struct proto_request r;

	ck_assert_int_eq(proto_request_build(PROTO_OPENAI_RESPONSES, &q, &r), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"reasoning\":{\"summary\":\"auto\"}"));
	proto_request_free(&r);
	ck_assert_int_eq(proto_request_build(PROTO_ANTHROPIC, &q, &r), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"max_tokens\":8192,\"stream\":true,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4096}"));
	proto_request_free(&r);
	q.max_tokens = 1500;			/* too small a budget: no thinking asked */
	ck_assert_int_eq(proto_request_build(PROTO_ANTHROPIC, &q, &r), 0);
	ck_assert_ptr_null(strstr(r.body, "thinking"));
	proto_request_free(&r);
	q.max_tokens = 0;
	ck_assert_int_eq(proto_request_build(PROTO_GEMINI, &q, &r), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"generationConfig\":{\"thinkingConfig\":{\"includeThoughts\":true}}"));
	proto_request_free(&r);
	ck_assert_int_eq(proto_request_build(PROTO_OPENAI_CHAT, &q, &r), 0);	/* reasoning_content comes unasked */
	ck_assert_ptr_null(strstr(r.body, "reasoning"));
	proto_request_free(&r);
}
END_TEST

Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_openai_chat_answer_reasoning_usage_and_length);
	tcase_add_test(tc, test_openai_responses_typed_events);
	tcase_add_test(tc, test_anthropic_event_lines_thinking_and_ping);
	tcase_add_test(tc, test_gemini_thought_parts_and_the_end_at_close);
	tcase_add_test(tc, test_error_events_fail_with_the_upstreams_words);
	tcase_add_test(tc, test_untrusted_text_is_made_valid_utf8);
	tcase_add_test(tc, test_gemini_error_bodies_are_arrays);
	tcase_add_test(tc, test_protocol_names);
	tcase_add_test(tc, test_requests_of_each_protocol);
	tcase_add_test(tc, test_requests_ask_for_reasoning_in_each_protocols_way);
	suite_add_tcase(s, tc);
	return s;
}
