import { describe, expect, it } from '@jest/globals';
import { describeConsumerGroups, kafkajsInternal } from '../kafkajs.js';
import { GROUP_ID_NOT_FOUND } from './consumer-group-describe.js';

const createAdmin = kafkajsInternal('src/admin/index.js');
const { lookup } = kafkajsInternal('src/protocol/requests/index.js');
const { createLogger, LEVELS } = kafkajsInternal('src/loggers/index.js');
const quiet = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => {} });

const NOT_COORDINATOR = 16;
const UNSUPPORTED_VERSION = 35;

/** A ConsumerGroupDescribe answer (after the correlation id) for one group without members. */
function answer(errorCode: number, groupId: string, state: string): Buffer {
  const text = (value: string) =>
    Buffer.concat([Buffer.of(Buffer.byteLength(value) + 1), Buffer.from(value)]);
  const int16 = Buffer.alloc(2);
  int16.writeInt16BE(errorCode);
  return Buffer.concat([
    Buffer.of(0), // response header tag buffer
    Buffer.alloc(4), // throttle_time_ms
    Buffer.of(2), // one group
    int16,
    Buffer.of(0), // error_message: null
    text(groupId),
    text(state),
    Buffer.alloc(8), // group_epoch, assignment_epoch
    text('uniform'),
    Buffer.of(1), // no members
    Buffer.from('80000000', 'hex'), // authorized_operations
    Buffer.of(0, 0), // group and response tag buffers
  ]);
}

/**
 * kafkajs's admin (with the carried fix) on a cluster whose coordinator speaks the given ApiVersions and answers
 * each ConsumerGroupDescribe with the next payload; records what was sent and how often the coordinator was looked up.
 */
function adminOn(versions: Record<number, { minVersion: number; maxVersion: number }>, payloads: Buffer[]) {
  const seen = { lookups: 0, requests: [] as { apiKey: number; apiVersion: number; body: string }[] };
  const coordinator = {
    lookupRequest: lookup(versions),
    connectionPool: {
      send: async ({ request, response }: any) => {
        const body = (await request.encode()).buffer.toString('hex');
        seen.requests.push({ apiKey: request.apiKey, apiVersion: request.apiVersion, body });
        return response.parse(await response.decode(payloads.shift()));
      },
    },
    disconnect: async () => undefined,
  };
  const cluster = {
    findGroupCoordinator: async () => {
      seen.lookups++;
      return coordinator;
    },
  };
  const admin = createAdmin({
    logger: quiet,
    cluster,
    retry: { retries: 2, initialRetryTime: 1, maxRetryTime: 1 },
  });
  return { admin, seen };
}

describe('the carried admin: describeConsumerGroups', () => {
  it('sends ConsumerGroupDescribe at the highest version both speak, retrying a coordinator error with a fresh lookup', async () => {
    const { admin, seen } = adminOn({ 69: { minVersion: 0, maxVersion: 1 } }, [
      answer(NOT_COORDINATOR, 'g', ''),
      answer(0, 'g', 'Stable'),
    ]);
    const described = await describeConsumerGroups(admin, ['g']);
    expect(described?.groups.map((g) => [g.errorCode, g.groupId, g.groupState, g.assignorName])).toEqual([
      [0, 'g', 'Stable', 'uniform'],
    ]);
    expect(seen.lookups).toBe(2);
    // Header v2's empty tag buffer, then [ "g" ], include_authorized_operations false, no tags.
    expect(seen.requests).toEqual([
      { apiKey: 69, apiVersion: 1, body: '0002026700' + '00' },
      { apiKey: 69, apiVersion: 1, body: '0002026700' + '00' },
    ]);
  });

  it('returns GROUP_ID_NOT_FOUND as the answer (no group, or a classic one), without retrying', async () => {
    const { admin, seen } = adminOn({ 69: { minVersion: 0, maxVersion: 0 } }, [
      answer(GROUP_ID_NOT_FOUND, 'g', ''),
    ]);
    const described = await describeConsumerGroups(admin, ['g']);
    expect(described?.groups.map((g) => g.errorCode)).toEqual([GROUP_ID_NOT_FOUND]);
    expect(seen.requests.map((r) => r.apiVersion)).toEqual([0]);
  });

  it('answers null when the coordinator lists the API but runs no consumer group protocol (UNSUPPORTED_VERSION), without retrying', async () => {
    const { admin, seen } = adminOn({ 69: { minVersion: 0, maxVersion: 1 } }, [
      answer(UNSUPPORTED_VERSION, 'g', ''),
    ]);
    expect(await describeConsumerGroups(admin, ['g'])).toBeNull();
    expect(seen.requests).toHaveLength(1);
  });

  it('answers null when the coordinator lacks the API (Kafka before 3.7), sending nothing', async () => {
    const { admin, seen } = adminOn({}, []);
    expect(await describeConsumerGroups(admin, ['g'])).toBeNull();
    expect(seen.requests).toEqual([]);
  });
});
