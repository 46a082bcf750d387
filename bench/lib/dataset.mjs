/**
 * The data: JSON flight positions of about 300 bytes, keyed by aircraft (ICAO 24-bit address), spread over the
 * topic's partitions by kafkajs's default (Java-compatible murmur2) partitioner. Generated deterministically, so
 * every run and every machine consumes the same bytes.
 */
import kafkajs from 'kafkajs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { CLIENT_RETRY, PARTITIONS } from './settings.mjs';

const { Kafka, Partitioners, logLevel } = kafkajs;

export const AIRCRAFT = 5_000;
const AIRPORTS = [
  'LFPG',
  'EGLL',
  'EDDF',
  'EHAM',
  'LEMD',
  'LIRF',
  'LSZH',
  'LOWW',
  'EKCH',
  'ESSA',
  'KJFK',
  'OMDB',
];
const TYPES = ['A320', 'A321', 'A20N', 'B738', 'B38M', 'A359', 'B77W', 'E190', 'AT76', 'CRJ9'];
const OPERATORS = ['AFR', 'BAW', 'DLH', 'KLM', 'IBE', 'ITY', 'SWR', 'AUA', 'SAS', 'UAE'];

/** A small deterministic PRNG (mulberry32): same data on every run. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Each aircraft built once: every position of the data set repeats one of them. */
const aircraft = new Array(AIRCRAFT);

function aircraftOf(index) {
  return (aircraft[index] ??= newAircraft(index));
}

function newAircraft(index) {
  const random = prng(index + 1);
  const icao24 = (0x380000 + index * 97).toString(16).padStart(6, '0');
  const operator = OPERATORS[index % OPERATORS.length];
  return {
    icao24,
    callsign: `${operator}${String(100 + ((index * 37) % 9000)).padStart(4, '0')}`,
    registration: `F-${String.fromCharCode(65 + (index % 26), 65 + ((index >> 5) % 26), 65 + ((index >> 10) % 26))}${index % 10}`,
    type: TYPES[index % TYPES.length],
    origin: AIRPORTS[index % AIRPORTS.length],
    destination: AIRPORTS[(index * 7 + 3) % AIRPORTS.length],
    lat: 35 + random() * 25,
    lon: -10 + random() * 35,
    heading: Math.floor(random() * 360),
  };
}

/** The altitude of position `seq`: the value the runs' checksum adds up. */
function altitudeOf(seq) {
  return 30_000 + ((seq * 13) % 9_000);
}

/** Position `seq` (0-based) of the data set; `extra` fields (sentAt, warm) come first so they survive padding. */
export function flightPosition(seq, extra) {
  const aircraft = aircraftOf(seq % AIRCRAFT);
  const step = Math.floor(seq / AIRCRAFT);
  const value = {
    seq,
    icao24: aircraft.icao24,
    callsign: aircraft.callsign,
    registration: aircraft.registration,
    aircraftType: aircraft.type,
    origin: aircraft.origin,
    destination: aircraft.destination,
    lat: Number((aircraft.lat + step * 0.01).toFixed(5)),
    lon: Number((aircraft.lon + step * 0.013).toFixed(5)),
    alt: altitudeOf(seq),
    gs: 380 + (seq % 90),
    track: (aircraft.heading + step) % 360,
    vr: ((seq % 17) - 8) * 64,
    squawk: String(1000 + (seq % 6000)).padStart(4, '0'),
    onGround: false,
    source: seq % 2 === 0 ? 'ADSB' : 'MLAT',
    receiver: `rx-${aircraft.origin}-${String(seq % 250).padStart(3, '0')}`,
    ts: 1_767_225_600_000 + seq * 100,
  };
  const json = JSON.stringify(value);
  // The same text as spreading `extra` into the literal, which made V8 build a slow object for every message: several
  // times the cost of the rest, spent by the latency generator between a send's stamp and the send.
  return {
    key: aircraft.icao24,
    value: extra === undefined ? json : stampPrefix(extra) + json.slice(1),
  };
}

/** How a stamped value starts: `extra`'s fields as JSON, up to the comma before the position's own fields. */
export function stampPrefix(extra) {
  return `${JSON.stringify(extra).slice(0, -1)},`;
}

/**
 * The latency generator's messages, built before it starts sending, so that a send adds only the stamp and kafkajs's
 * request: per position its key, its partition (kafkajs's default partitioner, the one an unprepared message goes
 * through, over `partitions`) and its value's text after the opening brace (`stampPrefix(extra) + rests[seq]` is
 * `flightPosition(seq, extra).value`).
 */
export function prepareLatencyMessages(count, partitions = PARTITIONS) {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
  }));
  const keys = [];
  const rests = [];
  const partitionOf = new Int32Array(count);
  for (let seq = 0; seq < count; seq++) {
    const message = flightPosition(seq);
    keys.push(message.key);
    rests.push(message.value.slice(1));
    partitionOf[seq] = partitioner({ topic: 'latency', partitionMetadata, message });
  }
  return { keys, rests, partitionOf };
}

