/**
 * A worker process of the fault suite (compiled to dist-faults/ and spawned by run-faults.js):
 * - role consumer: a small Nest application with one consumer group member built with this library, on the
 *   fault topic; its handler reports every success (and injected failure) on stdout for the runner.
 * - role producer: the library's KafkaProducer sending FAULT_MESSAGES messages at FAULT_RATE per second, keyed by
 *   sequence number (odd ones unkeyed with FAULT_UNKEYED); it reports every acknowledged range and sends a failed batch again until it is acknowledged.
 * See protocol.ts for the lines and the environment.
 */
import 'reflect-metadata';
import { ConsoleLogger, Controller, type LogLevel, Module, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { IsInt, IsString, Min } from 'class-validator';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DLT_HEADERS,
  KafkaBatchContext,
  KafkaGroupContext,
  KafkaGroups,
  KafkaGroupsServer,
  KafkaGroupsShuttingDownError,
  KafkaHandler,
  KafkaModule,
  type KafkaModuleOptions,
  KafkaProducer,
  KafkaStatusModule,
  KafkaStatusService,
} from 'nest-kafka-groups';
import {
  BATCH_SIZE,
  HOSTILE_MAX_VALUE_BYTES,
  injectedFailure,
  isSlow,
  isUnkeyed,
  LINE_PREFIX,
  messageOf,
  RETRY_ATTEMPTS,
  RETRY_TOPIC_DELAYS,
  SHUTDOWN_TIMEOUT_MS,
  type WorkerEnv,
} from './protocol.js';

const env = process.env as unknown as WorkerEnv;
const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log'];
const failures = env.FAULT_FAILURES === '1';
const workMs = Number(env.FAULT_WORK_MS ?? 0);
const slowMs = Number(env.FAULT_SLOW_MS ?? 0);
/** Resolved by the first message handled: the control cycle starts once the runner saw the group Stable. */
let delivered!: () => void;
const firstDelivery = new Promise<void>((resolve) => (delivered = resolve));
const backoffMs = env.FAULT_BACKOFF_MS === undefined ? undefined : Number(env.FAULT_BACKOFF_MS);
const retryTopics = env.FAULT_RETRY_TOPICS === '1';

/** Synchronous on a pipe (Linux): once the handler returns, the runner can read the line even after a SIGKILL. */
function emit(...fields: (string | number)[]): void {
  process.stdout.write(`${LINE_PREFIX}${fields.join(' ')}\n`);
}

/** Nest's console output, plus each log, warn and error line (and the client's debug lines) as an `L` line for the runner (its evidence). */
class ReportingLogger extends ConsoleLogger {
  override log(message: unknown, ...rest: unknown[]): void {
    this.report('log', message, rest);
    super.log(message, ...rest);
  }

  override warn(message: unknown, ...rest: unknown[]): void {
    this.report('warn', message, rest);
    super.warn(message, ...rest);
  }

  override error(message: unknown, ...rest: unknown[]): void {
    this.report('error', message, rest);
    super.error(message, ...rest);
  }

  /** Not printed, but kafkajs's protocol events and retried errors are logged at debug: evidence too. */
  override debug(message: unknown, ...rest: unknown[]): void {
    const context = rest.at(-1);
    if (typeof context === 'string' && /^(kafkajs|ConsumerMember)/.test(context))
      this.report('debug', message, rest);
    super.debug(message, ...rest);
  }

  private report(level: string, message: unknown, rest: unknown[]): void {
    const context = typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : (this.context ?? '-');
    const text = message instanceof Error ? message.message : String(message);
    emit('L', Date.now(), level, context.replace(/\s+/g, '_') || '-', text.replace(/\s+/g, ' '));
  }
}

class FaultMessage {
  @IsInt()
  @Min(0)
  seq!: number;

  @IsString()
  body!: string;
}

@Controller()
class FaultController {
  @KafkaHandler('${FAULT_TOPIC}')
  async handle(@Payload() message: FaultMessage, @Ctx() ctx: KafkaGroupContext): Promise<void> {
    if (workMs > 0) await sleep(workMs);
    // A slow handler that honours ctx.signal, as the README asks: it gives up (throws) when the signal aborts.
    if (slowMs > 0 && isSlow(message.seq)) await sleep(slowMs, undefined, { signal: ctx.signal });
    const [partition, offset] = sourcePosition(ctx);
    if (failures && injectedFailure(message.seq, ctx.attempt)) {
      emit('F', message.seq, partition, offset, ctx.attempt, Date.now());
      throw new Error(`injected failure of seq ${message.seq} on attempt ${ctx.attempt}`);
    }
    emit('P', message.seq, partition, offset, ctx.attempt, Date.now());
    delivered();
  }
}

