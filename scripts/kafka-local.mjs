#!/usr/bin/env node
/**
 * Local Apache Kafka without Docker (see kafka-local-lib.mjs for what it runs and where).
 *
 *   node scripts/kafka-local.mjs start [--reuse-data]   reuse a broker answering at KAFKA_BROKERS, else start one
 *   node scripts/kafka-local.mjs stop [--keep-data]     stop the broker this script started (by its pidfile)
 *   node scripts/kafka-local.mjs restart-keep-data      stop and start again on the same data (outage tests)
 *   node scripts/kafka-local.mjs status                 exit 0 if a broker answers at KAFKA_BROKERS, else 1
 *
 * With KAFKA_NODES=3 the same commands start, stop and report a three-node cluster (every node by its own
 * pidfile), and these act on one node, by 0-based index (node.id = index + 1), keeping its data:
 *   node scripts/kafka-local.mjs stop-node <index> [--kill]   SIGTERM (clean) or SIGKILL (crash) that node
 *   node scripts/kafka-local.mjs start-node <index>           start it again on its data
 */
import {
  KafkaLocalError,
  brokerStatus,
  ensureBroker,
  localSettings,
  log,
  restartBroker,
  startBroker,
  startNode,
  stopBroker,
  stopNode,
} from './kafka-local-lib.mjs';

const USAGE =
  'usage: node scripts/kafka-local.mjs start [--reuse-data] | stop [--keep-data] | restart-keep-data | status\n' +
  '       node scripts/kafka-local.mjs stop-node <index> [--kill] | start-node <index>   (KAFKA_NODES>1)';

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
      const { stopped, pids } = await stopBroker({ keepData });
      const data = keepData ? ', data kept' : '';
      log(
        stopped
          ? `stopped broker pid ${pids.join(', ')}${data}`
          : `no broker started by this script is running${data}`,
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
      const { brokers, reachable, pid, dataDir, nodes } = await brokerStatus();
      log(`${brokers}: ${reachable ? 'reachable' : 'not reachable'}`);
      if (nodes.length === 1) {
        log(
          pid
            ? `this script's broker runs as pid ${pid} (${dataDir})`
            : 'no broker started by this script runs',
        );
      } else {
        for (const node of nodes) {
          const state = node.pid ? `runs as pid ${node.pid}` : 'not started by this script';
          log(
            `node ${node.index} (node.id ${node.nodeId}) ${node.address}: ${state}, ${node.reachable ? 'reachable' : 'not reachable'}`,
          );
        }
      }
      return reachable ? 0 : 1;
    },
  },

  'stop-node': {
    flags: ['--kill'],
    index: true,
    async run(flags, index) {
      const { stopped, pid } = await stopNode(index, { signal: flags.has('--kill') ? 'SIGKILL' : 'SIGTERM' });
      log(stopped ? `stopped node ${index} pid ${pid}, data kept` : `node ${index} was not running`);
      return 0;
    },
  },

  'start-node': {
    flags: [],
    index: true,
    async run(_flags, index) {
      await startNode(index);
      return 0;
    },
  },
};

async function main([name, ...rest]) {
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  const positional = rest.filter((arg) => !arg.startsWith('--'));
  const flags = rest.filter((arg) => arg.startsWith('--'));
  const wantedPositional = command?.index ? 1 : 0;
  if (
    !command ||
    positional.length !== wantedPositional ||
    (command.index && !/^\d+$/.test(positional[0])) ||
    flags.some((flag) => !command.flags.includes(flag))
  ) {
    console.error(USAGE);
    return 2;
  }
  localSettings(); // fails on a malformed KAFKA_PORT / KAFKA_NODES before anything runs
  return command.run(new Set(flags), command.index ? Number(positional[0]) : undefined);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Expected failures carry a message for the user; anything else is a bug and keeps its stack.
  console.error(`[kafka-local] error: ${error instanceof KafkaLocalError ? error.message : error.stack}`);
  process.exitCode = 1;
}
