/**
 * The live page of the groups (nest-kafka-groups/ui) in a real browser: Debian's Chromium driven by playwright-core.
 * The example service runs as built (dist/main.js), one copy then two; a second spec runs an app in process against
 * a broker that is not there, with SASL credentials, to see the page say so and render no secret.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { type BeforeApplicationShutdown, Controller, Injectable, Module } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { KafkaAdminClient, KafkaAdminTimeoutError, KafkaHandler, KafkaModule } from 'nest-kafka-groups';
import { KafkaUiModule } from 'nest-kafka-groups/ui';
import { testBrokers, KafkaTestClient, uniqueName, waitFor } from 'nest-kafka-groups/testing';
import { startTestApp } from './support/nest-test-app.js';
import { ServiceProcess } from './support/service-process.js';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path): path is string => !!path && existsSync(path),
);
if (!CHROMIUM) {
  process.stderr.write(
    '\n' +
      '!'.repeat(100) +
      '\n!!! test/ui.e2e-spec.ts SKIPPED: no Chromium at /usr/bin/chromium (or CHROMIUM_PATH).\n' +
      '!!! Install it: apt-get update && apt-get install -y chromium   (.ci/run does this)\n' +
      '!'.repeat(100) +
      '\n\n',
  );
}
const describeInBrowser = CHROMIUM ? describe : describe.skip;

const PARTITIONS = 3;

/** An element's data attributes, as the functions run in the page see them (this project compiles without DOM types). */
interface Dataset {
  dataset: Record<string, string | undefined>;
}

