import net from 'node:net';
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { KafkaShutdown } from '../shutdown/kafka-shutdown.js';
import { KafkaAdminClient, KafkaAdminTimeoutError } from './kafka-admin.client.js';

/** A port on 127.0.0.1 that refuses connections: one that was free a moment ago. */
async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Blocks this thread, as a busy process does, without reading the clock. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('KafkaAdminClient', () => {
  const clients: KafkaAdminClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.onApplicationShutdown();
    jest.restoreAllMocks();
  });

  test('a call that runs out of time while the broker refuses connections says so, not only that it timed out', async () => {
    for (const level of ['warn', 'debug'] as const)
      jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
    const broker = `127.0.0.1:${await refusedPort()}`;
    const options = { brokers: [broker] };
    const admin = new KafkaAdminClient(options, new KafkaShutdown(options));
    clients.push(admin);

    // The first call meets the refused connection itself.
    await expect(admin.run('first call', 30_000, (a) => a.describeCluster())).rejects.toThrow(/ECONNREFUSED/);

    // The next one outlives its deadline before its own connection fails: the process was busy (a loaded host).
    const call = admin.run('broker health check', 50, (a) => a.describeCluster());
    const settled = call.catch((error: unknown) => error);
    stall(200);
    const error = await settled;
    expect(error).toBeInstanceOf(KafkaAdminTimeoutError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^broker health check: no answer from the broker within 50 ms; broker ${broker.replaceAll('.', '\\.')} ` +
          `unreachable for \\d+ s \\(connect ECONNREFUSED ${broker.replaceAll('.', '\\.')}\\)$`,
      ),
    );
  });
});
