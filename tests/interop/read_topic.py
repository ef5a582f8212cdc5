#!/usr/bin/python3
"""Reads every record of a topic with kafka-python (a third-party client) and prints one JSON
object per record: partition, offset, key, value, headers. Used by the interop tests."""
import json
import sys

from kafka import KafkaConsumer, TopicPartition

bootstrap, topic, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                         consumer_timeout_ms=10000, group_id=None)
partitions = consumer.partitions_for_topic(topic) or set()
consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
seen = 0
for m in consumer:
    print(json.dumps({
        "partition": m.partition, "offset": m.offset,
        "key": m.key.decode() if m.key is not None else None,
        "value": m.value.decode(errors="replace"),
        "headers": [[k, v.decode(errors="replace")] for k, v in m.headers],
    }), flush=True)
    seen += 1
    if seen >= expected:
        break
sys.exit(0 if seen >= expected else 1)