async function launch(): Promise<Browser> {
  // Root in a container: Chromium's sandbox needs user namespaces it may not get.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** The cells of one topic's grid as the page shows them. */
function grid(page: Page, topic: string) {
  return page.$$eval(`.grid[data-topic="${topic}"] .cell`, (cells) =>
    cells.map((cell) => {
      const data = (cell as unknown as Dataset).dataset;
      return {
        partition: data.partition!,
        member: data.member!,
        stopped: data.stopped === 'true',
        paused: data.paused === 'true',
        text: cell.textContent ?? '',
      };
    }),
  );
}

/** Member id -> whether it runs in the process that serves the page, from one group's member table. */
function members(page: Page, groupId: string) {
  return page.$$eval(`section[data-group="${groupId}"] tr[data-member-id]`, (rows) =>
    rows.map((row) => ({
      memberId: (row as unknown as Dataset).dataset.memberId!,
      local: (row as unknown as Dataset).dataset.local === 'true',
    })),
  );
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false>,
): Promise<T> {
  return waitFor(what, timeoutMs, probe, 250);
}

describeInBrowser('live page of the groups (GET /kafka/ui) in Chromium', () => {
  const kafka = new KafkaTestClient();
  let browser: Browser;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    browser = await launch();
  });

  afterEach(async () => {
    await Promise.all(services.splice(0).map((service) => service.stop()));
    await kafka.closeAll();
  });

  afterAll(async () => {
    await browser?.close();
  });

  test('both groups of the example service; the grid changes when a second copy joins; a stopped partition shows as stopped', async () => {
    const names = {
      AIRNAV_GROUP_ID: uniqueName('ui-airnav'),
      FLIGHT24_GROUP_ID: uniqueName('ui-flight24'),
      AIRNAV_TOPIC: uniqueName('ui-airnav'),
      FLIGHT24_TOPIC: uniqueName('ui-flight24'),
    };
    const airnav = names.AIRNAV_TOPIC;
    // A dead-letter topic that takes no record at all (even the stub is too large): a dead letter stops its partition.
    await kafka.createTopic(`${airnav}-dlt`, PARTITIONS, [{ name: 'max.message.bytes', value: '64' }]);
    const env = {
      ...names,
      KAFKA_BROKERS: testBrokers().join(','),
      KAFKA_TOPIC_PARTITIONS: String(PARTITIONS),
      LOG_LEVEL: 'log',
    };
    // The first copy also runs the simulated feed, so the page has traffic and lag to show.
    const first = new ServiceProcess({ ...env, FEED_ENABLED: 'true', FEED_RATE_PER_SEC: '10' });
    services.push(first);
    await first.waitUntilListening(60_000);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${first.port}/kafka/ui`);

    // Both groups, each with its three partitions held by the one member of this process.
    let one: Awaited<ReturnType<typeof grid>> = [];
    await until('both groups listed, every partition held by the first copy', 60_000, async () => {
      const groups = await page.$$eval('section[data-group]', (s) =>
        s.map((e) => (e as unknown as Dataset).dataset.group),
      );
      if (!groups.includes(names.AIRNAV_GROUP_ID) || !groups.includes(names.FLIGHT24_GROUP_ID)) return false;
      one = await grid(page, airnav);
      const holders = await members(page, names.AIRNAV_GROUP_ID);
      return (
        one.length === PARTITIONS &&
        holders.length === 1 &&
        holders[0].local &&
        one.every((cell) => cell.member === holders[0].memberId)
      );
    });
    expect(await page.locator(`section[data-group="${names.AIRNAV_GROUP_ID}"] .state`).textContent()).toBe(
      'Stable',
    );
    const firstMember = one[0].member;

    // A second copy joins: the partitions move, and the page (served by the first copy) shows it without reload.
    const second = new ServiceProcess(env);
    services.push(second);
    await second.waitUntilListening(60_000);
    let two: Awaited<ReturnType<typeof grid>> = [];
    let holders: Awaited<ReturnType<typeof members>> = [];
    await until('the grid to show partitions of both copies', 90_000, async () => {
      two = await grid(page, airnav);
      holders = await members(page, names.AIRNAV_GROUP_ID);
      const owners = new Set(two.map((cell) => cell.member));
      return holders.length === 2 && owners.size === 2 && !owners.has('');
    });
    const peer = holders.find((m) => !m.local)!;
    const here = holders.find((m) => m.local)!;
    expect(peer).toBeDefined();
    expect(two.some((cell) => cell.member === peer.memberId)).toBe(true);
    expect(two.filter((cell) => cell.member === here.memberId).length).toBeLessThan(PARTITIONS);
    expect(two.map((c) => c.member)).not.toEqual(one.map((c) => c.member));
    // The first copy's member kept its id through the rebalance and holds fewer partitions now.
    expect(here.memberId).toBe(firstMember);

    // A message that fails validation on a partition this process holds: its dead letter cannot be written, so
    // the partition stops, and the page shows it stopped with the reason.
    const mine = two.find((cell) => cell.member === here.memberId)!;
    const partition = Number(mine.partition.slice(mine.partition.lastIndexOf(':') + 1));
    const producer = await kafka.producer();
    await producer.send({
      topic: airnav,
      acks: -1,
      messages: [{ partition, key: 'BAD1', value: '{"junk":true}' }],
    });
    const stopped = await until(`${airnav}[${partition}] shown as stopped`, 60_000, async () => {
      const cell = (await grid(page, airnav)).find((c) => c.partition === mine.partition);
      return cell?.stopped ? cell : undefined;
    });
    expect(stopped.text).toMatch(/stopped/i);
    const reason = await page
      .locator(`section[data-group="${names.AIRNAV_GROUP_ID}"] .stopped-list li`)
      .first()
      .textContent();
    expect(reason).toContain(`partition ${partition}:`);
    expect(reason).toContain(`"${airnav}-dlt"`);
    // Only that partition.
    expect((await grid(page, airnav)).filter((c) => c.stopped).map((c) => c.partition)).toEqual([
      mine.partition,
    ]);

    mkdirSync('reports', { recursive: true });
    await page.waitForTimeout(4_000); // a few more lag samples for the charts
    await page.screenshot({ path: 'reports/ui-groups.png', fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    // On a phone: no horizontal scrolling of the page itself (the member table scrolls inside its box).
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: 'reports/ui-groups-phone.png', fullPage: true });
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});

@Controller()
class SecretsController {
  @KafkaHandler('${UI_TOPIC}')
  onMessage(@Payload() value: unknown): unknown {
    return value;
  }
}

/** Every answer to GET /kafka/ui/events from `since` on: its status and Connection header. */
function eventRequests(app: INestApplication) {
  const answers: { at: number; status: number; connection: string }[] = [];
  (app.getHttpServer() as http.Server).on(
    'request',
    (request: http.IncomingMessage, response: http.ServerResponse) => {
      if (!request.url?.startsWith('/kafka/ui/events')) return;
      response.once('finish', () =>
        answers.push({
          at: Date.now(),
          status: response.statusCode,
          connection: String(response.getHeader('connection') ?? ''),
        }),
      );
    },
  );
  return (since: number) => answers.filter((answer) => answer.at >= since);
}

/**
 * app.close() within `timeoutMs`, or a failure that says what the close waited for (the event streams answered
 * meanwhile); the HTTP connections are then cut so the test ends instead of hanging. Returns how long it took.
 */
async function closeWithin(
  app: INestApplication,
  timeoutMs: number,
  answers: (since: number) => { status: number; connection: string }[],
): Promise<number> {
  const started = Date.now();
  const closing = app.close();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    closing.then(() => 'closed' as const),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    const during = answers(started);
    (app.getHttpServer() as http.Server).closeAllConnections();
    await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    throw new Error(
      `app.close() still waiting after ${timeoutMs} ms; meanwhile /kafka/ui/events was asked ${during.length} ` +
        `time(s), answered ${JSON.stringify(during)} (a reconnecting EventSource on a kept-alive connection ` +
        'keeps the HTTP server from closing)',
    );
  }
  return Date.now() - started;
}

/**
 * Nothing listens on port 1 (privileged, never bound here): every connection is refused at once. A port taken from
 * the ephemeral range and released could be bound again by the next listener of this process.
 */
const CLOSED_BROKER = '127.0.0.1:1';

describeInBrowser('live page of the groups: the broker down, bad input, secrets', () => {
  let browser: Browser;
  let app: INestApplication | undefined;
  let answers: ReturnType<typeof eventRequests> = () => [];

  beforeAll(async () => {
    browser = await launch();
  });

  afterEach(async () => {
    const closing = app;
    app = undefined;
    if (closing) await closeWithin(closing, 15_000, answers);
  });

  afterAll(async () => {
    await browser?.close();
  });

  test('the page says the broker is down, answers 404 for an unknown group, renders no secret, and ends its streams on close', async () => {
    const password = `pw-${uniqueName('secret')}`;
    // The strongest case: the secret even turns up in a name the page shows (the group id).
    const groupId = `ui-down-${password}`;
    @Module({
      imports: [KafkaModule.forFeature({ groupId, topicVariables: { UI_TOPIC: uniqueName('ui-down') } })],
      controllers: [SecretsController],
    })
    class SecretsFeature {}
    @Module({ imports: [KafkaUiModule.forRoot({ sampleIntervalMs: 500 })] })
    class UiFeature {}

    ({ app } = await startTestApp(
      [SecretsFeature],
      {
        brokers: [CLOSED_BROKER],
        sasl: { mechanism: 'plain', username: 'svc-ui', password },
        topics: { create: false, check: false },
        // The members cannot leave a group on a broker that is not there: bound their part of the close.
        shutdownTimeoutMs: 2_000,
      },
      [UiFeature],
    ));
    await app.listen(0, '127.0.0.1');
    answers = eventRequests(app);
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');

    // Bad input: 404 for the page and the stream of a group that does not run here.
    expect((await fetch(`${url}/kafka/ui?group=nope`)).status).toBe(404);
    expect((await fetch(`${url}/kafka/ui/events?group=nope`)).status).toBe(404);
    expect((await fetch(`${url}/kafka/ui/assets/other.js`)).status).toBe(404);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${url}/kafka/ui`);
    await page.waitForSelector('body[data-broker-down="true"]', { timeout: 30_000 });
    const banner = await page.locator('#banner').textContent();
    expect(banner).toMatch(/The Kafka broker does not answer \(.+\)/);
    expect(await page.locator('#banner').isVisible()).toBe(true);
    expect(await page.locator('section[data-group]').count()).toBe(1);
    expect(await page.locator('section[data-group] h2').textContent()).toBe('ui-down-(hidden)');
    expect(await page.locator('section[data-group] .state').textContent()).toBe('unknown');

    // Nothing the page or its stream carries holds the password: page, scripts, styles, events.
    const events = await fetch(`${url}/kafka/ui/events`);
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = events.body!.getReader();
    let stream = '';
    const streamDeadline = Date.now() + 30_000;
    while ((stream.match(/^data:/gm) ?? []).length < 2) {
      if (Date.now() > streamDeadline)
        throw new Error(`fewer than 2 events in 30 s from /kafka/ui/events: ${stream}`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`/kafka/ui/events ended after: ${stream}`);
      stream += new TextDecoder().decode(value);
    }
    expect(stream).toContain('ui-down-(hidden)');
    const rendered = [
      await page.content(),
      stream,
      await (await fetch(`${url}/kafka/ui`)).text(),
      await (await fetch(`${url}/kafka/ui/assets/app.js`)).text(),
      await (await fetch(`${url}/kafka/ui/assets/app.css`)).text(),
    ];
    for (const text of rendered) expect(text).not.toContain(password);

    // Closing the app ends the open streams (the page's and ours) instead of hanging on them.
    const closing = app;
    app = undefined;
    expect(await closeWithin(closing, 10_000, answers)).toBeLessThan(10_000);
    for (;;) if ((await reader.read()).done) break;
    await page.close();
  });

  test('the application closes promptly while the page is open, its EventSource reconnecting, the broker down', async () => {
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId: uniqueName('ui-close'),
          topicVariables: { UI_TOPIC: uniqueName('ui-close') },
        }),
      ],
      controllers: [SecretsController],
    })
    class CloseFeature {}
    // A sample every 5 s, and the close right after the first one the page shows: no sample is in flight when the
    // close begins, so the HTTP server is closed right after the event streams end (the case that hung).
    @Module({ imports: [KafkaUiModule.forRoot({ sampleIntervalMs: 5_000 })] })
    class UiFeature {}
    ({ app } = await startTestApp(
      [CloseFeature],
      { brokers: [CLOSED_BROKER], topics: { create: false, check: false }, shutdownTimeoutMs: 2_000 },
      [UiFeature],
    ));
    await app.listen(0, '127.0.0.1');
    answers = eventRequests(app);
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const page = await browser.newPage();
    await page.goto(`${url}/kafka/ui`);
    await page.waitForSelector('body[data-broker-down="true"]', { timeout: 30_000 });

    const closing = app;
    app = undefined;
    const tookMs = await closeWithin(closing, 15_000, answers);
    // The shutdown budget (2 s) plus what Nest and the HTTP server need on a loaded machine.
    expect(tookMs).toBeLessThan(10_000);
    await page.close();
  });
});