/** Where the record is in the fault topic: on a retry topic, the main record its dead-letter headers name. */
function sourcePosition(ctx: KafkaGroupContext): [number, string] {
  if (ctx.topic === env.FAULT_TOPIC) return [ctx.partition, ctx.offset];
  const headers = ctx.message.headers!;
  return [
    (headers[DLT_HEADERS.originalPartition] as Buffer).readInt32BE(),
    (headers[DLT_HEADERS.originalOffset] as Buffer).readBigInt64BE().toString(),
  ];
}

/** The batch variant: the same work per message, one call per up to BATCH_SIZE messages of one partition. */
@Controller()
class BatchFaultController {
  @KafkaHandler('${FAULT_TOPIC}', { batch: true, maxBatchSize: BATCH_SIZE, items: FaultMessage })
  async handle(@Payload() messages: FaultMessage[], @Ctx() ctx: KafkaBatchContext): Promise<void> {
    if (workMs > 0) await sleep(workMs * messages.length);
    const { records } = ctx;
    messages.forEach((message, i) =>
      emit('P', message.seq, ctx.partition, records[i].offset, ctx.attempt, Date.now()),
    );
    delivered();
  }
}

function rootOptions(): KafkaModuleOptions {
  return {
    brokers: env.FAULT_BROKERS.split(','),
    clientId: `faults-${env.FAULT_NAME}`,
    fromBeginning: true,
    consumer: {
      maxWaitTimeInMs: 100,
      heartbeatInterval: 500,
      sessionTimeout: Number(env.FAULT_SESSION_TIMEOUT_MS ?? 6_000),
      rebalanceTimeout: 10_000,
    },
    // The suite's test tuning (as the e2e specs): fast retries, so a dead group coordinator is given up on and
    // re-discovered within seconds. The producer process gets a budget longer than a broker failover (about
    // 10 s), so a send is not abandoned mid-failover. 'library-default' leaves the library's defaults.
    clientRetry:
      env.FAULT_CLIENT_RETRY === 'library-default'
        ? undefined
        : { initialRetryTime: 100, maxRetryTime: 2_000, retries: env.FAULT_ROLE === 'producer' ? 30 : 10 },
    retry: retryTopics
      ? { attempts: RETRY_ATTEMPTS, topics: true, delaysMs: RETRY_TOPIC_DELAYS }
      : backoffMs === undefined
        ? { attempts: RETRY_ATTEMPTS, initialDelayMs: 50, multiplier: 2, maxDelayMs: 200 }
        : { attempts: RETRY_ATTEMPTS, initialDelayMs: backoffMs, multiplier: 1, maxDelayMs: backoffMs },
    deadLetter: { enabled: true, timeoutMs: 5_000, retryDelayMs: 500 },
    // The runner creates the topics (a scenario may leave the dead-letter topic to a fault step).
    topics: { create: false, check: false },
    ...(env.FAULT_HOSTILE === '1' ? { limits: { maxValueBytes: HOSTILE_MAX_VALUE_BYTES } } : {}),
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    ...securityOptions(),
  };
}

/** SASL_SSL on a secured cluster (the runner passes the user and the throwaway CA). */
function securityOptions(): Pick<KafkaModuleOptions, 'ssl' | 'sasl'> {
  const {
    FAULT_SASL_MECHANISM: mechanism,
    FAULT_SASL_USERNAME: username,
    FAULT_SASL_PASSWORD: password,
  } = env;
  if (!mechanism || !username || !password || !env.FAULT_SSL_CA_FILE) return {};
  return {
    ssl: { ca: [readFileSync(env.FAULT_SSL_CA_FILE, 'utf8')] },
    sasl: { mechanism, username, password } as KafkaModuleOptions['sasl'],
  };
}

async function runConsumer(): Promise<void> {
  @Module({
    imports: [
      KafkaModule.forFeature({
        groupId: env.FAULT_GROUP,
        topicVariables: { FAULT_TOPIC: env.FAULT_TOPIC },
        autoStart: env.FAULT_STANDBY !== '1',
      }),
    ],
    controllers: [env.FAULT_BATCH === '1' ? BatchFaultController : FaultController],
  })
  class FaultFeatureModule {}

  @Module({ imports: [KafkaModule.forRoot(rootOptions()), KafkaStatusModule, FaultFeatureModule] })
  class ConsumerWorkerModule {}

  // As main.ts does, without the HTTP listener.
  const logger = new ReportingLogger({ logLevels: LOG_LEVELS });
  const app = await NestFactory.create(ConsumerWorkerModule, { logger });
  app.useGlobalPipes(new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true }));
  app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
  // As enableShutdownHooks({ useProcessExit }) does, plus the line that proves app.close() resolved: a process
  // that died of the signal itself never prints it.
  process.once('SIGTERM', () => {
    app.close().then(
      () => {
        emit('CLOSED', Date.now());
        process.exit(0);
      },
      (error: unknown) => {
        logger.error(`app.close() failed: ${(error as Error).stack}`);
        process.exit(1);
      },
    );
  });
  await app.init();
  await app.startAllMicroservices();
  // A standby joins the group when the runner says so: a fresh member at once, without a process start-up.
  process.once('SIGUSR2', () => {
    app
      .get(KafkaGroups)
      .start(env.FAULT_GROUP)
      .catch((error: unknown) => logger.error(`standby start failed: ${(error as Error).stack}`));
  });
  emit('READY');
  reportStoppedPartitions(app.get(KafkaStatusService));
  if (env.FAULT_CONTROL_CYCLE_MS) void controlCycle(app.get(KafkaGroups), Number(env.FAULT_CONTROL_CYCLE_MS));
}

