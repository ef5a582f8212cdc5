#!/bin/sh
# @NAME@: a Runnel function as a plain program (handler exec:./handler.sh); any language works the
# same way. It counts the lines, words and bytes of its input and writes them as JSON:
#   {"function":"@NAME@","lines":2,"words":9,"bytes":44}
#
# Runnel's exec protocol: the payload is stdin (for an input by reference, stdin is the file), the
# result is stdout (JSON here, so its content type is application/json), the event's headers are
# RUNNEL_* environment variables (RUNNEL_ID, RUNNEL_FUNCTION, RUNNEL_KEY...), the params RUNNEL_PARAMS
# as JSON. Exit 0 on success, 2 for bad input (dead-lettered at once, never retried), any other
# status to be retried; stderr is the reason.
set -eu

# wc prints lines, words and bytes in that order.
set -- $(wc -l -w -c)
lines=$1 words=$2 bytes=$3
if [ "$bytes" -eq 0 ]; then
  echo "empty input: expected some text" >&2
  exit 2
fi
printf '{"function":"%s","lines":%d,"words":%d,"bytes":%d}\n' "${RUNNEL_FUNCTION:-@NAME@}" "$lines" "$words" "$bytes"
