"""
The chat protocols through the whole stack: a reply to a model of each
upstream mjs.conf names (dev/lib.sh: "fake" is chat_url's openai-chat,
"fake-responses" openai-responses, "fake-claude" anthropic, "fake-gemini"
gemini, all on the fake upstream with their real framing) reaches two tabs
identically and matches REST; a stop, an error event mid-stream, an upstream
4xx or 5xx and an unreachable upstream end it as they do for openai-chat.
GET /api/models lists the models; a model no upstream serves is a 422 that
changes nothing.
"""

from contextlib import ExitStack

import mjs

WAIT = 20
PROTOCOLS = {'fake': 'openai-chat', 'fake-responses': 'openai-responses', 'fake-claude': 'anthropic',
             'fake-gemini': 'gemini'}


def setup(stack):
    a = stack.enter_context(mjs.Client())
    a.signup()
    conv = a.create_conversation('protocols')
    b = stack.enter_context(a.another_device())
    streams = [stack.enter_context(mjs.SSE(a)), stack.enter_context(mjs.SSE(b))]
    return a, conv, streams


def both_tabs_show(streams, mid, final, label):
    for i, s in enumerate(streams):
        ev = mjs.wait_status_event(s, mid, mjs.FINAL_STATUSES, WAIT)
        assert ev.json == final, '%s, tab %d: the final event %r differs from REST %r' % (label, i, ev.json, final)
        text = mjs.concat_deltas(mjs.deltas(s.events(), mid), 0, label)
        assert text == final['content'], '%s, tab %d: deltas make %r, REST has %r' % (
            label, i, mjs.short(text), mjs.short(final['content']))
        thought = mjs.concat_deltas(mjs.deltas(s.events(), mid, 'reasoning'), 0, label + ' reasoning')
        assert thought == final['reasoning'], '%s, tab %d: reasoning deltas make %r, REST has %r' % (
            label, i, mjs.short(thought), mjs.short(final['reasoning']))


@mjs.timeout(120)
def test_a_reply_of_each_protocol_reaches_both_tabs_whole():
    with ExitStack() as stack:
        a, conv, streams = setup(stack)
        for model in PROTOCOLS:
            sent = mjs.send_message(a, conv['id'], 'hello ' + model, model + ':tokens=30:tps=300:think=3')
            mid = sent['assistant_message']['id']
            assert sent['assistant_message']['model'] == model + ':tokens=30:tps=300:think=3'
            final = mjs.wait_final(a, conv['id'], mid, WAIT)
            assert final['status'] == 'completed' and final['error'] is None, (model, final)
            assert final['content'] == mjs.fake_tokens(30), (model, mjs.short(final['content']))
            # the reasoning apart from the answer, the usage the upstream counted, why it ended
            assert final['reasoning'] == 'hmm ' * 3, (model, final['reasoning'])
            assert set(final['usage']) == {'input_tokens', 'output_tokens'}, (model, final['usage'])
            assert final['usage']['output_tokens'] == 33 and final['usage']['input_tokens'] >= 1, (model, final)
            assert final['finish_reason'] == 'stop', (model, final)
            both_tabs_show(streams, mid, final, model)


@mjs.timeout(120)
def test_each_protocol_sends_the_conversation_in_its_own_shape():
    with ExitStack() as stack:
        a, conv, streams = setup(stack)
        first = mjs.send_message(a, conv['id'], 'first', 'fake:tokens=1:tps=0')
        mjs.wait_final(a, conv['id'], first['assistant_message']['id'], WAIT)
        for model in PROTOCOLS:
            sent = mjs.send_message(a, conv['id'], 'to ' + model, model + ':echo:tps=0')
            final = mjs.wait_final(a, conv['id'], sent['assistant_message']['id'], WAIT)
            lines = final['content'].splitlines()
            # what the upstream received, oldest first, ending with this message
            assert lines[0] == 'user: first' and lines[-1] == 'user: to ' + model, (model, lines)
            assert 'assistant: tok ' in lines, (model, lines)


@mjs.timeout(120)
def test_stop_error_event_and_upstream_errors_end_a_reply_of_each_protocol():
    with ExitStack() as stack:
        a, conv, streams = setup(stack)
        for model in PROTOCOLS:
            # stop mid-reply: the text so far stays, on both tabs
            sent = mjs.send_message(a, conv['id'], 'stop', model + ':tokens=400:tps=50:think=2')
            mid = sent['assistant_message']['id']
            mjs.wait_delta_chars(streams[0], mid, 12, WAIT)
            a.post('/api/messages/%s/stop' % mid)
            final = mjs.wait_final(a, conv['id'], mid, WAIT)
            assert final['status'] == 'stopped', (model, final)
            assert 0 < len(final['content']) < len(mjs.fake_tokens(400)), (model, mjs.short(final['content']))
            assert final['reasoning'] == 'hmm hmm ', (model, final)     # kept, like the answer
            both_tabs_show(streams, mid, final, model + ' stopped')

            # the protocol's own error event after 3 tokens: failed, the 3 tokens kept
            sent = mjs.send_message(a, conv['id'], 'error', model + ':tokens=10:error_after=3:tps=200:think=1')
            mid = sent['assistant_message']['id']
            final = mjs.wait_final(a, conv['id'], mid, WAIT)
            if model == 'fake':
                assert final['status'] == 'completed', (model, final)   # openai-chat has no error event knob
            else:
                assert final['status'] == 'failed', (model, final)
                assert 'fake upstream failure mid-stream' in final['error'], (model, final)
                assert final['content'] == mjs.fake_tokens(3) and final['reasoning'] == 'hmm ', (model, final)
            both_tabs_show(streams, mid, final, model + ' error event')

            # HTTP errors with the upstream's own error bodies
            for code in (400, 503):
                sent = mjs.send_message(a, conv['id'], 'fail', '%s:fail=%d' % (model, code))
                mid = sent['assistant_message']['id']
                final = mjs.wait_final(a, conv['id'], mid, WAIT)
                assert final['status'] == 'failed', (model, code, final)
                assert ('HTTP %d' % code) in final['error'] and 'fake upstream failure' in final['error'], \
                    (model, code, final['error'])
                both_tabs_show(streams, mid, final, '%s HTTP %d' % (model, code))


