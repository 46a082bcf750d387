/**
 * A user's first hour, as the README's "Add a consumer group to your own module" walks it: a module of their own
 * with a controller and a DTO, its topics created by the library, a test message produced with
 * `npm run kafka -- produce`, seen handled, a bad one dead-lettered with the validation reasons, the dead letter
 * read with `npm run kafka -- tail`. Then what a user meets next: creation off and a topic missing (named, with
 * the option), another process's member in the status, a broker that is down at start, a typo in the environment.
 */
import { spawn } from 'node:child_process';
import { afterAll, afterEach, describe, expect, jest, test } from '@jest/globals';
import { Controller, type INestApplication, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, Payload } from '@nestjs/microservices';
import { IsNumber, IsString, Max, Min } from 'class-validator';
import {
  KafkaGroupContext,
  KafkaGroupsServer,
  KafkaHandler,
  KafkaModule,
  KafkaStatusModule,
  KafkaStatusService,
} from 'nest-kafka-groups';
import { errorLinesSoFar, expectErrorLines } from './support/error-lines.js';
import { testBrokers, KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { freePort } from './support/local-machine.js';
import { ServiceProcess } from './support/service-process.js';
import { startTestApp } from './support/nest-test-app.js';

// --- The README's module, controller and DTO (the topic comes from a variable so each run has its own) ---

export class WeatherReadingDto {
  @IsString()
  station!: string;

  @IsNumber()
  @Min(-90)
  @Max(60)
  celsius!: number;
}

const readings: { reading: WeatherReadingDto; topic: string; offset: string }[] = [];

@Controller()
export class WeatherController {
  @KafkaHandler('${WEATHER_TOPIC}')
  onReading(@Payload() reading: WeatherReadingDto, @Ctx() ctx: KafkaGroupContext): void {
    readings.push({ reading, topic: ctx.topic, offset: ctx.offset });
  }
}

function weatherModule(groupId: string, topic: string, extra: object = {}) {
  @Module({
    imports: [KafkaModule.forFeature({ groupId, topicVariables: { WEATHER_TOPIC: topic }, ...extra })],
    controllers: [WeatherController],
  })
  class WeatherModule {}
  return WeatherModule;
}

/** `npm run kafka -- <args>` (the script it runs), with `input` on stdin; resolves with its output and exit code. */
function kafkaCli(args: string[], input = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['scripts/kafka-cli.mjs', ...args], {
      env: { ...process.env, KAFKA_BROKERS: testBrokers().join(',') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => resolve({ code, out }));
    child.stdin.end(input);
  });
}

