import type { CarriedFix } from '../kafkajs-loader.js';

interface ProduceProtocol {
  versions: string[];
  protocol: (args: { version: number }) => (request: object) => {
    request: unknown;
    response: { decode: (raw: Buffer) => Promise<unknown>; parse: (data: unknown) => Promise<unknown> };
  };
}

/**
 * Extends kafkajs 2.2.4's protocol/requests/produce: the answer of a Produce request is returned with each
 * partition's error code in it, instead of the first partition error thrown for the whole request (each version's
 * `parse`). The carried sendMessages (send-messages.ts), the only caller of `broker.produce`, reads it partition by
 * partition, as Java's Sender completes each batch of a response on its own.
 */
export const produceResponseFix: CarriedFix = {
  module: 'src/protocol/requests/produce/index.js',
  sha256: '789abc7e1c33a99e956f74a34f11b8de6f70be7722580a0f0dd05f67d998f45b',
  create: (_require, released) => answerPerPartition(released() as ProduceProtocol),
};

export function answerPerPartition(produce: ProduceProtocol): ProduceProtocol {
  return {
    versions: produce.versions,
    protocol: ({ version }) => {
      const build = produce.protocol({ version });
      return (args) => {
        const { request, response } = build(args);
        return { request, response: { decode: response.decode, parse: async (data: unknown) => data } };
      };
    },
  };
}
