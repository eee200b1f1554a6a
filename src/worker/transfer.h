/*
 * transfer: what a curl transfer of the worker's one multi handle belongs to.
 * Every easy handle's CURLOPT_PRIVATE points at the struct transfer inside its
 * owner (a reply's struct gen, a task's struct task), so a finished transfer
 * goes to its owner without searching any list.
 */
#ifndef MJS_WORKER_TRANSFER_H
#define MJS_WORKER_TRANSFER_H

#include <stddef.h>

enum transfer_kind {
	TRANSFER_REPLY = 1,	/* struct gen (gen.h) */
	TRANSFER_TASK,		/* struct task (taskq.c) */
};

struct transfer {
	enum transfer_kind kind;
};

/* The struct holding transfer t as member. */
#define TRANSFER_OWNER(t, type, member) ((type *)(void *)((char *)(t) - offsetof(type, member)))

#endif