describe("a user's first hour", () => {
  const kafka = new KafkaTestClient();
  const apps: INestApplication[] = [];

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await kafka.closeAll();
  });

  test('Add a consumer group to your own module: topics created, a message handled, a bad one dead-lettered and read back', async () => {
    const topic = uniqueName('weather-readings');
    const groupId = uniqueName('weather');
    const { app } = await startTestApp([weatherModule(groupId, topic)], {
      topics: { create: true, partitions: 3 },
    });
    apps.push(app);
    await kafka.waitForStableGroup(groupId, 1);

    // The library created the topic and its dead-letter topic, 3 partitions each, before the member joined.
    const admin = await kafka.admin();
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic, `${topic}-dlt`] });
    expect(topics.map((t) => [t.name, t.partitions.length]).sort()).toEqual([
      [topic, 3],
      [`${topic}-dlt`, 3],
    ]);

    const good = await kafkaCli(['produce', topic, '--key', 'st-1'], '{"station":"st-1","celsius":21.5}\n');
    expect(good).toMatchObject({ code: 0 });
    expect(good.out).toContain(`produced 1 message(s) to ${topic}`);
    await waitFor('the reading handled', 20_000, () => readings.some((r) => r.topic === topic));
    expect(readings.find((r) => r.topic === topic)!.reading).toEqual({ station: 'st-1', celsius: 21.5 });

    const bad = await kafkaCli(['produce', topic, '--key', 'st-1'], '{"station":"st-1","celsius":99}\n');
    expect(bad.code).toBe(0);
    const dead = await kafkaCli(['tail', `${topic}-dlt`, '--max', '1', '--idle-ms', '30000']);
    expect(dead.code).toBe(0);
    expect(dead.out).toContain('key=st-1 {"station":"st-1","celsius":99}');
    // The reasons ValidationPipe gave, not "Bad Request Exception".
    expect(dead.out).toContain('kafka_dlt-exception-message: celsius must not be greater than 60');
    expect(dead.out).toContain('kafka_dlt-exception-fqcn: BadRequestException');
    expect(dead.out).toContain(`kafka_dlt-original-topic: ${topic}`);
    expect(dead.out).toMatch(/kafka_dlt-original-offset: 1\b/);
    expect(dead.out).toContain(`kafka_dlt-original-consumer-group: ${groupId}`);

    const described = await kafkaCli(['groups', 'describe', groupId]);
    expect(described.out).toContain(`group ${groupId}: Stable, 1 member(s)`);
    expect(described.out).toMatch(new RegExp(`${topic}\\s+\\d\\s+2\\s+2\\s+0\\s+e2e-app-`));

    // A failed message is one WARN with its stack; nothing of it (nor of the start) is an ERROR.
    expect(errorLinesSoFar()).toEqual([]);
  });

  test('an app closed right after init, as a test that only checks its wiring closes it, logs no broker warning', async () => {
    const warnings: string[] = [];
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(function (this: Logger, message) {
      warnings.push(`[${this.context}] ${String(message)}`);
    });
    try {
      for (let i = 0; i < 3; i++) {
        @Module({
          imports: [
            KafkaModule.forRoot({ brokers: testBrokers(), clientId: 'first-hour' }),
            weatherModule(uniqueName('weather'), uniqueName('weather-readings')),
          ],
        })
        class WeatherAppModule {}
        const app = await NestFactory.create(WeatherAppModule, { logger: ['error', 'warn'] });
        app.connectMicroservice({ strategy: app.get(KafkaGroupsServer) }, { inheritAppConfig: true });
        await app.init();
        await app.close();
      }
    } finally {
      warn.mockRestore();
    }
    // The clients' sockets ended by the close are not a broker that went away.
    expect(warnings).toEqual([]);
  });

  test('topic creation off and a topic missing: the group waits, named with the topic and the option, and starts once it exists', async () => {
    const topic = uniqueName('orders');
    const groupId = uniqueName('orders');
    expectErrorLines(new RegExp(`Consumer group "${groupId}" needs`));
    const { app, server } = await startTestApp([weatherModule(groupId, topic)], {
      topics: { create: false },
      restartBackoff: { initialDelayMs: 200, maxDelayMs: 1_000 },
    });
    apps.push(app);
    const runner = server.groups[0];
    const problem = await waitFor('the missing topics reported', 20_000, () => runner.startProblem);
    expect(problem).toContain(`Consumer group "${groupId}" needs "${topic}", "${topic}-dlt"`);
    expect(problem).toContain('topics: { create: true }');
    expect(runner.members[0].state).toBe('starting');
    // One ERROR for the misconfiguration, however often it is checked again.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(errorLinesSoFar().filter((line) => line.includes(topic))).toHaveLength(1);

    expect((await kafkaCli(['topics', 'create', topic, '--partitions', '2'])).code).toBe(0);
    expect((await kafkaCli(['topics', 'create', `${topic}-dlt`, '--partitions', '2'])).code).toBe(0);
    await kafka.waitForStableGroup(groupId, 1);
    await waitFor('the problem cleared', 10_000, () => runner.startProblem === undefined);
  });

  test('/kafka/groups status: a partition held by another process shows that member id and client id', async () => {
    const topic = uniqueName('shared');
    const groupId = uniqueName('shared');
    await kafka.createTopic(topic, 2);
    const a = await startTestApp([weatherModule(groupId, topic)], { clientId: 'process-a' }, [
      KafkaStatusModule,
    ]);
    apps.push(a.app);
    const b = await startTestApp([weatherModule(groupId, topic)], { clientId: 'process-b' }, [
      KafkaStatusModule,
    ]);
    apps.push(b.app);
    await kafka.waitForStableGroup(groupId, 2);
    const memberB = await waitFor('b joined with a partition', 20_000, () => {
      const member = b.app.get(KafkaGroupsServer).groups[0].members[0];
      return member.state === 'joined' && (member.assignment[topic]?.length ?? 0) === 1 ? member : undefined;
    });
    const status = a.app.get(KafkaStatusService);
    const group = await waitFor('a and b each holding one partition', 20_000, async () => {
      const [g] = await status.groups();
      return g.partitions?.every((p) => p.memberId !== null) ? g : undefined;
    });
    const heldByB = group.partitions!.find((p) => p.partition === memberB.assignment[topic][0])!;
    expect(heldByB).toMatchObject({ memberId: memberB.memberId, clientId: 'process-b' });
    const heldByA = group.partitions!.find((p) => p !== heldByB)!;
    expect(heldByA).toMatchObject({ memberId: group.members[0].memberId, clientId: 'process-a' });
  });

  test('broker down at start: the HTTP port opens at once, /health answers 503 in time, one line about the broker', async () => {
    const deadBroker = `127.0.0.1:${await freePort()}`;
    const seen = new Map<string, number>();
    const service = new ServiceProcess(
      {
        KAFKA_BROKERS: deadBroker,
        LOG_LEVEL: 'log',
        KAFKA_HEALTH_TIMEOUT_MS: '1000',
        AIRNAV_TOPIC: uniqueName('down-airnav'),
        FLIGHT24_TOPIC: uniqueName('down-flight24'),
      },
      (line) => {
        for (const mark of ['Starting Nest application', 'HTTP on port']) {
          if (line.includes(mark) && !seen.has(mark)) seen.set(mark, Date.now());
        }
      },
    );
    try {
      await service.waitUntilListening(30_000);
      // Measured from Nest's start (loading the modules can take seconds on a busy machine): the application used
      // to wait 10 s for the topics before listening.
      expect(seen.get('HTTP on port')! - seen.get('Starting Nest application')!).toBeLessThan(6_000);
      const asked = Date.now();
      const health = await fetch(`http://127.0.0.1:${service.port}/health`);
      expect(health.status).toBe(503);
      expect(Date.now() - asked).toBeLessThan(3_000);
      // A few seconds of retries by the admin, producer and consumer clients: still one line.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      const lines = service.log.split('\n');
      expect(lines.filter((line) => line.includes(`Broker ${deadBroker} unreachable`))).toHaveLength(1);
      // The 503 itself is a WARN: an unhealthy answer is what /health is for, not an error of the service. It
      // names the cause (the admin call fails with the refused connection within the health timeout).
      const answers = lines.filter((line) => line.includes('Health Check has failed'));
      expect(answers.filter((line) => / WARN /.test(line))).not.toEqual([]);
      expect(answers.every((line) => line.includes('ECONNREFUSED'))).toBe(true);
      expect(lines.filter((line) => / ERROR /.test(line))).toEqual([]);
      // Besides the answers to /health, one line about the refused connections: none per retry.
      expect(
        lines.filter((line) => line.includes('ECONNREFUSED') && !line.includes('Health Check has failed')),
      ).toHaveLength(1);
    } finally {
      // Shutdown with the broker away is another spec's subject: this one only needs the process gone.
      await service.stop('SIGKILL');
    }
  });

  test('a typo in the environment: one line per variable with the value typed, no stack trace, exit code 1', async () => {
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['dist/main.js'], {
        env: { ...process.env, NO_COLOR: '1', KAFKA_GROUP_CONCURRENCY: 'abc', PORT: '-1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('exit', (code) => resolve({ code, out }));
    });
    expect(result.code).toBe(1);
    const problems = result.out.split('\n').filter((line) => line.includes('Invalid environment:'));
    expect(problems).toHaveLength(2);
    expect(problems.find((line) => line.includes('KAFKA_GROUP_CONCURRENCY'))).toContain(
      'KAFKA_GROUP_CONCURRENCY="abc"',
    );
    expect(problems.find((line) => line.includes('PORT='))).toContain('PORT="-1"');
    expect(result.out).not.toMatch(/^\s+at /m);
  });
});
