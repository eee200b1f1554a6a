/*
 * page: keyset paging of the list endpoints (conversations, messages, tasks). A cursor is
 * "<microseconds since epoch>_<uuid>" of the last row of the page before; the
 * SQL takes it as two parameters (NULL on the first page) and asks for
 * limit + 1 rows to learn whether there is a next page.
 */
#ifndef MJS_API_PAGE_H
#define MJS_API_PAGE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200

struct call;

struct page {
	int64_t limit;
	char usec[24], id[37];
	char limit_s[24];		/* limit + 1, as the SQL's LIMIT parameter */
	const char *after_usec;		/* NULL on the first page */
	const char *after_id;
};

/* Parses a cursor into its parts. Returns 0 or -1 when malformed. */
int page_parse_cursor(const char *cursor, char *usec, size_t usec_len, char *id);

/* Reads ?limit= and ?cursor=. Returns 0, or -1 after answering 422. */
int page_parse(struct call *c, struct page *p);

/*
 * Answers 200 {"items":[…],"next":cursor|null} from rows of (the user's event
 * seq, object JSON, cursor), read in one statement so the seq is the one the
 * page reflects (sent as Mjs-Event-Seq). A page with no objects is one row whose
 * JSON is NULL (the user's row left-joined to the page); no row at all (the
 * user is gone) answers 401. Takes ownership of res.
 */
void page_respond(struct call *c, PGresult *res, const struct page *p);

#endif
