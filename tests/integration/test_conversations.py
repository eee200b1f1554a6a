"""
Conversations over REST: create with a default or trimmed title, rename,
delete, and the list — newest (updated_at) first, paged with a cursor, never
holding a deleted conversation or another user's.
"""

from contextlib import ExitStack

import mjs


@mjs.timeout(60)
def test_create_rename_delete_return_the_conversation_object():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        conv = c.create_conversation()
        assert set(conv) == {'id', 'title', 'created_at', 'updated_at', 'system_prompt', 'model'}, conv
        assert conv['system_prompt'] == '' and conv['model'] is None, conv
        assert mjs.is_uuid(conv['id']) and conv['title'] == 'New chat', conv
        assert conv['created_at'].endswith('Z') and conv['updated_at'] >= conv['created_at'], conv
        assert c.create_conversation('  spaced  ')['title'] == 'spaced'
        renamed = c.rename_conversation(conv['id'], '  renamed \u00e9  ')
        assert renamed['id'] == conv['id'] and renamed['title'] == 'renamed \u00e9', renamed
        assert renamed['created_at'] == conv['created_at'] and renamed['updated_at'] >= conv['updated_at'], renamed
        row = mjs.psql("SELECT title, user_id FROM mjs.conversations WHERE id = :'p1'", conv['id'])
        assert row == [['renamed \u00e9', c.user_id]], row
        c.delete_conversation(conv['id'])
        mjs.assert_error(c.delete('/api/conversations/' + conv['id']), 404, 'not_found')
        mjs.assert_error(c.patch('/api/conversations/' + conv['id'], {'title': 'x'}), 404, 'not_found')
        titles = [x['title'] for x in c.get('/api/conversations').expect(200)['items']]
        assert titles == ['spaced'], titles


@mjs.timeout(60)
def test_list_is_newest_first_and_pages_with_a_cursor():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        other = stack.enter_context(mjs.Client())
        other.signup()
        other.create_conversation('not yours')
        ids = [c.create_conversation('c%d' % i)['id'] for i in range(7)]
        c.rename_conversation(ids[0], 'c0 renamed')      # now the newest
        c.delete_conversation(ids[3])
        expected = [ids[0], ids[6], ids[5], ids[4], ids[2], ids[1]]

        full = c.get('/api/conversations').expect(200)
        assert [x['id'] for x in full['items']] == expected and full['next'] is None, full

        seen, cursor, pages = [], None, 0
        while True:
            path = '/api/conversations?limit=4' if cursor is None else '/api/conversations?limit=4&cursor=' + cursor
            page = c.get(path).expect(200)
            assert set(page) == {'items', 'next'} and len(page['items']) <= 4, page
            seen += [x['id'] for x in page['items']]
            pages += 1
            cursor = page['next']
            if cursor is None:
                break
            assert isinstance(cursor, str) and cursor and pages < 5, page
        assert seen == expected and pages == 2, (seen, pages)

        for bad in ('limit=0', 'limit=201', 'limit=abc', 'limit=-1', 'cursor=nonsense'):
            mjs.assert_error(c.get('/api/conversations?' + bad), 422, 'invalid_field')
        page = c.get('/api/conversations?limit=200').expect(200)
        assert len(page['items']) == 6 and page['next'] is None, page


def test_messages_page_oldest_first_with_a_cursor():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        other = stack.enter_context(mjs.Client())
        other.signup()
        cid = c.create_conversation('long')['id']
        for i in range(6):
            mjs.send_message(c, cid, 'message %d' % i, 'fake:tps=0:tokens=1')
        expected = [m['id'] for m in mjs.list_messages(c, cid)]
        assert len(expected) == 12, expected

        seen, cursor, pages = [], None, 0
        while True:
            path = '/api/conversations/%s/messages?limit=5' % cid + ('&cursor=' + cursor if cursor else '')
            page = c.get(path).expect(200)
            assert set(page) == {'items', 'next'} and len(page['items']) <= 5, page
            seen += [x['id'] for x in page['items']]
            pages += 1
            cursor = page['next']
            if cursor is None:
                break
            assert pages < 4, page
        assert seen == expected and pages == 3, (seen, pages)
        times = [(m['created_at'], m['id']) for m in mjs.list_messages(c, cid)]
        assert times == sorted(times), 'not oldest first'
        # the default page is 50; an empty conversation is one empty page
        assert c.get('/api/conversations/%s/messages' % cid).expect(200)['next'] is None
        empty = c.create_conversation('empty')['id']
        assert c.get('/api/conversations/%s/messages' % empty).expect(200) == {'items': [], 'next': None}
        for bad in ('limit=0', 'limit=201', 'cursor=nonsense'):
            mjs.assert_error(c.get('/api/conversations/%s/messages?%s' % (cid, bad)), 422, 'invalid_field')
        mjs.assert_error(other.get('/api/conversations/%s/messages' % cid), 404, 'not_found')
