#!/usr/bin/env python3
"""
fake_upstream: a fake AI upstream for the integration tests, the benchmarks
and the demo. Python 3 standard library only.

    python3 dev/fake_upstream [ADDR:]PORT

Listens on ADDR:PORT (ADDR 127.0.0.1 unless given) and speaks (HTTP/1.1, keep-alive):

    GET  /healthz                 200 {"status":"ok"}
    GET  /stats                   counters: chat requests, streams open, streams
                                  the client abandoned (e.g. the worker's stop)
    POST /v1/chat/completions     OpenAI chat completions; "stream": true answers
                                  text/event-stream chunks, then "data: [DONE]"
    POST /mj/submit/imagine       Midjourney-proxy image task (needs an
                                  mj-api-secret header): {"code":1,"result":ID}
    GET  /mj/task/ID/fetch        {"status","progress":"NN%","imageUrl","failReason"}
    POST /v1/videos               OpenAI-style video job (needs a Bearer key):
                                  {"id","status":"queued","progress":0}
    GET  /v1/videos/ID            {"id","status","progress","error"}
    GET  /v1/videos/ID/content    the "video" (a few bytes)
    GET  /fake/tasks              every image/video task seen: id, kind, prompt,
                                  fetches, stage (tests count submits per prompt)
    GET  /fake/images/ID.png      the "image" of a finished image task: a small
                                  PNG whose colour depends on ID (the web client
                                  shows it; browsers need a real image)

What a chat request does is chosen by its model name, "fake" followed by
colon-separated knobs (any name not starting with "fake" gets the defaults):

    tps=N          tokens per second (default 100; 0 = as fast as possible)
    tokens=N       number of tokens (default 20); each token is "tok "
    fail=CODE      answer HTTP CODE with an OpenAI-style JSON error body
    fail_after=N   stream N tokens, then drop the connection (no final chunk,
                   no [DONE], no end of the chunked body)
    hang           send the response headers, then nothing until the client
                   goes away (non-stream: not even headers)
    delay=S        send the response headers, then wait S seconds (a float)
                   before the first token (non-stream: before the answer)
    stamp          each token is "tok@T<ns> ": <ns> is CLOCK_REALTIME in
                   nanoseconds, 19 digits, taken just before the token is written
    echo           the reply repeats the request: one token "<role>: <content>\n"
                   per message sent (tokens= is ignored), so tests can check
                   what conversation the worker sent
    hostile        every token is "tok " followed by bytes that are not UTF-8
                   (raw \xff\xfe\xc0\x80) and a lone surrogate (\ud800), and
                   the stream ends with an error event whose message is 2,000
                   CJK characters and raw invalid bytes (no [DONE])

    A request's "max_tokens" below tokens= is honoured as a real upstream does:
    that many tokens, then finish_reason "length".

    e.g. "fake", "fake:tps=50:tokens=40", "fake:fail=500", "fake:fail_after=5",
         "fake:hang", "fake:stamp:tps=20", "fake:delay=2:tokens=10"

Image and video tasks take their knobs from the prompt's first word when it
starts with "fake" (same syntax). A task moves one stage per fetch (no faster
than one per `step` seconds): NOT_START/queued at submit, SUBMITTED/in_progress
0%, then IN_PROGRESS at 100/steps, 200/steps, ... and finally SUCCESS/completed
(100%) or FAILURE/failed:

    steps=N        progress steps (default 4: 25%, 50%, 75%, then done)
    step=S         at least S seconds (a float) between two stages (default 0)
    fail           end in FAILURE / failed with reason "fake failure"
    hang           stay at the first IN_PROGRESS stage forever
    down=S         on reaching the first IN_PROGRESS stage, answer every fetch
                   of this task with HTTP 503 for S seconds (an upstream that is
                   down, then back)
    submit_fail=CODE  answer the submit with HTTP CODE
    fail_times=N   fail and submit_fail hit only the first N submits of this
                   exact prompt, later ones run normally (default 0: every one);
                   a retried task fails, then succeeds
    hostile        with fail: the failure's reason (failReason / error.message)
                   is 2,000 CJK characters and raw bytes that are not UTF-8
    cdn            video: the completed job names its own "url" on another
                   origin (https://cdn.fake.invalid/ID.mp4), as a CDN link
    html           video: the content route serves the file as text/html (what
                   a hostile upstream could do to run a page on our origin)

    e.g. "fake:steps=3 a cat", "fake:fail a dog", "fake:down=2:steps=2 a cow",
         "fake:fail:fail_times=1 a second chance"

An unknown knob is a 400 error, so a typo in a test cannot pass silently.
The package: server.py (HTTP/1.1 on asyncio, routing), chat.py (the chat
protocols), tasks.py (the image and video task protocols), common.py (knobs,
counters, what the modules share). Each protocol module has its ROUTES; a
protocol is a handler function per route.
One log line per request goes to stderr. SIGTERM and SIGINT stop the server.

One thread, one asyncio event loop, a small HTTP/1.1 parser of its own: the
benchmark runs hundreds of streams at once, and a thread per stream sleeping
between tokens cost more CPU than the server under test. A stream is a timer
per token (loop.call_at on its own schedule, start + i/tps); each token is one
write, without waiting for the client to read it, up to a 64 KiB buffer, past
which the stream waits for the client (as a blocking write did). A client that
closes its connection is noticed at once (streams_abandoned).
"""

import sys

import server

sys.exit(server.main(sys.argv[1:]))
