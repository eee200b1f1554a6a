/*
 * conversations: list, create, rename, delete. Each write is one statement that
 * changes the row and calls mjs.emit() (see src/README.md).
 */
#ifndef MJS_API_CONVERSATIONS_H
#define MJS_API_CONVERSATIONS_H

#include <stddef.h>

#define CONVERSATION_TITLE_MAX 200
#define SYSTEM_PROMPT_MAX 20000	/* characters */
#define CONVERSATION_DEFAULT_TITLE "New chat"

#endif
