/*
 * tasks: the /api/tasks handlers (image and video tasks). Each write is one
 * SQL function that changes the row and emits its event (sql/functions/);
 * the worker moves status and progress.
 */
#ifndef MJS_API_TASKS_H
#define MJS_API_TASKS_H

#define TASK_PROMPT_MAX 4000
#define TASK_MODEL_MAX 100
#define TASK_SECONDS_MAX 60
#define TASK_SIZE_MAX 20

#endif
