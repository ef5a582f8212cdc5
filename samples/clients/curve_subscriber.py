#!/usr/bin/env python3
"""Prints the outcomes on a Runnel stack's results feed, as a third-party client would read them.

The feed, like every socket of a stack, is a CURVE server (docs/protocol.md section 6). A client
needs the stack's server public key and a key pair the stack admits: on the stack's host, the
local pair in <state dir>/keys; elsewhere, a pair whose public half is listed in the stack's
`security.clients` directory.

    curve_subscriber.py STATE_DIR [COUNT]

Needs pyzmq (Debian: python3-zmq). Exits 0 after COUNT outcomes (default 1), 1 if none comes
within 30 s.
"""
import json
import pathlib
import sys

import zmq


def read_key(path):
    return path.read_text().split()[0].encode()


def main():
    state = pathlib.Path(sys.argv[1])
    want = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    endpoints = json.loads((state / "endpoints.json").read_text())
    keys = state / "keys"

    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.curve_serverkey = read_key(keys / "server.pub")  # or endpoints["server_key"]
    sub.curve_publickey = read_key(keys / "local.pub")
    sub.curve_secretkey = read_key(keys / "local.secret")
    sub.setsockopt(zmq.SUBSCRIBE, b"runnel.welcome")  # the feed greets every new subscriber
    sub.setsockopt(zmq.SUBSCRIBE, b"")  # every function's outcomes
    sub.connect(endpoints["results"])

    seen = 0
    while seen < want:
        if not sub.poll(30_000):
            print("no outcome within 30 s", file=sys.stderr)
            return 1
        frames = sub.recv_multipart()
        if frames[0] == b"runnel.welcome":
            print("subscribed", flush=True)
            continue
        for meta, output in zip(frames[1::2], frames[2::2]):
            outcome = json.loads(meta)
            print(outcome["function"], outcome["id"], outcome["status"], output.decode(errors="replace"), flush=True)
            seen += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
