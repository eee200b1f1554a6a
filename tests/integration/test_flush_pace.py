"""
Token-to-tab at light load: the worker flushes as soon as it has news and no
flush is in flight (group commit, worker/pace.h), with flush_min_interval
between the starts of two flushes; flush_interval is only the longest wait.
With flush_interval = 1s, a worker flushing on a flush_interval tick would
hold the tokens of a 10 tokens/s reply for about half a second on average and
up to a second; here each reaches the tab within a few milliseconds of the
fake upstream sending it (the stamp knob writes the send time into each
token), one delta per token, and the text is whole, gapless and undoubled.
"""

import re
import statistics

import mjs

STAMP = re.compile(r'tok@T(\d{19}) ')


@mjs.timeout(90)
def test_tokens_reach_a_tab_at_once_at_light_load_whatever_flush_interval():
    n = 20
    with mjs.worker_with(flush_interval='1s', flush_min_interval='5ms'):
        with mjs.Client() as a:
            a.signup()
            cid = a.create_conversation('pace')['id']
            with mjs.SSE(a) as tab:
                mid = mjs.send_message(a, cid, 'go', 'fake:stamp:tps=10:tokens=%d' % n)['assistant_message']['id']
                mjs.wait_status_event(tab, mid, mjs.FINAL_STATUSES, 30)
                events = tab.events()
            m = mjs.get_message(a, cid, mid)
    assert m['status'] == 'completed', m
    deltas = mjs.deltas(events, mid)
    assert mjs.concat_deltas(deltas) == m['content'], 'the deltas do not make the stored text'
    latency_ms = []
    for e in deltas:
        for sent in STAMP.findall(e.json['text']):
            latency_ms.append((e.received_ns - int(sent)) / 1e6)
    assert len(latency_ms) == n, 'expected %d stamped tokens, got %d: %r' % (n, len(latency_ms), m['content'])
    p50, worst = statistics.median(latency_ms), max(latency_ms)
    figures = 'token-to-tab ms: p50 %.1f, max %.1f, %d deltas for %d tokens; all: %s' % (
        p50, worst, len(deltas), n, ' '.join('%.0f' % x for x in latency_ms))
    # a tick of 1 s would give p50 ~500 ms and max ~900 ms; the bounds leave room for a busy machine
    assert p50 < 150 and worst < 600, figures
    # tokens 100 ms apart each go out alone: no tick gathered them
    assert len(deltas) >= n * 3 // 4, figures
    print(figures)
