/*
 * gen: a reply's lifecycle and flush bookkeeping (gen.h).
 */
#include "worker/gen.h"
#include "common/json.h"

#include <stdlib.h>
#include <string.h>

struct gen *gen_new(void)
{
	struct gen *g = calloc(1, sizeof(*g));

	if (g)
		g->transfer.kind = TRANSFER_REPLY;
	return g;
}

void gen_free(struct gen *g)
{
	upstream_sse_free(&g->parser);
	buf_free(&g->pending);
	buf_free(&g->pending_reasoning);
	buf_free(&g->text);
	buf_free(&g->error_body);
	proto_request_free(&g->request);
	free(g);
}

struct gen *gen_find(struct gen *list, const char *id)
{
	for (; list; list = list->next)
		if (!strcmp(list->id, id))
			return list;
	return NULL;
}

void gen_set_status(struct gen *g, const char *status, const char *error)
{
	g->status = status;
	g->status_version++;
	if (error)
		util_utf8_copy(g->error, sizeof(g->error), error);
	g->final = !strcmp(status, "completed") || !strcmp(status, "stopped") || !strcmp(status, "failed");
	g->dirty = 1;
}

/* Bytes of the first chars characters of the valid UTF-8 text s[0..len). */
static size_t utf8_prefix(const char *s, size_t len, long chars)
{
	size_t i = 0;

	for (long n = 0; i < len && n < chars; n++)
		for (i++; i < len && ((unsigned char)s[i] & 0xC0) == 0x80; i++)
			;
	return i;
}

/*
 * Text of one part that arrived: appended to its pending buffer; past
 * reply_max_chars (stored plus pending) the rest is dropped and the loop ends
 * the reply as cut.
 */
static void take(struct gen *g, struct buf *pending, long *pending_chars, long stored_chars, const char *text,
		 size_t len, int64_t now_ms)
{
	if (len == 0)
		return;
	if (!g->first_token_ms)
		g->first_token_ms = now_ms;
	if (g->max_chars > 0) {
		long room = g->max_chars - stored_chars - *pending_chars;
		size_t keep = utf8_prefix(text, len, room > 0 ? room : 0);
		if (keep < len) {
			len = keep;
			g->cut = 1;
		}
	}
	if (len > 0 && buf_append(pending, text, len) == 0)
		*pending_chars += (long)json_utf8_chars(text, len);
	g->dirty = 1;
}

void gen_take_text(struct gen *g, const char *text, size_t len, int64_t now_ms)
{
	take(g, &g->pending, &g->pending_chars, g->content_chars, text, len, now_ms);
}

void gen_take_reasoning(struct gen *g, const char *text, size_t len, int64_t now_ms)
{
	take(g, &g->pending_reasoning, &g->pending_rchars, g->reasoning_chars, text, len, now_ms);
}

/* One job of the flush: what is new since the last one. */
static struct json_object *flush_job(struct gen *g, int with_status)
{
	struct json_object *o = json_object_new_object();
	const char *pending = g->pending.data ? g->pending.data : "";
	const char *status = with_status ? g->status : NULL;
	int final = status && g->final;

	json_object_object_add(o, "id", json_object_new_string(g->id));
	json_object_object_add(o, "user_id", json_object_new_string(g->user_id));
	json_object_object_add(o, "offset", json_object_new_int64(g->content_chars));
	json_object_object_add(o, "text", json_object_new_string_len(pending, (int)g->pending.len));
	json_object_object_add(o, "status", status ? json_object_new_string(status) : NULL);
	json_object_object_add(o, "error", status && g->error[0] ? json_object_new_string(g->error) : NULL);
	json_object_object_add(o, "tokens", json_object_new_int64(g->chunks));
	if (g->pending_reasoning.len) {
		json_object_object_add(o, "reasoning", json_object_new_string_len(g->pending_reasoning.data,
										    (int)g->pending_reasoning.len));
		json_object_object_add(o, "reasoning_offset", json_object_new_int64(g->reasoning_chars));
	}
	if (final && g->has_usage) {
		struct json_object *u = json_object_new_object();
		json_object_object_add(u, "input_tokens", json_object_new_int64(g->input_tokens));
		json_object_object_add(u, "output_tokens", json_object_new_int64(g->output_tokens));
		json_object_object_add(o, "usage", u);
	}
	if (final && g->finish_reason[0])
		json_object_object_add(o, "finish_reason", json_object_new_string(g->finish_reason));
	if (final && g->whole) {
		/* the whole text: the database stores it instead of folding the chunks */
		struct buf all = { 0 };
		if (buf_append(&all, g->text.data ? g->text.data : "", g->text.len) == 0 &&
		    buf_append(&all, pending, g->pending.len) == 0)
			json_object_object_add(o, "content", json_object_new_string_len(all.data ? all.data : "",
											   (int)all.len));
		buf_free(&all);
	}
	return o;
}

struct json_object *gen_flush_batch(struct gen *list, const struct gen *only, int skip_suspects)
{
	struct json_object *batch = json_object_new_array();
	int finals = 0;

