#!/usr/bin/env node
/**
 * Short commands for the topics and groups of a broker (the local one, or KAFKA_BROKERS), on kafkajs:
 *
 *   npm run kafka -- topics create <name> [--partitions 3] [--replication-factor 1]
 *   npm run kafka -- topics list
 *   npm run kafka -- produce <topic> [--key k] < file        one message per line of the file (or stdin)
 *   npm run kafka -- tail <topic> [--new] [--max N] [--idle-ms 5000]
 *   npm run kafka -- groups list
 *   npm run kafka -- groups describe <group>
 *   npm run kafka -- tool <KafkaToolClass> [args...]          Kafka's own tools, e.g. tool ConsumerGroupCommand --list
 *
 * `tail` prints every message (from the beginning unless --new) with its partition, offset, key and headers
 * (the dead-letter headers' binary partition, offset and timestamp decoded), and stops after --max messages or when
 * nothing arrived for --idle-ms; it commits nothing and deletes its throwaway group when done.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { brokerCredentials, localSettings } from './kafka-local-lib.mjs';
import { importLibrarySource } from './library-source.mjs';
import { saslClientConfig } from './kafka-local-security.mjs';

const { Kafka, Partitioners, logLevel } = kafkajs;
const LIB_DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), '.kafka', 'lib');
const RETRY = { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 };

const USAGE = `usage: npm run kafka -- <command>
  topics create <name> [--partitions N] [--replication-factor N]
  topics list
  produce <topic> [--key k] < file     one message per line
  tail <topic> [--new] [--max N] [--idle-ms MS]
  groups list
  groups describe <group>
  tool <KafkaToolClass> [args...]      e.g. tool ConsoleProducer --bootstrap-server 127.0.0.1:9092 --topic t`;

class UsageError extends Error {}

/** Positional arguments and --name value options (flags listed in `booleans` take no value). */
function parse(args, booleans = []) {
  const positional = [];
  const options = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--')) positional.push(arg);
    else if (booleans.includes(arg)) options[arg.slice(2)] = true;
    else if (i + 1 < args.length) options[arg.slice(2)] = args[++i];
    else throw new UsageError(`${arg} needs a value`);
  }
  return { positional, options };
}

function integerOption(options, name, fallback) {
  if (options[name] === undefined) return fallback;
  const value = Number(options[name]);
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`--${name} ${options[name]}: expected an integer >= 1`);
  return value;
}

/** `KafkaClass`: plain kafkajs, or the library's instance (with its carried fixes) where a command needs them. */
function client(KafkaClass = Kafka) {
  const settings = localSettings();
  const credentials = brokerCredentials(settings);
  return {
    brokers: settings.brokers.split(',').map((b) => b.trim()),
    kafka: new KafkaClass({
      ...(credentials ? saslClientConfig(credentials) : {}),
      clientId: 'kafka-cli',
      brokers: settings.brokers.split(',').map((b) => b.trim()),
      logLevel: logLevel.NOTHING,
      retry: RETRY,
    }),
  };
}

async function withAdmin(fn, KafkaClass = Kafka) {
  const admin = client(KafkaClass).kafka.admin({ retry: RETRY });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

async function topics([action, ...rest]) {
  if (action === 'list') {
    const names = await withAdmin((admin) => admin.listTopics());
    for (const name of names.filter((n) => !n.startsWith('__')).sort()) console.log(name);
    return;
  }
  if (action !== 'create') throw new UsageError('topics create <name> | topics list');
  const { positional, options } = parse(rest);
  const [topic] = positional;
  if (!topic) throw new UsageError('topics create <name> [--partitions N] [--replication-factor N]');
  const numPartitions = integerOption(options, 'partitions', 1);
  const replicationFactor = integerOption(options, 'replication-factor', 1);
  const created = await withAdmin((admin) =>
    admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, replicationFactor }] }),
  );
  console.log(
    created
      ? `created topic ${topic}: ${numPartitions} partition(s), replication factor ${replicationFactor}`
      : `topic ${topic} exists already: left as it is`,
  );
}

async function readStdin() {
  if (process.stdin.isTTY) console.error('(one message per line; end with Ctrl-D)');
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function produce(args) {
  const { positional, options } = parse(args);
  const [topic] = positional;
  if (!topic) throw new UsageError('produce <topic> [--key k] < file');
  const lines = (await readStdin()).split('\n').filter((line) => line.trim() !== '');
  if (lines.length === 0) throw new UsageError('nothing to produce: give one message per line on stdin');
  const producer = client().kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: RETRY,
  });
  await producer.connect();
  try {
    const results = await producer.send({
      topic,
      acks: -1,
      messages: lines.map((value) => ({ key: options.key ?? null, value })),
    });
    const where = results.map((r) => `partition ${r.partition} from offset ${r.baseOffset}`).join(', ');
    console.log(`produced ${lines.length} message(s) to ${topic} (${where})`);
  } finally {
    await producer.disconnect();
  }
}

/**
 * Spring's dead-letter headers carry the partition as a 4-byte int and offset and timestamp as 8-byte longs; its
 * retry chain the attempts as a 4-byte int and the due and original timestamps as Java's BigInteger bytes. A header
 * written several times (a record retried or dead-lettered again) shows its values in order.
 */
function headerValue(name, value) {
  if (Array.isArray(value)) return value.map((one) => headerValue(name, one)).join(', ');
  if (!Buffer.isBuffer(value)) return String(value);
  if (name === 'retry_topic-attempts' && value.length === 4) return String(value.readInt32BE());
  if (
    name.startsWith('retry_topic-') &&
    name.endsWith('-timestamp') &&
    value.length >= 1 &&
    value.length <= 8
  ) {
    return String(BigInt.asIntN(value.length * 8, BigInt(`0x${value.toString('hex')}`)));
  }
  if (name.endsWith('-partition') && value.length === 4) return String(value.readInt32BE());
  if ((name.endsWith('-offset') || name.endsWith('-timestamp')) && value.length === 8) {
    return String(value.readBigInt64BE());
  }
  return value.toString('utf8');
}

