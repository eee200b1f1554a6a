#!/usr/bin/env python3
"""sse_stub: a stand-in for nginx + mjs-api's GET /api/events, to test sse_load alone.

Speaks HTTP/1.1 with chunked transfer encoding on 127.0.0.1, one event log per cookie
(user), events numbered 1, 2, 3, ... with "@T<ns>" stamps in message.delta text. The
bytes go out in random pieces (chunk boundaries and TCP writes fall anywhere, CRLF
included) so the client's decoders see every split. Knobs inject faults whose counts
sse_load must report exactly:

  --gap-every N     each stream skips one event every N (lost += 1 per skip)
  --dup-every N     each stream repeats one event every N (duplicates += 1)
  --close-after N   each stream ends (terminating chunk) after N events; with sse_load -R
                    the client reconnects with Last-Event-ID and the stub replays from it
  --status CODE     answer every request with CODE instead of 200

PATCH /api/conversations/{id} {"title"} (keep-alive) appends a conversation.updated event
with that title to the caller's log, as sse_load -W does in change-to-tab mode.

At exit (SIGTERM/SIGINT) it prints the totals it injected, for comparison.
"""
import argparse
import asyncio
import json
import random
import signal
import sys
import time


class User:
    def __init__(self):
        self.log = []          # (seq, type, data)
        self.cond = asyncio.Condition()


users = {}
stats = {"streams": 0, "skipped": 0, "duplicated": 0, "closed": 0, "events_sent": 0}


def user_of(cookie):
    u = users.get(cookie)
    if u is None:
        u = users[cookie] = User()
    return u


async def produce(args):
    """Appends one event per user every 1/rate s: mostly deltas, some renames."""
    n = 0
    while True:
        await asyncio.sleep(1.0 / args.rate)
        n += 1
        for cookie, u in list(users.items()):
            seq = len(u.log) + 1
            stamp = "@T%019d" % time.time_ns()
            if n % 10 == 0:
                typ = "conversation.updated"
                data = json.dumps({"id": "c1", "title": "t " + stamp})
            else:
                typ = "message.delta"
                text = " tok%d%s" % (n, stamp)
                if n % 7 == 0:
                    text += " two%s" % ("@T%019d" % time.time_ns())
                data = json.dumps({"message_id": "m1", "conversation_id": "c1",
                                   "offset": n, "text": text})
            u.log.append((seq, typ, data))
            async with u.cond:
                u.cond.notify_all()


async def send_chunked(writer, payload):
    """One HTTP chunk per call, written to the socket in random pieces."""
    if not payload:
        return
    frame = b"%x\r\n" % len(payload) + payload + b"\r\n"
    i = 0
    while i < len(frame):
        j = min(len(frame), i + random.randint(1, 40))
        writer.write(frame[i:j])
        await writer.drain()
        i = j


async def rename(reader, writer, first, hdr, args):
    """PATCH /api/conversations/{id} on a keep-alive connection: one
    conversation.updated event with the new title per request."""
    while True:
        body = await reader.readexactly(int(hdr.get("content-length", "0")))
        u = user_of(hdr.get("cookie", ""))
        conv = first.split()[1].rsplit("/", 1)[1]
        title = json.loads(body)["title"]
        obj = json.dumps({"id": conv, "title": title})
        u.log.append((len(u.log) + 1, "conversation.updated", obj))
        stats["renames"] = stats.get("renames", 0) + 1
        async with u.cond:
            u.cond.notify_all()
        out = obj.encode()
        if args.chunked_replies:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(out), out))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        first = lines[0]
        hdr = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdr[k.strip().lower()] = v.strip()


async def handle(reader, writer, args):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    hdr = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdr[k.strip().lower()] = v.strip()
    cookie = hdr.get("cookie", "")
    if lines[0].startswith("PATCH "):
        await rename(reader, writer, lines[0], hdr, args)
        return
    if args.status != 200 or not cookie:
        code = args.status if args.status != 200 else 401
        writer.write(b"HTTP/1.1 %d Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % code)
        await writer.drain()
        writer.close()
        return
    u = user_of(cookie)
    stats["streams"] += 1
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
    if "last-event-id" in hdr:
        pos = int(hdr["last-event-id"])
        opening = b"retry: 300\n\n"
    else:
        pos = len(u.log)
        opening = b"retry: 300\n\nid: %d\n\n" % pos
    await send_chunked(writer, opening)
    sent = 0
    try:
        while True:
            async with u.cond:
                while len(u.log) <= pos:
                    try:
                        await asyncio.wait_for(u.cond.wait(), 1.0)
                    except asyncio.TimeoutError:
                        await send_chunked(writer, b": keepalive\n\n")
            out = b""
            while pos < len(u.log):
                seq, typ, data = u.log[pos]
                pos += 1
                sent += 1
                if args.gap_every and sent % args.gap_every == 0:
                    stats["skipped"] += 1
                    continue
                ev = b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, typ.encode(), data.encode())
                if args.crlf:
                    ev = ev.replace(b"\n", b"\r\n")
                out += ev
                stats["events_sent"] += 1
                if args.dup_every and sent % args.dup_every == 0:
                    stats["duplicated"] += 1
                    stats["events_sent"] += 1
                    out += ev
                if args.close_after and sent >= args.close_after:
                    break
            await send_chunked(writer, out)
            if args.close_after and sent >= args.close_after:
                stats["closed"] += 1
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                writer.close()
                return
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=20.0, help="events per user per second")
    ap.add_argument("--gap-every", type=int, default=0)
    ap.add_argument("--dup-every", type=int, default=0)
    ap.add_argument("--close-after", type=int, default=0)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--chunked-replies", action="store_true",
                    help="answer PATCH with a chunked body")
    ap.add_argument("--no-produce", action="store_true",
                    help="no generated events: only renames (PATCH) make events")
    ap.add_argument("--crlf", action="store_true", help="end SSE lines with CRLF")
    args = ap.parse_args()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args), "127.0.0.1",
                                        args.port, backlog=4096)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, lambda: done.done() or done.set_result(None))
    prod = asyncio.create_task(produce(args) if not args.no_produce else asyncio.sleep(1e9))
    print("sse_stub: listening on 127.0.0.1:%d" % args.port, file=sys.stderr, flush=True)
    await done
    prod.cancel()
    server.close()
    print("sse_stub: " + " ".join("%s=%d" % kv for kv in stats.items()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