export function kafkaFor(brokers, clientId) {
  return new Kafka({ clientId, brokers, logLevel: logLevel.WARN, retry: CLIENT_RETRY });
}

export function newProducer(kafka) {
  return kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: CLIENT_RETRY,
  });
}

/** The sum of `alt` over the data set's `count` messages: what a run that saw each message once adds up to. */
export function datasetChecksum(count) {
  let sum = 0;
  for (let seq = 0; seq < count; seq++) sum += altitudeOf(seq);
  return sum;
}

/** Sum of the partitions' end offsets, and the first and last offset of each non-empty partition. */
export async function topicEnds(admin, topic) {
  const offsets = await admin.fetchTopicOffsets(topic);
  const firstOffsets = {};
  const lastOffsets = {};
  let total = 0;
  for (const { partition, high, low } of offsets) {
    total += Number(high) - Number(low);
    if (Number(high) > Number(low)) {
      firstOffsets[partition] = String(low);
      lastOffsets[partition] = String(Number(high) - 1);
    }
  }
  return { total, firstOffsets, lastOffsets };
}

export async function topicExists(admin, topic) {
  return (await admin.listTopics()).includes(topic);
}

/** Answers to a metadata request for a topic just created that mean "not yet". */
const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * Creates `topic` and waits until every partition has a leader. kafkajs's `waitForLeaders` gives up on the first
 * "unknown topic" answer, which a KRaft broker gives until its metadata cache has the controller's record of the
 * topic, a moment that a loaded machine stretches: then this waits on.
 */
export async function createTopic(admin, topic, numPartitions = PARTITIONS, configEntries = []) {
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    });
    return;
  } catch (error) {
    if (!NOT_YET.has(error?.type)) throw error;
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics[0]?.partitions ?? [];
      if (partitions.length === numPartitions && partitions.every((p) => p.leader >= 0)) return;
    } catch (error) {
      if (!NOT_YET.has(error?.type)) throw error;
    }
    if (attempt === 150)
      throw new Error(
        `topic ${topic}: not every one of its ${numPartitions} partitions has a leader after 30 s`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function deleteTopic(admin, topic) {
  if (await topicExists(admin, topic)) await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
  // Deletion is asynchronous in the broker: wait until the name is free again.
  for (let i = 0; i < 100 && (await topicExists(admin, topic)); i++)
    await new Promise((r) => setTimeout(r, 200));
}

/**
 * Per partition of `partitions`, how many of the data set's first `count` messages kafkajs's default partitioner
 * puts there. A message's key is its aircraft's, so one partition per aircraft.
 */
export function partitionCounts(count, partitions = PARTITIONS) {
  const partitionOf = aircraftPartitions(partitions);
  const counts = new Array(partitions).fill(0);
  for (let seq = 0; seq < count; seq++) counts[partitionOf[seq % AIRCRAFT]]++;
  return counts;
}

/** Per aircraft, the partition of `partitions` that kafkajs's default partitioner gives its key. */
function aircraftPartitions(partitions) {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
  }));
  const partitionOf = new Int32Array(AIRCRAFT);
  for (let index = 0; index < AIRCRAFT; index++)
    partitionOf[index] = partitioner({ topic: 'dataset', partitionMetadata, message: flightPosition(index) });
  return partitionOf;
}

/**
 * Makes sure `topic` holds exactly `count` messages of the data set over PARTITIONS partitions, reusing a topic a
 * previous run filled (the name carries the data set's version and size) when every partition holds what the data
 * set puts there, else producing it afresh. Resolves to { total, firstOffsets, lastOffsets, produced, seconds }.
 * Message `seq` of the data set is `flightPosition(seq)` for seq 0 to count - 1, once each.
 */
export async function ensureDataset(brokers, admin, topic, count, log) {
  const expected = partitionCounts(count);
  if (await topicExists(admin, topic)) {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const offsets = await admin.fetchTopicOffsets(topic);
    const held = (p) => {
      const partition = offsets.find((o) => o.partition === p);
      return partition === undefined ? undefined : Number(partition.high) - Number(partition.low);
    };
    if (
      metadata.topics[0].partitions.length === PARTITIONS &&
      expected.every((messages, partition) => held(partition) === messages)
    ) {
      log(`reusing ${topic} (${count} messages)`);
      return { ...(await topicEnds(admin, topic)), produced: false, seconds: 0 };
    }
    const total = offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
    log(`${topic} holds ${total} messages, not the data set's ${count} per partition: producing it again`);
    await deleteTopic(admin, topic);
  }
  const started = Date.now();
  await createTopic(admin, topic);
  await waitForLeaders(admin, topic, PARTITIONS);
  await produceDataset(brokers, topic, count, log);
  await verifyEndOffsets(admin, topic, expected);
  return { ...(await topicEnds(admin, topic)), produced: true, seconds: (Date.now() - started) / 1000 };
}