async function tail(args) {
  const { positional, options } = parse(args, ['--new']);
  const [topic] = positional;
  if (!topic) throw new UsageError('tail <topic> [--new] [--max N] [--idle-ms MS]');
  const max = integerOption(options, 'max', Number.POSITIVE_INFINITY);
  const idleMs = integerOption(options, 'idle-ms', 5_000);
  const { kafka } = client();
  const groupId = `kafka-cli-tail-${randomUUID().slice(0, 8)}`;
  const consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 200,
    retry: RETRY,
  });
  let seen = 0;
  let last = Date.now();
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: !options.new });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (seen >= max) return;
      seen++;
      last = Date.now();
      const headers = Object.entries(message.headers ?? {}).map(
        ([name, value]) => `\n    ${name}: ${headerValue(name, value)}`,
      );
      console.log(
        `${topic}[${partition}]@${message.offset} key=${message.key?.toString() ?? '(none)'} ` +
          `${message.value?.toString() ?? '(null)'}${headers.join('')}`,
      );
      if (seen >= max) done();
    },
  });
  const idle = setInterval(() => Date.now() - last >= idleMs && done(), 200);
  await finished;
  clearInterval(idle);
  await consumer.disconnect();
  await withAdmin((admin) => admin.deleteGroups([groupId])).catch(() => undefined);
  console.error(`${seen} message(s)`);
}

async function groups([action, ...rest]) {
  if (action === 'list') {
    const { groups: list } = await withAdmin((admin) => admin.listGroups());
    for (const { groupId } of list.sort((a, b) => a.groupId.localeCompare(b.groupId))) console.log(groupId);
    return;
  }
  const [groupId] = rest;
  if (action !== 'describe' || !groupId) throw new UsageError('groups describe <group> | groups list');
  // The library's own description: DescribeGroups, and for a group of the consumer protocol (KIP-848), which
  // DescribeGroups answers as Dead with no members, ConsumerGroupDescribe (a carried fix of its kafkajs instance).
  const { describeGroup } = await importLibrarySource('status/describe-group.ts');
  const { Kafka: LibraryKafka } = await importLibrarySource('client/kafkajs.ts');
  await withAdmin(async (admin) => {
    const group = await describeGroup(admin, groupId);
    const owners = new Map();
    for (const member of group.members) {
      for (const [topic, partitions] of Object.entries(member.assignment)) {
        for (const partition of partitions) owners.set(`${topic}:${partition}`, member);
      }
    }
    const protocol = group.groupProtocol ? `, ${group.groupProtocol} protocol` : '';
    console.log(
      `group ${groupId}: ${group.state ?? 'state unknown'}, ${group.members.length} member(s)${protocol}`,
    );
    // As kafka-consumer-groups.sh --describe: every partition with a committed offset or an owner.
    const committed = new Map();
    for (const { topic, partitions } of await admin.fetchOffsets({ groupId })) {
      for (const { partition, offset } of partitions) committed.set(`${topic}:${partition}`, Number(offset));
    }
    const keys = new Set([...committed.keys(), ...owners.keys()]);
    const topics = [...new Set([...keys].map((key) => key.slice(0, key.lastIndexOf(':'))))].sort();
    const rows = [['TOPIC', 'PARTITION', 'COMMITTED', 'END', 'LAG', 'MEMBER', 'HOST', 'CLIENT']];
    for (const topic of topics) {
      const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
      const partitions = [...keys]
        .filter((key) => key.slice(0, key.lastIndexOf(':')) === topic)
        .map((key) => Number(key.slice(key.lastIndexOf(':') + 1)))
        .sort((a, b) => a - b);
      for (const partition of partitions) {
        const end = ends.get(partition) ?? 0;
        const at = committed.get(`${topic}:${partition}`) ?? -1;
        const owner = owners.get(`${topic}:${partition}`);
        rows.push([
          topic,
          String(partition),
          at >= 0 ? String(at) : '-',
          String(end),
          at >= 0 ? String(Math.max(0, end - at)) : '-',
          owner?.memberId ?? '-',
          owner?.clientHost ?? '-',
          owner?.clientId ?? '-',
        ]);
      }
    }
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    for (const row of rows)
      console.log(
        row
          .map((cell, c) => cell.padEnd(widths[c]))
          .join('  ')
          .trimEnd(),
      );
  }, LibraryKafka);
}

function tool([name, ...args]) {
  if (!name) throw new UsageError('tool <KafkaToolClass> [args...]');
  if (!existsSync(LIB_DIR))
    throw new UsageError(`Kafka's jars are not in ${LIB_DIR} yet: run npm run kafka:start once`);
  const className = name.includes('.') ? name : `org.apache.kafka.tools.${name}`;
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const result = spawnSync(
    java,
    ['-Xmx256m', '-XX:TieredStopAtLevel=1', '-cp', `${LIB_DIR}/*`, className, ...args],
    {
      stdio: 'inherit',
    },
  );
  return result.status ?? 1;
}

const COMMANDS = { topics, produce, tail, groups, tool };

async function main() {
  const [command, ...args] = process.argv.slice(2);
  const run = COMMANDS[command];
  if (!run) {
    console.error(USAGE);
    return command === undefined || command === '--help' ? 0 : 2;
  }
  try {
    return (await run(args)) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n${USAGE}`);
      return 2;
    }
    console.error(`kafka ${command}: ${error.message}`);
    return 1;
  }
}

process.exitCode = await main();
