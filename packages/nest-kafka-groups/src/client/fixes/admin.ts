import type { CarriedFix, KafkajsRequire } from '../kafkajs-loader.js';
import {
  CONSUMER_GROUP_DESCRIBE_API_KEY,
  CONSUMER_GROUP_DESCRIBE_VERSIONS,
  type ConsumerGroupDescribeGroup,
  decodeConsumerGroupDescribeResponse,
  encodeConsumerGroupDescribeRequest,
  GROUP_ID_NOT_FOUND,
} from './consumer-group-describe.js';

/**
 * What `describeConsumerGroups` answers: the groups, or null when the group coordinator lacks the API or does not run
 * the consumer group protocol.
 */
export type ConsumerGroupDescriptions = { groups: ConsumerGroupDescribeGroup[] } | null;

type CreateAdmin = (options: {
  cluster: any;
  retry?: object;
  [key: string]: unknown;
}) => Record<string, unknown>;

/**
 * Extends kafkajs 2.2.4's admin (src/admin/index.js) with `describeConsumerGroups(groupIds)`: ConsumerGroupDescribe
 * (consumer-group-describe.ts) to each group's coordinator, with the admin's retry; the admin is otherwise the
 * released one. A group answered GROUP_ID_NOT_FOUND (no group, or a classic one) is returned with that error code.
 * UNSUPPORTED_VERSION is the answer of a coordinator that lists the API but does not run the consumer group protocol
 * (Kafka 3.7 to 3.9 by default; 4.x with `group.coordinator.rebalance.protocols=classic` or `group.version=0`): it
 * has no such groups, so it is answered as one without the API. Other group errors (coordinator moved or loading)
 * are thrown as kafkajs's errors, so the retry handles them.
 */
/** Every group's error code from a coordinator whose consumer group protocol is off (KafkaApis answers them all). */
const UNSUPPORTED_VERSION = 35;

export const adminFix: CarriedFix = {
  module: 'src/admin/index.js',
  sha256: '94aa1214e987e8f7ef9e2ff8f08400a9fc509145f0da55f18fb49e4709c0c156',
  create: (require, released) => withConsumerGroupDescribe(released() as CreateAdmin, require),
};

function withConsumerGroupDescribe(createAdmin: CreateAdmin, require: KafkajsRequire): CreateAdmin {
  const createRetry = require('../retry') as (options: object) => <T>(fn: () => Promise<T>) => Promise<T>;
  const Encoder = require('../protocol/encoder') as new () => { writeBuffer(buffer: Buffer): unknown };
  const { createErrorFromCode } = require('../protocol/error') as {
    createErrorFromCode: (code: number) => Error;
  };
  const definition = {
    versions: CONSUMER_GROUP_DESCRIBE_VERSIONS.map(String),
    protocol:
      ({ version }: { version: number }) =>
      ({ groupIds }: { groupIds: string[] }) => ({
        request: {
          apiKey: CONSUMER_GROUP_DESCRIBE_API_KEY,
          apiVersion: version,
          apiName: 'ConsumerGroupDescribe',
          encode: async () => new Encoder().writeBuffer(encodeConsumerGroupDescribeRequest(groupIds)),
        },
        response: {
          decode: async (payload: Buffer) => decodeConsumerGroupDescribeResponse(payload, version),
          parse: async (data: { groups: ConsumerGroupDescribeGroup[] }) => {
            const failed = data.groups.find(
              (g) =>
                g.errorCode !== 0 &&
                g.errorCode !== GROUP_ID_NOT_FOUND &&
                g.errorCode !== UNSUPPORTED_VERSION,
            );
            if (failed) throw createErrorFromCode(failed.errorCode);
            return data;
          },
        },
      }),
  };

  return (options) => {
    const admin = createAdmin(options);
    const { cluster, retry = { retries: 5 } } = options;

    const describeOne = (groupId: string) =>
      createRetry(retry)(async () => {
        const coordinator = await cluster.findGroupCoordinator({ groupId });
        let request;
        try {
          request = coordinator.lookupRequest(
            CONSUMER_GROUP_DESCRIBE_API_KEY,
            definition,
          )({ groupIds: [groupId] });
        } catch (error) {
          if ((error as Error).name === 'KafkaJSServerDoesNotSupportApiKey') return null;
          throw error;
        }
        try {
          const answer = (await coordinator.connectionPool.send(request)) as {
            groups: ConsumerGroupDescribeGroup[];
          };
          return answer.groups.some((g) => g.errorCode === UNSUPPORTED_VERSION) ? null : answer;
        } catch (error) {
          // As the broker's own requests do: a closed connection is dropped, the next try connects again.
          if ((error as Error).name === 'KafkaJSConnectionClosedError') await coordinator.disconnect();
          throw error;
        }
      });

    const describeConsumerGroups = async (groupIds: string[]): Promise<ConsumerGroupDescriptions> => {
      const answers = await Promise.all(groupIds.map(describeOne));
      if (answers.some((answer) => answer === null)) return null;
      return { groups: answers.flatMap((answer) => answer!.groups) };
    };

    return { ...admin, describeConsumerGroups };
  };
}
