#!/usr/bin/python3
"""A fake MCP stdio server for tests/plugins/mcp_server_test.cc (standard library only).

Usage: fake_mcp_server.py MODE STATE_DIR

STATE_DIR/starts counts the processes started, so that a mode can misbehave in
the first process only and behave once restarted; STATE_DIR/received.jsonl
records every message received (one JSON object per line, with the pid).

Modes:
  normal         tools echo, sleep, fail, big, structured, image; asks the
                 client for ping and roots/list after initialization
  malformed      first process answers tools/call with a line that is not JSON
  silent         never answers tools/call
  no-init        never answers initialize
  exit-mid-call  first process exits with status 3 on tools/call
  paginate       tools/list in pages of two, with cursors
  list-changed   the tool grow sends notifications/tools/list_changed; the list
                 then has two more tools
  flood          first process answers tools/call with a 2 MiB line
"""
import json
import os
import sys
import threading
import time

MODE = sys.argv[1]
STATE = sys.argv[2]
out_lock = threading.Lock()
grown = False


def bump_starts():
    path = os.path.join(STATE, "starts")
    n = 0
    if os.path.exists(path):
        with open(path) as f:
            n = int(f.read().strip() or 0)
    n += 1
    with open(path, "w") as f:
        f.write(str(n))
    return n


START = bump_starts()
FIRST = START == 1


def record(msg):
    with out_lock:
        with open(os.path.join(STATE, "received.jsonl"), "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "msg": msg}) + "\n")


def write_raw(text):
    with out_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def send(msg):
    write_raw(json.dumps(msg))


def text(s):
    return {"content": [{"type": "text", "text": s}]}


def tool(name, props=None):
    return {"name": name, "description": "the " + name + " tool",
            "inputSchema": {"type": "object", "properties": props or {}}}


def tool_list():
    if MODE == "paginate":
        return [tool("t%d" % i) for i in range(5)]
    if MODE == "list-changed":
        base = [tool("echo", {"text": {"type": "string"}}), tool("grow")]
        return base + ([tool("added1"), tool("added2")] if grown else [])
    return [tool("echo", {"text": {"type": "string"}}), tool("sleep", {"ms": {"type": "integer"}}),
            tool("fail"), tool("big", {"bytes": {"type": "integer"}}), tool("structured"), tool("image")]


def call_tool(rid, name, args):
    global grown
    if MODE == "silent" or MODE == "no-init":
        return
    if MODE == "malformed" and FIRST:
        write_raw("this is not JSON {")
        return
    if MODE == "exit-mid-call" and FIRST:
        os._exit(3)
    if MODE == "flood" and FIRST:
        write_raw(json.dumps({"jsonrpc": "2.0", "id": rid, "result": text("x" * (2 << 20))}))
        return
    if name == "echo":
        result = text(args.get("text", ""))
    elif name == "sleep":
        time.sleep(args.get("ms", 100) / 1000.0)
        result = text("slept %d ms" % args.get("ms", 100))
    elif name == "fail":
        result = dict(text("it went wrong"), isError=True)
    elif name == "big":
        result = text("y" * args.get("bytes", 1000))
    elif name == "structured":
        result = {"content": [], "structuredContent": {"temperature": 21.5, "unit": "C"}}
    elif name == "image":
        result = {"content": [{"type": "text", "text": "a picture:"},
                              {"type": "image", "data": "AAAA", "mimeType": "image/png"}]}
    elif name == "grow":
        grown = True
        send({"jsonrpc": "2.0", "id": rid, "result": text("grown")})
        send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        return
    elif name.startswith("added") or name.startswith("t"):
        result = text("called " + name)
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "Unknown tool: " + name}})
        return
    send({"jsonrpc": "2.0", "id": rid, "result": result})


def handle(msg):
    method = msg.get("method")
    rid = msg.get("id")
    if method == "initialize":
        if MODE == "no-init":
            return
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "fake", "version": "1.0"}}})
    elif method == "notifications/initialized":
        if MODE == "normal":
            # The client must answer ping and decline what it does not offer.
            send({"jsonrpc": "2.0", "id": "srv-ping", "method": "ping"})
            send({"jsonrpc": "2.0", "id": "srv-roots", "method": "roots/list"})
            send({"jsonrpc": "2.0", "method": "notifications/message",
                  "params": {"level": "info", "data": "hello from the fake"}})
    elif method == "tools/list":
        tools = tool_list()
        if MODE == "paginate":
            start = int((msg.get("params") or {}).get("cursor", "0"))
            page = {"tools": tools[start:start + 2]}
            if start + 2 < len(tools):
                page["nextCursor"] = str(start + 2)
            send({"jsonrpc": "2.0", "id": rid, "result": page})
        else:
            send({"jsonrpc": "2.0", "id": rid, "result": {"tools": tools}})
    elif method == "tools/call":
        p = msg.get("params") or {}
        threading.Thread(target=call_tool, args=(rid, p.get("name"), p.get("arguments") or {}), daemon=True).start()
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    elif rid is not None and method is not None:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})


def main():
    sys.stderr.write("fake MCP server %s start %d\n" % (MODE, START))
    sys.stderr.write("a long stderr line " + "z" * 5000 + "\n")
    sys.stderr.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        record(msg)
        handle(msg)


main()