/**
 * From the first message on, pause, resume, stop, start the group (KafkaGroups logs each step), one step every
 * `stepMs` (and the join after a start), until shutdown.
 */
async function controlCycle(groups: KafkaGroups, stepMs: number): Promise<void> {
  const group = env.FAULT_GROUP;
  await firstDelivery;
  const joined = () => groups.list()[0].members.every((member) => member.state === 'joined');
  const steps = [
    async () => groups.pause(group),
    async () => groups.resume(group),
    () => groups.stop(group),
    async () => {
      await groups.start(group);
      // Each cycle lets its join complete: with members leaving and joining faster than a rebalance takes, no
      // group makes progress (the coordinator waits for every member to rejoin).
      for (let waited = 0; !joined() && waited < 30_000; waited += 100) await sleep(100);
    },
  ];
  for (let step = 0; ; step = (step + 1) % steps.length) {
    await sleep(stepMs);
    try {
      await steps[step]();
    } catch (error) {
      if (error instanceof KafkaGroupsShuttingDownError) return;
      throw error;
    }
  }
}

/**
 * The member's stopped partitions (what /health and KafkaStatusService report), as a log line whenever they
 * change: `MemberStatus stopped [topic:partition=reason; ...]`.
 */
function reportStoppedPartitions(status: KafkaStatusService): void {
  let last = '';
  setInterval(() => {
    const stopped = status
      .localGroups()
      .flatMap((g) => g.members)
      .flatMap((m) => m.stoppedPartitions.map((p) => `${p.topic}:${p.partition}=${p.reason}`))
      .sort()
      .join('; ');
    if (stopped === last) return;
    last = stopped;
    emit('L', Date.now(), 'log', 'MemberStatus', `stopped [${stopped}]`.replace(/\s+/g, ' '));
  }, 200).unref();
}

async function runProducer(): Promise<void> {
  @Module({ imports: [KafkaModule.forRoot(rootOptions())] })
  class ProducerWorkerModule {}

  const app = await NestFactory.createApplicationContext(ProducerWorkerModule, { logger: LOG_LEVELS });
  app.enableShutdownHooks();
  const producer = app.get(KafkaProducer);
  const total = Number(env.FAULT_MESSAGES);
  const rate = Number(env.FAULT_RATE);
  const poison = env.FAULT_POISON === '1';
  const unkeyed = env.FAULT_UNKEYED === '1';
  const hostile = env.FAULT_HOSTILE === '1';
  emit('READY');

  const startedAt = Date.now();
  let next = 0;
  while (next < total) {
    // Paced by the clock: after a stall (a broker outage) the backlog goes out in batches of up to 250.
    const due = Math.min(total, Math.floor(((Date.now() - startedAt) / 1000) * rate) + 1);
    if (due <= next) {
      await sleep(10);
      continue;
    }
    const last = Math.min(due, next + 250) - 1;
    const batch = [];
    for (let seq = next; seq <= last; seq++) {
      const message = messageOf(seq, poison, hostile);
      batch.push(unkeyed && isUnkeyed(seq) ? message : { key: String(seq), ...message });
    }
    try {
      await producer.sendMany(env.FAULT_TOPIC, batch);
      emit('A', next, last, Date.now());
      next = last + 1;
    } catch (error) {
      // Not acknowledged: send the same messages again (the idempotent producer keeps broker-side duplicates out).
      emit('E', Date.now(), String((error as Error).message).replace(/\s+/g, ' '));
      await sleep(200);
    }
  }
  emit('DONE', Date.now());
  await app.close();
}

try {
  if (env.FAULT_ROLE === 'producer') await runProducer();
  else await runConsumer();
} catch (error) {
  console.error(`fault worker ${env.FAULT_NAME} failed:`, error);
  process.exit(1);
}
