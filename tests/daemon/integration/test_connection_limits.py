"""Connection admission and memory under hostile clients, against a real mnemod.

Idle sockets, slow header senders and unauthenticated clients stay in the pending budget
(--max-pending-connections, --header-timeout) and never take one of --max-connections'
slots, so /healthz and authenticated requests keep answering at once. Large request bodies
do not leave the daemon's RSS high afterwards. Loopback only; every loop is bounded.
"""
import http.client
import json
import socket
import time

import pytest

KEY = "sk-limits-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


def open_crowd(port, idle, slow):
    """`idle` sockets that send nothing and `slow` ones that send half a request head."""
    crowd = []
    for i in range(idle + slow):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i >= idle:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        crowd.append(s)
    return crowd


def close_all(crowd):
    for s in crowd:
        s.close()


def timed_get(port, path, headers=None, timeout=5):
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, body, time.monotonic() - t0
    finally:
        c.close()


def vm_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.parametrize("pending", [None, "16"])
def test_idle_and_slow_sockets_do_not_lock_out_clients(daemon_factory, pending):
    extra = ["--max-connections", "8", "--api-key", KEY]
    if pending:
        extra += ["--max-pending-connections", pending]  # 250 sockets overflow it: eviction
    d = daemon_factory(*extra)
    crowd = open_crowd(d.port, 200, 50)
    try:
        time.sleep(0.3)  # let the daemon accept them all
        for _ in range(3):
            st, body, took = timed_get(d.port, "/healthz")
            assert st == 200 and json.loads(body)["status"] == "ok"
            assert took < 1.0, f"/healthz took {took:.2f} s with 250 idle/slow sockets open"
            st, body, took = timed_get(d.port, "/v1/models", AUTH)
            assert st == 200 and json.loads(body)["object"] == "list"
            assert took < 1.0, f"an authenticated request took {took:.2f} s"
            # Unauthenticated requests are refused without taking a slot.
            st, body, _ = timed_get(d.port, "/v1/models")
            assert st == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
            # The slow senders trickle on; none of them ever completes a head.
            for s in crowd[200:]:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass  # closed by the header deadline or pushed out of the pending budget
    finally:
        close_all(crowd)


def test_slow_header_sender_is_cut_after_the_header_timeout(daemon_factory):
    d = daemon_factory("--header-timeout", "1")
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    t0 = time.monotonic()
    closed = False
    try:
        for _ in range(40):  # at most ~8 s
            try:
                s.sendall(b"x")
                s.settimeout(0.2)
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
    finally:
        s.close()
    took = time.monotonic() - t0
    assert closed and took < 4, f"closed={closed} after {took:.2f} s"
    st, _, _ = timed_get(d.port, "/healthz")
    assert st == 200


def test_rss_returns_after_large_requests(daemon_factory):
    d = daemon_factory("--max-body-bytes", "16M")
    pid = d.proc.pid
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)

    def post(body):
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    # Valid JSON of ~10 MB that mnemod rejects right after parsing it ("messages" must be a list).
    big = json.dumps({"messages": "x" * (10 << 20)}).encode()
    small = json.dumps({"messages": "x"}).encode()
    st, _ = post(small)
    assert st == 400
    time.sleep(0.5)
    baseline = vm_rss_mb(pid)
    peak = baseline
    for _ in range(8):  # one keep-alive connection, as a client's pool would use
        st, body = post(big)
        assert st == 400 and json.loads(body)["error"]["param"] == "messages"
        peak = max(peak, vm_rss_mb(pid))
    time.sleep(1.5)  # a short idle: the daemon trims at most once a second, 250 ms after
    after = vm_rss_mb(pid)
    deadline = time.monotonic() + 5
    while after > baseline + 64 and time.monotonic() < deadline:
        time.sleep(0.25)
        after = vm_rss_mb(pid)
    print(f"\nVmRSS: baseline {baseline:.0f} MB, peak {peak:.0f} MB, after idle {after:.0f} MB")
    assert after < baseline + 64, f"RSS baseline {baseline:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB"
    # The connection is still usable.
    st, _ = post(small)
    assert st == 400
    conn.close()


def test_404_for_a_non_utf8_path_is_valid_json(daemon):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
        s.sendall(b"GET /no\xff\xfe\xc0\xafwhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        for _ in range(100):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404")
    err = json.loads(body.decode("utf-8"))["error"]  # strict: raises on invalid UTF-8
    assert err["code"] == "not_found" and "\ufffd" in err["message"]
