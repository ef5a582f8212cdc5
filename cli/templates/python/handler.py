#!/usr/bin/env python3
"""@NAME@: a Runnel function in Python (handler exec:/usr/bin/python3 handler.py), standard library only.

Reads a JSON object on stdin, e.g. {"name": "Ada"}, and writes on stdout
{"greeting": "Hello, Ada!", "function": "@NAME@", "event": "<the event id>"}.
Params (RUNNEL_PARAMS, from runnel.yaml): greeting (default "Hello").

Runnel's exec protocol: the payload is stdin, the result is stdout (JSON here, so its content type
is application/json); the event's headers arrive as RUNNEL_* environment variables (RUNNEL_ID,
RUNNEL_KEY, RUNNEL_ATTEMPT...), the params as RUNNEL_PARAMS. Exit 0 on success, 2 for bad input
(dead-lettered at once, never retried), any other status to be retried; stderr is the reason.
"""
import json
import os
import sys

BAD_INPUT = 2


def handle(payload: bytes, params: dict, event_id: str) -> dict:
    """The function itself; raises ValueError for input it cannot take."""
    try:
        request = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from e
    if not isinstance(request, dict) or not isinstance(request.get("name"), str):
        raise ValueError('expected a JSON object with a string "name", like {"name": "Ada"}')
    greeting = params.get("greeting", "Hello")
    return {"greeting": f"{greeting}, {request['name']}!", "function": "@NAME@", "event": event_id}


def main() -> int:
    params = json.loads(os.environ.get("RUNNEL_PARAMS") or "{}")
    try:
        result = handle(sys.stdin.buffer.read(), params, os.environ.get("RUNNEL_ID", ""))
    except ValueError as e:
        print(e, file=sys.stderr)
        return BAD_INPUT
    sys.stdout.write(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