@Injectable()
class HoldShutdown implements BeforeApplicationShutdown {
  static reached: () => void;
  static release: Promise<void>;
  async beforeApplicationShutdown(): Promise<void> {
    HoldShutdown.reached();
    await HoldShutdown.release;
  }
}

/** An http.get on `agent` that resolves with the response once its headers are in. */
function get(url: string, agent: http.Agent): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => http.get(url, { agent }, resolve).on('error', reject));
}

describe('live page of the groups: event streams while the application shuts down', () => {
  let app: INestApplication | undefined;
  let closing: Promise<void> | undefined;
  let release = () => {};
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  afterEach(async () => {
    release();
    agent.destroy();
    const open = app;
    app = undefined;
    if (closing) await closing;
    else if (open) await closeWithin(open, 15_000, () => []);
    closing = undefined;
  });

  test('an open stream ends and its connection closes; a reconnect is refused with 503 and Connection: close', async () => {
    let reached!: () => void;
    const shutdownHeld = new Promise<void>((resolve) => (reached = resolve));
    HoldShutdown.reached = reached;
    HoldShutdown.release = new Promise<void>((resolve) => (release = resolve));
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId: uniqueName('ui-stop'),
          topicVariables: { UI_TOPIC: uniqueName('ui-stop') },
        }),
      ],
      controllers: [SecretsController],
    })
    class StopFeature {}
    // Holds the shutdown between the modules' destroy hooks (the page's streams end there) and the HTTP server's
    // close, the window in which a browser's EventSource reconnects.
    @Module({ imports: [KafkaUiModule.forRoot({ sampleIntervalMs: 60_000 })], providers: [HoldShutdown] })
    class UiFeature {}
    ({ app } = await startTestApp(
      [StopFeature],
      { brokers: [CLOSED_BROKER], topics: { create: false, check: false }, shutdownTimeoutMs: 2_000 },
      [UiFeature],
    ));
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');

    const stream = await get(`${url}/kafka/ui/events`, agent);
    expect(stream.statusCode).toBe(200);
    const socket = stream.socket;
    let socketClosed = false;
    socket.once('close', () => (socketClosed = true));
    let ended = false;
    stream.on('end', () => (ended = true)).resume();

    closing = app.close();
    await shutdownHeld;
    await waitFor(
      'the open event stream to end when the application begins to shut down',
      5_000,
      () => ended,
    );
    await waitFor(
      "the server to close the ended stream's connection (Nest sends event streams with Connection: keep-alive)",
      5_000,
      () => socketClosed,
    );

    // What a browser's EventSource does 3 s after its stream ended: ask again.
    const again = await get(`${url}/kafka/ui/events`, agent);
    again.resume();
    expect(again.statusCode).toBe(503);
    expect(again.headers.connection).toBe('close');
    expect(again.headers['content-type']).not.toMatch(/event-stream/);

    release();
    await closing;
    closing = app = undefined;
  });
});

