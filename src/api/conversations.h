/*
 * conversations: list, create, rename, delete. Each write is one statement that
 * changes the row and calls mjs.emit() (see src/README.md).
 */
#ifndef MJS_CONVERSATIONS_H
#define MJS_CONVERSATIONS_H

#include <stddef.h>

#define CONVERSATION_TITLE_MAX 200
#define CONVERSATION_DEFAULT_TITLE "New chat"
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200

/*
 * Parses a list cursor "<microseconds since epoch>_<uuid>" into its parts.
 * Returns 0 or -1 when malformed.
 */
int conversations_parse_cursor(const char *cursor, char *usec, size_t usec_len, char *id);

#endif
