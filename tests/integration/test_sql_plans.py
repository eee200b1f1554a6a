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


LONG = 3000     # messages in the long conversation
PAGE = 51       # what mjs-api asks for: a page of 50 and one more


def _index_entries_read(plan_cache_mode, sql, *params):
    """
    Runs sql (a call of mjs.message_page) in a fresh session under
    plan_cache_mode; returns (its rows, the entries messages_conversation
    gave out in that transaction).
    """
    rows = mjs.psql("""
        SET plan_cache_mode = %s;
        BEGIN;
        SELECT count(*) FROM (%s) page;
        SELECT pg_stat_get_xact_tuples_returned('mjs.messages_conversation'::regclass);
        COMMIT;""" % (plan_cache_mode, sql), *params)
    # one value per statement; psql ends a result with a newline, not the record separator
    values = [int(v) for r in rows for f in r for v in f.split()]
    assert len(values) == 2, rows
    return values[0], values[1]


@mjs.timeout(60)
def test_a_page_of_a_long_conversation_reads_the_page_not_the_conversation():
    # mjs-api's pooled connections run message_page on the plan the cache
    # settles on: custom plans first, then usually the generic one, which
    # knows neither the conversation nor the limit. Each must walk
    # messages_conversation in order and stop after the page; one that reads
    # the whole conversation to sort it makes every page of a long chat cost
    # as much as the chat (5,000 messages: 4.4 ms a page instead of 0.4).
    a = mjs.Client()
    a.signup()
    conv = a.create_conversation('long')
    mjs.send_message(a, conv['id'], 'first', 'fake:tps=0:tokens=5')
    mjs.psql("""
        INSERT INTO mjs.messages (conversation_id, user_id, role, content, created_at, updated_at)
        SELECT :'p1', :'p2', 'user', 'message ' || g, now() + g * interval '1 ms', now() + g * interval '1 ms'
        FROM generate_series(1, %d) g;
        ANALYZE mjs.messages;""" % LONG, conv['id'], a.user_id)
    first = mjs.psql("SELECT (extract(epoch FROM created_at) * 1000000)::bigint, id FROM mjs.messages "
                     "WHERE conversation_id = :'p1' ORDER BY created_at, id LIMIT 1", conv['id'])[0]
    calls = [("SELECT * FROM mjs.message_page(:'p1', :'p2', NULL, NULL, %d)" % PAGE, ()),
             ("SELECT * FROM mjs.message_page(:'p1', :'p2', :'p3', :'p4', %d)" % PAGE, tuple(first))]
    for mode in ('force_custom_plan', 'force_generic_plan'):
        for sql, cursor in calls:
            n, read = _index_entries_read(mode, sql, a.user_id, conv['id'], *cursor)
            assert n == PAGE, (mode, sql, n)
            assert read <= 2 * PAGE, '%s, %s: %d index entries read for a page of %d (the conversation: %d)' % (
                mode, 'next page' if cursor else 'first page', read, PAGE, LONG + 2)
    # the answer through the API is the oldest messages, in order, and says a page follows
    page = a.get('/api/conversations/%s/messages' % conv['id']).expect(200)
    assert [m['content'] for m in page['items'][2:5]] == ['message 1', 'message 2', 'message 3'], page['items'][:5]
    assert len(page['items']) == PAGE - 1 and page['next'], (len(page['items']), page['next'])
    a.delete_conversation(conv['id'])
