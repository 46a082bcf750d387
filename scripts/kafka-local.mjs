#!/usr/bin/env node
/**
 * Local Apache Kafka without Docker (see kafka-local-lib.mjs for what it runs and where).
 *
 *   node scripts/kafka-local.mjs start [--reuse-data]   reuse a broker answering at KAFKA_BROKERS, else start one
 *   node scripts/kafka-local.mjs stop [--keep-data]     stop the broker this script started (by its pidfile)
 *   node scripts/kafka-local.mjs restart-keep-data      stop and start again on the same data (outage tests)
 *   node scripts/kafka-local.mjs status                 exit 0 if a broker answers at KAFKA_BROKERS, else 1
 */
import {
  KafkaLocalError,
  brokerStatus,
  ensureBroker,
  localSettings,
  log,
  restartBroker,
  startBroker,
  stopBroker,
} from './kafka-local-lib.mjs';

const USAGE =
  'usage: node scripts/kafka-local.mjs start [--reuse-data] | stop [--keep-data] | restart-keep-data | status';

const commands = {
  start: {
    flags: ['--reuse-data'],
    async run(flags) {
      if (flags.has('--reuse-data')) {
        await startBroker({ reuseData: true });
        return 0;
      }
      const { brokers, started } = await ensureBroker();
      if (!started) log(`a broker already answers at ${brokers}: starting nothing`);
      return 0;
    },
  },

  stop: {
    flags: ['--keep-data'],
    async run(flags) {
      const keepData = flags.has('--keep-data');
      const { stopped, pid } = await stopBroker({ keepData });
      const data = keepData ? ', data kept' : '';
      log(
        stopped ? `stopped broker pid ${pid}${data}` : `no broker started by this script is running${data}`,
      );
      return 0;
    },
  },

  'restart-keep-data': {
    flags: [],
    async run() {
      await restartBroker();
      return 0;
    },
  },

  status: {
    flags: [],
    async run() {
      const { brokers, reachable, pid, dataDir } = await brokerStatus();
      log(`${brokers}: ${reachable ? 'reachable' : 'not reachable'}`);
      log(
        pid
          ? `this script's broker runs as pid ${pid} (${dataDir})`
          : 'no broker started by this script runs',
      );
      return reachable ? 0 : 1;
    },
  },
};

async function main([name, ...rest]) {
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command || rest.some((flag) => !command.flags.includes(flag))) {
    console.error(USAGE);
    return 2;
  }
  localSettings(); // fails on a malformed KAFKA_PORT / KAFKA_NODES before anything runs
  return command.run(new Set(rest));
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Expected failures carry a message for the user; anything else is a bug and keeps its stack.
  console.error(`[kafka-local] error: ${error instanceof KafkaLocalError ? error.message : error.stack}`);
  process.exitCode = 1;
}