/** Errors that mean a new topic's partition has no leader that serves it yet. */
const NO_LEADER_YET = new Set([
  ...NOT_YET,
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
  'REPLICA_NOT_AVAILABLE',
]);

/**
 * Waits until every partition of the new, empty `topic` has a leader (metadata) that answers for it (a ListOffsets
 * request goes to each partition's leader): a broker whose metadata names itself the leader can still refuse the
 * first writes for a moment, which a loaded machine stretches.
 */
async function waitForLeaders(admin, topic, partitions) {
  for (let attempt = 1; ; attempt++) {
    let missing;
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const led = (topics[0]?.partitions ?? []).filter((p) => p.leader >= 0).length;
      if (led < partitions) missing = `${partitions - led} of its ${partitions} partitions have no leader`;
      else {
        const offsets = await admin.fetchTopicOffsets(topic);
        if (offsets.length === partitions) return;
        missing = `${partitions - offsets.length} of its ${partitions} partitions gave no offsets`;
      }
    } catch (error) {
      if (!NO_LEADER_YET.has(error?.type)) throw error;
      missing = error.message;
    }
    if (attempt === 150) throw new Error(`topic ${topic}: not ready for writes after 30 s (${missing})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Throws, naming the topic and partition, when a partition's end offset is not the count of messages written to it. */
async function verifyEndOffsets(admin, topic, expected) {
  const offsets = await admin.fetchTopicOffsets(topic);
  for (const [partition, written] of expected.entries()) {
    const found = offsets.find((o) => o.partition === partition);
    const end = found === undefined ? undefined : Number(found.high);
    if (end !== written)
      throw new Error(
        `data set topic ${topic} partition ${partition}: end offset ${end}, ${written} messages written to it`,
      );
  }
}

/** Messages per send() of a data set's producer: each send makes one record batch per partition it reaches. */
const PER_SEND = 5_000;

/**
 * Writes the data set with producers working side by side, each in a worker thread of its own
 * (bench/lib/dataset-producer.mjs) for a share of the partitions, so that producing uses every core while the broker
 * appends. Each partition gets the same records in the same order and the same record batches as from one producer
 * writing every message.
 */
async function produceDataset(brokers, topic, count, log) {
  const started = Date.now();
  const producers = Math.max(1, Math.min(PARTITIONS, os.availableParallelism()));
  const shares = Array.from({ length: producers }, (_, share) =>
    Array.from({ length: PARTITIONS }, (_, partition) => partition).filter((p) => p % producers === share),
  );
  const workers = shares.map(
    (partitions) =>
      new Worker(new URL('./dataset-producer.mjs', import.meta.url), {
        workerData: { brokers, topic, count, partitions },
      }),
  );
  const outcomes = workers.map(
    (worker) =>
      new Promise((resolveWorker, rejectWorker) => {
        worker.once('message', resolveWorker);
        worker.once('error', rejectWorker);
        worker.once('exit', (code) =>
          rejectWorker(
            new Error(`data set ${topic}: a producer's worker exited (${code}) before it finished`),
          ),
        );
      }),
  );
  try {
    const written = await Promise.all(outcomes);
    const bytes = written.reduce((sum, w) => sum + w.bytes, 0);
    const seconds = (Date.now() - started) / 1000;
    log(
      `produced ${count} messages (${Math.round(bytes / count)} B average value) to ${topic} in ${seconds.toFixed(1)} s ` +
        `(${producers} producer(s))`,
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/**
 * A share of the data set written with an idempotent producer, one send() at a time: the messages of each block of
 * PER_SEND that fall on `partitions`. A request that kafkajs sends again (a refusal such as "not the leader", or an
 * answer lost) carries the same producer id and sequence numbers, so the broker keeps the partitions it had already
 * appended once. Concurrent send() calls would let a later one take the sequence numbers a failed one handed back
 * (kafkajs 2.2.4 rolls them back before its retry). Each message names its partition, the one kafkajs's default
 * partitioner gives its key. Resolves to the bytes of the values written.
 */
export async function producePartitions(brokers, topic, count, partitions) {
  const partitionOf = aircraftPartitions(PARTITIONS);
  const mine = new Set(partitions);
  const producer = kafkaFor(brokers, 'bench-data-set').producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: CLIENT_RETRY,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    let bytes = 0;
    for (let from = 0; from < count; from += PER_SEND) {
      const messages = [];
      for (let seq = from; seq < Math.min(count, from + PER_SEND); seq++) {
        const partition = partitionOf[seq % AIRCRAFT];
        if (!mine.has(partition)) continue;
        const message = flightPosition(seq);
        message.partition = partition;
        bytes += message.value.length;
        messages.push(message);
      }
      if (messages.length > 0) await producer.send({ topic, acks: -1, messages });
    }
    return { bytes };
  } finally {
    await producer.disconnect();
  }
}
