"""
common: what the fake upstream's modules share: limits, the knobs a model name
or a task prompt asks for, the counters of GET /stats, the exceptions, and the
event loop (LOOP, set by server.main before anything runs).
"""

import json

LOOP = None                  # the asyncio event loop
MAX_BODY = 1 << 20
HANG_LIMIT_S = 3600          # a hanging response gives up after this long
DEFAULT_KNOBS = {'tps': 100.0, 'tokens': 20, 'fail': 0, 'fail_after': -1, 'error_after': -1, 'think': 0,
                 'hang': False, 'stamp': False, 'delay': 0.0, 'echo': False, 'hostile': False}
TASK_KNOBS = {'steps': 4, 'step': 0.0, 'fail': False, 'hang': False, 'down': 0.0,
              'submit_fail': 0, 'fail_times': 0, 'hostile': False, 'cdn': False, 'html': False}

# What "hostile" sends: text a real upstream may send, cut at a byte limit or
# not UTF-8 at all. Raw bytes, so it is spliced into JSON by hand.
HOSTILE_TEXT = ('\u5199' * 2000).encode('utf-8') + b' \xff\xfe\xc0\x80 end'


def hostile_json(value, field_path):
    """json.dumps(value) with the string at field_path replaced by HOSTILE_TEXT's raw bytes."""
    marker = '@@HOSTILE@@'
    target = value
    for key in field_path[:-1]:
        target = target[key]
    target[field_path[-1]] = marker
    return json.dumps(value).encode('utf-8').replace(marker.encode(), HOSTILE_TEXT)


class Stats:
    """Counters shown by GET /stats, for tests that check what the worker did upstream."""

    def __init__(self):
        self.values = {'chat_requests': 0, 'streams_open': 0, 'streams_abandoned': 0,
                       'image_submits': 0, 'image_fetches': 0, 'video_submits': 0,
                       'video_fetches': 0}

    def add(self, key, n=1):
        self.values[key] += n

    def snapshot(self):
        return dict(self.values)


STATS = Stats()


class ClientGone(Exception):
    """The client closed its connection while we were answering."""


class BadRequest(Exception):
    pass


# ---------------------------------------------------------------------------
# Knobs
# ---------------------------------------------------------------------------

def parse_knobs(model, defaults=None):
    """The knobs a model name (or a task prompt's first word) asks for, over
    defaults (DEFAULT_KNOBS). Raises BadRequest on a bad knob."""
    base = DEFAULT_KNOBS if defaults is None else defaults
    knobs = dict(base)
    parts = model.split(':')
    if not parts[0].startswith('fake'):     # fake, fake-claude, fake-gemini, ...
        return knobs
    for part in parts[1:]:
        name, sep, value = part.partition('=')
        if name not in knobs:
            raise BadRequest('unknown knob "%s" in model "%s"' % (name, model))
        default = base[name]
        try:
            if isinstance(default, bool):
                if sep:
                    raise ValueError
                knobs[name] = True
            elif isinstance(default, float):
                knobs[name] = float(value)
            else:
                knobs[name] = int(value)
        except ValueError:
            raise BadRequest('bad value for knob "%s" in model "%s"' % (name, model))
    if defaults is not None:
        return knobs
    if knobs['tps'] < 0 or knobs['tokens'] < 0 or knobs['delay'] < 0:
        raise BadRequest('tps, tokens and delay must not be negative')
    if knobs['fail'] and not 400 <= knobs['fail'] <= 599:
        raise BadRequest('fail must be an HTTP error status (400-599)')
    return knobs


def parse_task_knobs(prompt):
    """The knobs of an image/video prompt (its first word), over TASK_KNOBS."""
    first = prompt.split(None, 1)[0] if prompt.split() else ''
    knobs = parse_knobs(first if first.startswith('fake') else '', TASK_KNOBS)
    if knobs['steps'] < 1 or knobs['step'] < 0 or knobs['down'] < 0:
        raise BadRequest('steps must be at least 1, step and down not negative')
    if knobs['submit_fail'] and not 400 <= knobs['submit_fail'] <= 599:
        raise BadRequest('submit_fail must be an HTTP error status (400-599)')
    if knobs['fail_times'] < 0:
        raise BadRequest('fail_times must be 0 or more')
    return knobs


SUBMITS = {}                 # prompt -> submits seen, for fail_times


def submit_knobs(prompt):
    """The knobs of one submit of prompt: past the first fail_times submits of
    this prompt, fail and submit_fail are off."""
    knobs = parse_task_knobs(prompt)
    SUBMITS[prompt] = n = SUBMITS.get(prompt, 0) + 1
    if knobs['fail_times'] and n > knobs['fail_times']:
        knobs.update(fail=False, submit_fail=0)
    return knobs




class PacedStream:
    """What the streamed answers of every protocol share (chat.ChatStream,
    protocols.FrameStream): a tick() writing frames on the loop's timers, a
    pause while the client reads slower (writable resumes it), and the end,
    counted in STATS. Subclasses set req, timer, waiting and done."""

    def writable(self):
        if self.waiting and not self.done:
            self.waiting = False
            self.tick()

    def finish(self):
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        STATS.add('streams_open', -1)
        self.req.finish()

    def client_gone(self):
        if self.done:
            return
        STATS.add('streams_abandoned')
        self.req.note += ' client_gone'
        self.req.close_connection = True
        self.finish()
