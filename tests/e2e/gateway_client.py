#!/usr/bin/python3
"""Python's urllib against Runnel's HTTP gateway, for tests/e2e/gateway_test.cpp.

  gateway_client.py request SPEC   one request; SPEC is JSON {url, method, headers, body}; prints
                                   {status, headers, body} as JSON (errors included: urllib raises
                                   them, this reads them)
  gateway_client.py concurrent URL TOKEN N [PAYLOAD]
                                   N threads, each one synchronous call to URL at once (the payload
                                   "call I", or PAYLOAD); prints {statuses: {code: count},
                                   without_retry_after, failures}
  gateway_client.py bench URL TOKEN CLIENTS SECONDS
                                   CLIENTS threads calling URL in a loop for SECONDS; prints
                                   {calls, calls_per_s, p50_ms, p99_ms, statuses}
Every request has a timeout, so the script always ends.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

TIMEOUT_S = 120
# No proxy from the environment: the gateway is on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(url, method="GET", headers=None, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=TIMEOUT_S) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def request(spec):
    body = spec.get("body")
    status, headers, data = call(spec["url"], spec.get("method", "GET"), spec.get("headers"),
                                 body.encode() if body is not None else None)
    print(json.dumps({"status": status, "headers": headers, "body": data.decode("utf-8", "replace")}))


def concurrent(url, token, n, payload=None):
    start = threading.Barrier(n)
    results = [None] * n

    def body(i):
        return (payload if payload is not None else "call %d" % i).encode()

    def one(i):
        start.wait()
        try:
            results[i] = call(url, "POST", {"Authorization": "Bearer " + token, "Content-Type": "text/plain"},
                              body(i))
        except Exception as e:  # a connection refused or reset: counted, never a hang
            results[i] = (0, {}, repr(e).encode())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = {}
    without_retry_after = 0
    failures = []
    for i, (status, headers, data) in enumerate(results):
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 503 and "Retry-After" not in headers:
            without_retry_after += 1
        if status == 200 and data != body(i):
            failures.append("call %d answered %r" % (i, data[:80]))
        if status not in (200, 503):
            failures.append("call %d: %d %r" % (i, status, data[:200]))
    print(json.dumps({"statuses": statuses, "without_retry_after": without_retry_after,
                      "failures": failures[:20]}))


def bench(url, token, clients, seconds):
    latencies = []
    statuses = {}
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def loop():
        mine = []
        seen = {}
        while time.monotonic() < until:
            t0 = time.monotonic()
            try:
                status = call(url, "POST", {"Authorization": "Bearer " + token}, b"bench")[0]
            except Exception:
                status = 0
            if status == 200:
                mine.append(time.monotonic() - t0)
            seen[status] = seen.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in seen.items():
                statuses[str(k)] = statuses.get(str(k), 0) + v

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else None

    print(json.dumps({"clients": clients, "calls": len(latencies), "calls_per_s": round(len(latencies) / elapsed, 1),
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99), "statuses": statuses}))


def main():
    mode = sys.argv[1]
    if mode == "request":
        request(json.loads(sys.argv[2]))
    elif mode == "concurrent":
        concurrent(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
    elif mode == "bench":
        bench(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