	for (struct gen *g = list; g; g = g->next) {
		int hold;
		if (!g->dirty || (only && g != only) || (skip_suspects && g->suspect))
			continue;
		/* past GEN_FINALS_PER_FLUSH final statuses, one waits for a later flush; its text goes now */
		hold = g->status && g->final && finals >= GEN_FINALS_PER_FLUSH;
		if (hold && g->pending.len == 0 && g->pending_reasoning.len == 0)
			continue;
		if (g->status && g->final && !hold)
			finals++;
		json_object_array_add(batch, flush_job(g, !hold));
		g->in_flush = 1;
		g->flush_len = g->pending.len;
		g->flush_rlen = g->pending_reasoning.len;
		g->flush_status = hold ? NULL : g->status;
		g->flush_version = g->status_version;
	}
	if (json_object_array_length(batch) == 0) {
		json_object_put(batch);
		return NULL;
	}
	return batch;
}

void gen_flush_written(struct gen *list, void (*finished)(void *ctx, const struct gen *g), void *ctx)
{
	for (struct gen *g = list; g; g = g->next) {
		long flushed;
		if (!g->in_flush)
			continue;
		g->in_flush = 0;
		flushed = (long)json_utf8_chars(g->pending.data ? g->pending.data : "", g->flush_len);
		g->content_chars += flushed;
		g->pending_chars -= flushed;
		if (g->flush_len > 0)
			g->chunk_rows++;
		/* past GEN_TEXT_MAX (or out of memory) the database folds the chunks instead */
		if (g->whole && (g->text.len + g->flush_len > GEN_TEXT_MAX ||
				 (g->flush_len > 0 && buf_append(&g->text, g->pending.data, g->flush_len) < 0))) {
			g->whole = 0;
			buf_free(&g->text);
		}
		buf_consume(&g->pending, g->flush_len);
		if (g->flush_rlen > 0) {
			long rflushed = (long)json_utf8_chars(g->pending_reasoning.data, g->flush_rlen);
			g->reasoning_chars += rflushed;
			g->pending_rchars -= rflushed;
			buf_consume(&g->pending_reasoning, g->flush_rlen);
		}
		if (g->flush_status)
			g->db_status = g->flush_status;
		if (g->flush_status && g->status_version == g->flush_version)
			g->status = NULL;
		g->dirty = g->pending.len > 0 || g->pending_reasoning.len > 0 || g->status != NULL;
		if (g->final && g->flush_status && g->flush_version == g->status_version && finished)
			finished(ctx, g);	/* its final status is stored: the chunks can go */
	}
}

void gen_flush_gone(struct gen *list, const char *id)
{
	struct gen *g = gen_find(list, id);

	if (!g)
		return;
	g->stop = 1;
	g->final = 1;
	g->dirty = 0;
}

void gen_flush_forget(struct gen *list)
{
	for (struct gen *g = list; g; g = g->next)
		g->in_flush = 0;
}

/* The byte offset of character chars (counted from 0) in s, len bytes of UTF-8; len past the end. */
static size_t utf8_offset(const char *s, size_t len, long chars)
{
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80 && chars-- == 0)
			return i;
	return len;
}

/* Drops the first n characters of pending (len bytes, *pending_chars of them), stored already. */
static void drop_stored(struct buf *pending, long *pending_chars, long n, struct buf *copy)
{
	size_t off = utf8_offset(pending->data, pending->len, n);

	if (copy && buf_append(copy, pending->data, off) < 0)
		buf_free(copy);
	buf_consume(pending, off);
	*pending_chars -= n;
}

long gen_rewind(struct gen *g, long chars, long rchars)
{
	long gone = 0;

	if (chars >= 0 && chars < g->content_chars) {
		long lost = g->content_chars - chars;
		struct buf again = { 0 };
		size_t off = g->whole ? utf8_offset(g->text.data, g->text.len, chars) : 0;

		if (g->whole && buf_append(&again, g->text.data + off, g->text.len - off) == 0 &&
		    buf_append(&again, g->pending.data ? g->pending.data : "", g->pending.len) == 0) {
			buf_free(&g->pending);
			g->pending = again;
			g->pending_chars += lost;
			g->text.len = off;
			if (g->text.data)
				g->text.data[off] = '\0';
		} else {
			buf_free(&again);
			gone += lost;
		}
		g->content_chars = chars;
		g->dirty = 1;
	} else if (chars > g->content_chars) {
		long ahead = chars - g->content_chars;
		if (ahead > g->pending_chars) {
			/* stored text this worker never had: go on from there, without a copy */
			g->whole = 0;
			buf_free(&g->text);
			ahead = g->pending_chars;
		}
		drop_stored(&g->pending, &g->pending_chars, ahead, g->whole ? &g->text : NULL);
		if (g->whole && ((!g->text.data && ahead > 0) || g->text.len > GEN_TEXT_MAX)) {
			g->whole = 0;	/* no copy (out of memory, or past the limit): the database folds the chunks */
			buf_free(&g->text);
		}
		g->content_chars = chars;
		g->chunk_rows++;
		g->dirty = g->pending.len > 0 || g->pending_reasoning.len > 0 || g->status != NULL;
	}
	if (rchars >= 0 && rchars < g->reasoning_chars) {
		gone += g->reasoning_chars - rchars;
		g->reasoning_chars = rchars;
		g->dirty = 1;
	} else if (rchars > g->reasoning_chars) {
		long ahead = rchars - g->reasoning_chars;
		if (ahead > g->pending_rchars)
			ahead = g->pending_rchars;
		drop_stored(&g->pending_reasoning, &g->pending_rchars, ahead, NULL);
		g->reasoning_chars = rchars;
	}
	return gone;
}
