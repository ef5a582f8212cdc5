#!/usr/bin/env python3
"""A Runnel function in Python (handler exec:...), standard library only.

Reads one sensor reading as JSON on stdin, e.g. {"device": "d1", "celsius": 21.5}, and writes it
back on stdout with the temperature in Fahrenheit and where it came from:
{"device": "d1", "celsius": 21.5, "fahrenheit": 70.7, "event": "<id>", "attempt": 1}.

The contract (functions/README.md): headers arrive as RUNNEL_* environment variables, params as
RUNNEL_PARAMS (JSON); exit 0 with the result on stdout, exit 2 for bad input (dead-lettered at
once), any other status to be retried; stderr is the reason.
"""
import json
import os
import sys

BAD_INPUT = 2


def main() -> int:
    params = json.loads(os.environ.get("RUNNEL_PARAMS", "{}"))
    precision = params.get("precision", 1)
    try:
        reading = json.load(sys.stdin)
    except json.JSONDecodeError as e:
        print(f"not JSON: {e}", file=sys.stderr)
        return BAD_INPUT
    if not isinstance(reading, dict) or not isinstance(reading.get("celsius"), (int, float)):
        print('expected an object with a numeric "celsius"', file=sys.stderr)
        return BAD_INPUT
    reading["fahrenheit"] = round(reading["celsius"] * 9 / 5 + 32, precision)
    reading["event"] = os.environ.get("RUNNEL_ID", "")
    reading["attempt"] = int(os.environ.get("RUNNEL_ATTEMPT", "1"))
    if "RUNNEL_KEY" in os.environ:
        reading["key"] = os.environ["RUNNEL_KEY"]
    json.dump(reading, sys.stdout, separators=(",", ":"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
