/*
 * messages: list, send, edit, delete and stop. A send creates both messages and
 * the generation job in one transaction (mjs.send_message); the worker does the rest.
 * A message that is still generating (created, pending, streaming) cannot be
 * edited or deleted: 409, stop it first.
 */
#ifndef MJS_API_MESSAGES_H
#define MJS_API_MESSAGES_H

#define MESSAGE_CONTENT_MAX 200000	/* characters */
#define MODEL_NAME_MAX 200

#endif
