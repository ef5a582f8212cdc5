#!/usr/bin/env python3
"""A Runnel function in Python (handler exec:...), standard library only.

Reads one sensor reading as JSON on stdin, e.g. {"device": "d1", "celsius": 21.5}, and writes it
back on stdout with the temperature in Fahrenheit and where it came from:
{"device": "d1", "celsius": 21.5, "fahrenheit": 70.7, "event": "<id>", "attempt": 1}.

Params (RUNNEL_PARAMS): precision (default 1); alert_above, a Fahrenheit threshold: a hotter
reading is also published as an alert record to alerts_topic (default "enrich.alerts"), keyed by
device; save: true also writes the enriched reading to the output file reading.json.

The contract (functions/README.md): headers arrive as RUNNEL_* environment variables, params as
RUNNEL_PARAMS (JSON); exit 0 with the result on stdout, exit 2 for bad input (dead-lettered at
once), any other status to be retried; stderr is the reason. Output files and records to publish
are listed, one JSON object a line, in the file named by RUNNEL_CONTROL_FILE; they count only when
the program exits 0.
"""
import json
import os
import sys

BAD_INPUT = 2


def request(line: dict) -> None:
    """Asks Runnel for an output file or an emitted record (applied if this call succeeds)."""
    with open(os.environ["RUNNEL_CONTROL_FILE"], "a", encoding="utf-8") as control:
        control.write(json.dumps(line) + "\n")


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
    body = json.dumps(reading, separators=(",", ":"))

    if "alert_above" in params and reading["fahrenheit"] > params["alert_above"]:
        alert = {"device": reading.get("device"), "fahrenheit": reading["fahrenheit"], "event": reading["event"]}
        request({"emit": {"topic": params.get("alerts_topic", "enrich.alerts"),
                          "key": str(reading.get("device", "")),
                          "payload": json.dumps(alert),
                          "headers": {"content-type": "application/json"}}})
    if params.get("save"):
        out_dir = os.environ["RUNNEL_OUTPUT_DIR"]
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "reading.json"), "w", encoding="utf-8") as f:
            f.write(body)
        request({"output": "reading.json", "facts": {"fahrenheit": reading["fahrenheit"]}})

    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
