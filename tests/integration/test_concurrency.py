"""
Gapless order under concurrent writers: many clients of one user write at
once; every stream sees seq 1..N without a gap or a duplicate, exactly the
rows of mjs.events, and each client's own writes in the order it made them
(a write that committed before another started has the smaller seq).
"""

import json
from contextlib import ExitStack

import mjs

WRITERS = 16
WRITES_EACH = 25


def key(etype, data):
    return etype, json.dumps(data, sort_keys=True)


@mjs.timeout(180)
def test_seqs_are_gapless_and_in_commit_order_under_concurrent_writers():
    with ExitStack() as stack:
        owner = stack.enter_context(mjs.Client())
        owner.signup()
        owner.create_conversation('before the storm')
        seq0 = owner.me()['event_seq']
        assert seq0 == 1, 'GET /api/me event_seq after one change: expected 1, got %r' % seq0

        streams = [stack.enter_context(mjs.SSE(owner)),
                   stack.enter_context(mjs.SSE(stack.enter_context(owner.another_device()))),
                   stack.enter_context(mjs.SSE(owner.same_session()))]
        for s in streams:
            assert s.status == 200 and s.start_id == seq0, (s.status, s.start_id, s.body)

        writers = [stack.enter_context(owner.another_device()) for _ in range(WRITERS)]
        changes = [mjs.Changes(w, 'w%02d' % i) for i, w in enumerate(writers)]
        mjs.run_parallel([lambda ch=ch: ch.mixed(WRITES_EACH) for ch in changes], 120, 'writers')

        n = WRITERS * WRITES_EACH
        expected_seqs = list(range(seq0 + 1, seq0 + n + 1))
        rows = mjs.db_events(owner.user_id, seq0)
        assert [r['seq'] for r in rows] == expected_seqs, \
            'mjs.events seqs after %d: expected %d..%d, got %s' % (seq0, seq0 + 1, seq0 + n,
                                                                   mjs.short([r['seq'] for r in rows]))
        assert mjs.db_event_seq(owner.user_id) == seq0 + n
        from_db = [(r['seq'], r['type'], r['data']) for r in rows]

        for i, s in enumerate(streams):
            got = s.wait_count(n, 60)
            ids = [e.id for e in got]
            dups = sorted({x for x in ids if ids.count(x) > 1})
            assert ids == expected_seqs, 'stream %d: ids not %d..%d (duplicates %s, first ids %s)' % (
                i, seq0 + 1, seq0 + n, dups[:10], mjs.short(ids, 200))
            received = [(e.id, e.event, e.json) for e in got]
            for r, d in zip(received, from_db):
                assert r == d, 'stream %d: received %s but mjs.events has %s' % (i, mjs.short(r), mjs.short(d))

        # Each writer's own events carry what REST returned, in the order it wrote them.
        seq_of = {key(t, d): seq for seq, t, d in from_db}
        assert len(seq_of) == n, 'some events are identical: %d distinct of %d' % (len(seq_of), n)
        for ch in changes:
            seqs = []
            for etype, data in ch.expected:
                k = key(etype, data)
                assert k in seq_of, '%s: no event for %s %s' % (ch.tag, etype, mjs.short(data))
                seqs.append(seq_of[k])
            assert seqs == sorted(seqs), '%s: its writes got seqs out of order: %s' % (ch.tag, seqs)

        # Nothing more arrives after the sync point of one last write.
        last = owner.create_conversation('after the storm')
        for i, s in enumerate(streams):
            s.wait_count(n + 1, 20)
            evs = s.events()
            assert len(evs) == n + 1 and evs[-1].id == seq0 + n + 1 and evs[-1].json == last, \
                'stream %d: after the sync write: %d events, last %r' % (i, len(evs), evs[-1])
