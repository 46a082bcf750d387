"""The librdkafka side of the interop specs (test/interop-librdkafka.e2e-spec.ts), through confluent-kafka.

A consumer-group member (classic protocol, partition.assignment.strategy as given) or a producer of the records the
spec describes. It reports what it does as JSON lines on stdout, the protocol of test/support/go/main.go:

    interop_rdkafka.py consume BROKERS GROUP TOPICS CLIENT_ID STRATEGIES MAX_RUNTIME_MS
    interop_rdkafka.py produce BROKERS TOPIC            (records as JSON lines on stdin)
"""

import json
import logging
import re
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, libversion


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def text(data):
    return None if data is None else data.decode("utf-8", "replace")


# librdkafka says who leads only in its group debug log: "JoinGroup response: GenerationId 3, Protocol range,
# LeaderId rdkafka-... (me), my MemberId rdkafka-..., member metadata count 2: (no error)".
JOIN_RESPONSE = re.compile(r"JoinGroup response: GenerationId (-?\d+), Protocol (\S*), LeaderId (\S*)( \(me\))?.*?member metadata count (\d+)")


class LeaderLog(logging.Handler):
    """Turns librdkafka's JoinGroup debug lines into 'leader' events; every other line goes to stderr."""

    def emit(self, record):
        line = record.getMessage()
        match = JOIN_RESPONSE.search(line)
        if match and match.group(4):
            emit("leader", protocol=match.group(2), members=int(match.group(5)))
        elif record.levelno >= logging.WARNING:
            sys.stderr.write(line + "\n")


def consume(brokers, group, topics, client_id, strategies, max_runtime_ms):
    stopping = {"signal": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(signal=True))
    logger = logging.getLogger("rdkafka")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(LeaderLog())

    def on_error(error):
        emit("error", message=f"{error.name()}: {error.str()}", code=error.code(), fatal=error.fatal())

    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "client.id": client_id,
            "group.protocol": "classic",
            "partition.assignment.strategy": strategies,
            "auto.offset.reset": "earliest",
            # Commit only what was reported: offsets are stored after the record's line is written.
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": 200,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 200,
            "debug": "cgrp",
            "error_cb": on_error,
            "logger": logger,
        }
    )
    generation = {"n": 0}

    def on_assign(c, partitions):
        generation["n"] += 1
        assigned = {}
        for tp in partitions:
            assigned.setdefault(tp.topic, []).append(tp.partition)
        emit("assigned", memberId=c.memberid(), generation=generation["n"], partitions={t: sorted(p) for t, p in assigned.items()})

    def on_revoke(c, _partitions):
        # Eager protocol: everything goes; commit what was stored before another member takes it.
        try:
            c.commit(asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() != KafkaError._NO_OFFSET:
                emit("error", message=f"commit on revoke: {error}")
        emit("revoked", generation=generation["n"])

    emit("started", client="librdkafka " + libversion()[0])
    consumer.subscribe(topics.split(","), on_assign=on_assign, on_revoke=on_revoke)
    deadline = time.monotonic() + max_runtime_ms / 1000
    while not stopping["signal"] and time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            emit("error", message=str(msg.error()))
            continue
        headers = [[name, text(value)] for name, value in (msg.headers() or [])]
        emit(
            "record",
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            key=text(msg.key()),
            value=text(msg.value()),
            headers=headers,
        )
        consumer.store_offsets(message=msg)
    # close() commits the stored offsets and leaves the group.
    consumer.close()
    emit("exit", reason="signal" if stopping["signal"] else "timeout")


def produce(brokers, topic):
    records = [json.loads(line) for line in sys.stdin if line.strip()]
    runs = []
    for record in records:
        if not runs or runs[-1][0]["codec"] != record["codec"]:
            runs.append([])
        runs[-1].append(record)
    for run in runs:
        codec = run[0]["codec"]
        producer = Producer(
            {
                "bootstrap.servers": brokers,
                "client.id": "interop-librdkafka-producer",
                "compression.type": codec,
                "acks": "all",
                # One run, one batch: the records are compressed together.
                "linger.ms": 100,
            }
        )
        failures = []

        def delivered(error, msg, codec=codec):
            if error is not None:
                failures.append(f"{msg.topic()}[{msg.partition()}]: {error}")
            else:
                emit("produced", partition=msg.partition(), offset=msg.offset(), codec=codec)

        for record in run:
            producer.produce(
                topic,
                key=None if record["key"] is None else record["key"].encode(),
                value=None if record["value"] is None else record["value"].encode(),
                headers=[(name, None if value is None else value.encode()) for name, value in record["headers"]],
                partition=record["partition"],
                on_delivery=delivered,
            )
        remaining = producer.flush(30)
        if remaining or failures:
            emit("error", message=f"{remaining} record(s) not delivered; failures: {failures}")
            emit("exit", reason="error")
            sys.exit(1)
    emit("exit", reason="done")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "consume":
        consume(*args[:5], int(args[5]))
    elif command == "produce":
        produce(*args)
    else:
        emit("error", message=f"unknown command {command}")
        sys.exit(2)