describe('live page of the groups: its samples with the broker down', () => {
  let app: INestApplication | undefined;

  afterEach(async () => {
    const open = app;
    app = undefined;
    if (open) await closeWithin(open, 15_000, () => []);
  });

  test('an admin call fails with the connection error within its deadline; its connection attempts end with it', async () => {
    @Module({
      imports: [
        KafkaModule.forFeature({
          groupId: uniqueName('ui-admin'),
          topicVariables: { UI_TOPIC: uniqueName('ui-admin') },
        }),
      ],
      controllers: [SecretsController],
    })
    class AdminFeature {}
    @Module({ imports: [KafkaUiModule.forRoot()] })
    class UiFeature {}
    // The client retry of the test apps (10 retries): kafkajs connects an admin client with it, not with the admin's.
    ({ app } = await startTestApp(
      [AdminFeature],
      { brokers: [CLOSED_BROKER], topics: { create: false, check: false }, shutdownTimeoutMs: 2_000 },
      [UiFeature],
    ));
    const admin = app.get(KafkaAdminClient);
    const error = await admin
      .run('listing the topics', 3_000, (a) => a.listTopics())
      .catch((e: unknown) => e);
    // The call races its deadline: the connection error, not the timeout, means it failed before the deadline. A
    // timeout would mean the connection was still being retried when the caller gave up, and went on after.
    expect(error).not.toBeInstanceOf(KafkaAdminTimeoutError);
    expect(String(error)).toMatch(/ECONNREFUSED|Connection error/);
  });
});
