"""
The API's JSON is built in PostgreSQL by small SQL functions (sql/README.md).
PostgreSQL inlines such a function into the statement that calls it only when
its body is one expression with no subquery and it is declared no stricter
than what it calls; otherwise every row of a list pays for a function call of
its own. The lists depend on it: a page of 40 messages took 0.83 ms of SQL
when message_text() was called per row and 0.32 ms inlined (docs/BENCHMARKS.md).
Each check here fails when a change to one of these functions stops it from
being inlined.
"""

import mjs

# (the statement, the calls that must not remain in its plan)
PLANS = [
    ("SELECT mjs.message_json(m)::text FROM mjs.messages m",
     ['message_json(', 'message_text(', 'message_reasoning(', 'rfc3339(']),
    ("SELECT mjs.conversation_json(c)::text FROM mjs.conversations c", ['conversation_json(', 'rfc3339(']),
    ("SELECT mjs.task_json(t)::text FROM mjs.tasks t", ['task_json(', 'rfc3339(']),
    ("SELECT mjs.user_json(u)::text FROM mjs.users u", ['user_json(', 'rfc3339(']),
]


@mjs.timeout(30)
def test_the_json_of_every_object_is_inlined_into_the_statement_that_reads_it():
    for sql, calls in PLANS:
        plan = '\n'.join(r[0] for r in mjs.psql('EXPLAIN (VERBOSE, COSTS OFF) ' + sql))
        assert 'row_to_json' in plan, (sql, plan)
        left = [c for c in calls if c in plan]
        assert not left, (sql, left, plan)
    # the chunks of a streaming message are still read, through a call made only for one
    plan = '\n'.join(r[0] for r in mjs.psql(
        'EXPLAIN (VERBOSE, COSTS OFF) SELECT mjs.message_text(m) FROM mjs.messages m'))
    assert "CASE WHEN (status = 'streaming'::text) THEN (content || chunks_text(id, '0'::smallint))" in plan, plan