@mjs.timeout(120)
def test_models_are_listed_and_an_unlisted_one_is_refused_changing_nothing():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        listed = a.get('/api/models').expect(200)
        by_name = {m['name']: m for m in listed['items']}
        assert listed['default'] == 'fake', listed
        for name, protocol in PROTOCOLS.items():
            assert by_name[name]['protocol'] == protocol and by_name[name]['kind'] == 'chat', by_name
        assert not any('*' in m['name'] for m in listed['items']), 'patterns are not listed: %r' % listed
        r = mjs.Client().get('/api/models')
        mjs.assert_error(r, 401, 'unauthorized')

        # without chat_url (which takes any model), only the named upstreams' models are served
        with mjs.apis_with(chat_url=''):
            conv = a.create_conversation('models')
            before = mjs.db_event_seq(a.user_id)
            r = a.post('/api/conversations/%s/messages' % conv['id'], {'content': 'hi', 'model': 'gpt-nope'})
            mjs.assert_error(r, 422, 'unknown_model')
            assert 'gpt-nope' in r.json['error']['message'] and '/api/models' in r.json['error']['message'], r
            assert mjs.db_event_seq(a.user_id) == before, 'a refused send changed something'
            assert mjs.list_messages(a, conv['id']) == []
            listed = a.get('/api/models').expect(200)
            assert 'fake' not in [m['name'] for m in listed['items']] and listed['default'] == 'fake-responses'
            # no model given: the default; a pattern's model: its upstream
            sent = mjs.send_message(a, conv['id'], 'hi')
            assert sent['assistant_message']['model'] == 'fake-responses', sent
            sent = mjs.send_message(a, conv['id'], 'hi', 'fake-gemini:tokens=2:tps=0')
            final = mjs.wait_final(a, conv['id'], sent['assistant_message']['id'], WAIT)
            assert final['status'] == 'completed' and final['content'] == mjs.fake_tokens(2), final


@mjs.timeout(120)
def test_a_conversations_system_prompt_and_model_sync_and_go_upstream_in_each_protocol():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        conv = a.create_conversation('protocols')
        before = mjs.db_event_seq(a.user_id)
        with mjs.apis_with(chat_url=''):      # chat_url's upstream takes any name
            r = a.patch('/api/conversations/' + conv['id'], {'model': 'no-such-model'})
            mjs.assert_error(r, 422, 'unknown_model')
        r = a.patch('/api/conversations/' + conv['id'], {'system_prompt': 'x' * 20001})
        mjs.assert_error(r, 422, 'invalid_field')
        mjs.assert_error(a.patch('/api/conversations/' + conv['id'], {}), 422, 'invalid_field')
        assert mjs.db_event_seq(a.user_id) == before, 'a refused PATCH changed something'
        b = stack.enter_context(a.another_device())
        streams = [stack.enter_context(mjs.SSE(a)), stack.enter_context(mjs.SSE(b))]
        for model in PROTOCOLS:
            # the settings reach both tabs as conversation.updated
            updated = a.patch('/api/conversations/' + conv['id'],
                              {'system_prompt': 'Answer in French.', 'model': model + ':echo:tps=0'}).expect(200)
            assert updated['system_prompt'] == 'Answer in French.' and updated['model'] == model + ':echo:tps=0'
            for s in streams:
                ev = s.wait_for(lambda e: e.event == 'conversation.updated' and e.json == updated, WAIT)
                assert ev.json['title'] == conv['title'], ev
            # a message without a model uses the conversation's, with its system prompt
            sent = mjs.send_message(a, conv['id'], 'bonjour ' + model)
            assert sent['assistant_message']['model'] == model + ':echo:tps=0', sent
            final = mjs.wait_final(a, conv['id'], sent['assistant_message']['id'], WAIT)
            lines = final['content'].splitlines()
            assert lines[0] == 'system: Answer in French.' and lines[-1] == 'user: bonjour ' + model, (model, lines)
        # cleared: the server's default again, and no system prompt
        cleared = a.patch('/api/conversations/' + conv['id'], {'model': None, 'system_prompt': ''}).expect(200)
        assert cleared['model'] is None and cleared['system_prompt'] == '', cleared
        sent = mjs.send_message(a, conv['id'], 'plain')
        assert sent['assistant_message']['model'] == 'fake', sent


@mjs.timeout(120)
def test_a_reply_cut_at_the_token_limit_says_so_in_each_protocol():
    with ExitStack() as stack:
        with mjs.worker_with(reply_max_tokens='5'):
            a, conv, streams = setup(stack)
            for model in PROTOCOLS:
                sent = mjs.send_message(a, conv['id'], 'long', model + ':tokens=50:tps=0')
                final = mjs.wait_final(a, conv['id'], sent['assistant_message']['id'], WAIT)
                assert final['status'] == 'completed' and final['finish_reason'] == 'length', (model, final)
                assert final['content'] == mjs.fake_tokens(5), (model, final)
                assert final['error'] and final['error'].startswith('cut:'), (model, final)
                both_tabs_show(streams, sent['assistant_message']['id'], final, model + ' cut')
