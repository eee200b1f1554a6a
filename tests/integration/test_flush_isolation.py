"""
One reply whose news the database refuses fails alone: the worker's flush
carries every reply in one transaction, so a refused row would otherwise fail
it on every tick and stop every reply of the worker. Here a constraint added
for the test refuses any assistant text holding a marker (standing in for
whatever a future bug or upstream might make unstorable): the reply that
echoes the marker ends failed with a reason, the replies streaming beside it
complete with their whole text, and the next reply after it completes too.
"""

import mjs

MARKER = 'UNSTORABLE-MARK'
ADD = """
ALTER TABLE mjs.message_chunks ADD CONSTRAINT test_unstorable CHECK (position(:'p1' in text) = 0);
ALTER TABLE mjs.messages ADD CONSTRAINT test_unstorable
    CHECK (role <> 'assistant' OR position(:'p1' in content) = 0) NOT VALID;
"""
DROP = """
ALTER TABLE mjs.message_chunks DROP CONSTRAINT IF EXISTS test_unstorable;
ALTER TABLE mjs.messages DROP CONSTRAINT IF EXISTS test_unstorable;
"""


@mjs.timeout(120)
def test_a_reply_the_database_refuses_fails_alone_and_the_others_complete():
    with mjs.Client() as a:
        a.signup()
        convs = [a.create_conversation('isolation %d' % i)['id'] for i in range(4)]
        try:
            mjs.psql(ADD, MARKER)
            normal = [mjs.send_message(a, cid, 'go', 'fake:tps=20:tokens=30')['assistant_message']['id']
                      for cid in convs[1:]]
            bad = mjs.send_message(a, convs[0], 'say ' + MARKER, 'fake:echo:tps=20')['assistant_message']['id']
            m = mjs.wait_final(a, convs[0], bad, 30)
            assert m['status'] == 'failed' and 'could not be stored' in m['error'], m
            assert MARKER not in m['content'], m
            for cid, mid in zip(convs[1:], normal):
                m = mjs.wait_final(a, cid, mid, 30)
                assert m['status'] == 'completed' and m['content'] == 'tok ' * 30, m
        finally:
            mjs.psql(DROP)
        mid = mjs.send_message(a, convs[0], 'again', 'fake:tokens=3')['assistant_message']['id']
        m = mjs.wait_final(a, convs[0], mid, 30)
        assert m['status'] == 'completed' and m['content'] == 'tok ' * 3, m
