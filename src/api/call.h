/*
 * call: serves one accepted FastCGI request (REST, or the hand-off of a stream).
 */
#ifndef MJS_API_CALL_H
#define MJS_API_CALL_H

#include "api/handlers.h"

/* Serves the request accepted into fcgi_request (an FCGX_Request *). */
void call_serve(struct app *app, void *fcgi_request);

#endif
