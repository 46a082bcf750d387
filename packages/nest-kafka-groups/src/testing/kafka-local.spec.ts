import { describe, expect, test } from '@jest/globals';
import { join, resolve } from 'node:path';
import { KafkaLocalError, localSettings } from './kafka-local.js';

/** Settings from the environment only: the launcher's pure part (starting brokers is what the e2e specs do). */
describe('localSettings', () => {
  test('one node: 9092 for clients, 9093 for the controller, files under .kafka of the working directory', () => {
    const settings = localSettings({});
    expect(settings).toMatchObject({
      port: 9092,
      controllerPort: 9093,
      nodeCount: 1,
      localAddress: '127.0.0.1:9092',
      brokers: '127.0.0.1:9092',
      brokersFromEnv: false,
      security: 'plaintext',
      cacheDir: resolve('.kafka'),
      dataDir: resolve('.kafka', 'data-9092'),
      pidFile: resolve('.kafka', 'broker-9092.pid'),
    });
  });

  test('a cluster: consecutive client ports, controllers after them, one folder per node', () => {
    const settings = localSettings({ KAFKA_NODES: '3', KAFKA_PORT: '28192', KAFKA_LOCAL_DIR: '/tmp/k' });
    expect(settings.controllerPort).toBe(28195);
    expect(settings.localAddress).toBe('127.0.0.1:28192,127.0.0.1:28193,127.0.0.1:28194');
    expect(settings.nodes.map((n) => [n.nodeId, n.port, n.controllerPort, n.dir])).toEqual([
      [1, 28192, 28195, join('/tmp/k', 'cluster-28192', 'node-1')],
      [2, 28193, 28196, join('/tmp/k', 'cluster-28192', 'node-2')],
      [3, 28194, 28197, join('/tmp/k', 'cluster-28192', 'node-3')],
    ]);
  });

  test("the broker JVM: a small heap and Kafka's own GC settings (bin/kafka-run-class.sh), each replaceable", () => {
    const kafkaRunClass = [
      '-server',
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-XX:InitiatingHeapOccupancyPercent=35',
      '-XX:+ExplicitGCInvokesConcurrent',
      '-XX:MaxInlineLevel=15',
      '-Djava.awt.headless=true',
    ];
    expect(localSettings({}).brokerJvmOptions).toEqual(['-Xms256m', '-Xmx512m', ...kafkaRunClass]);
    expect(localSettings({ KAFKA_HEAP_OPTS: ' -Xms1G  -Xmx1G ' }).brokerJvmOptions).toEqual([
      '-Xms1G',
      '-Xmx1G',
      ...kafkaRunClass,
    ]);
    expect(
      localSettings({ KAFKA_HEAP_OPTS: ' ', KAFKA_JVM_PERFORMANCE_OPTS: '-XX:+UseZGC' }).brokerJvmOptions,
    ).toEqual(['-Xms256m', '-Xmx512m', '-XX:+UseZGC']);
  });

  test('KAFKA_BROKERS is reused as given', () => {
    expect(localSettings({ KAFKA_BROKERS: ' 10.0.0.1:9092,10.0.0.2:9092 ' })).toMatchObject({
      brokers: '10.0.0.1:9092,10.0.0.2:9092',
      brokersFromEnv: true,
    });
  });

  test('sasl_ssl: the mutual-TLS listener after the controller port', () => {
    expect(
      localSettings({ KAFKA_SECURITY: 'SASL_SSL', KAFKA_PORT: '28392', KAFKA_CONTROLLER_PORT: '28393' }),
    ).toMatchObject({
      security: 'sasl_ssl',
      mtlsPort: 28394,
    });
  });

  test.each([
    [{ KAFKA_PORT: 'x' }, 'KAFKA_PORT=x is not a TCP port'],
    [{ KAFKA_NODES: '10' }, 'KAFKA_NODES=10: expected a node count from 1 to 9'],
    [
      { KAFKA_PORT: '65535', KAFKA_NODES: '2', KAFKA_CONTROLLER_PORT: '9000' },
      'KAFKA_PORT=65535 leaves no room for 2 node(s) below port 65536',
    ],
    // The default controller port of a cluster is named with its value, not "undefined".
    [{ KAFKA_PORT: '65534', KAFKA_NODES: '2' }, 'KAFKA_CONTROLLER_PORT=65536 is not a TCP port'],
    [
      { KAFKA_PORT: '9092', KAFKA_CONTROLLER_PORT: '9093', KAFKA_NODES: '3' },
      'client ports 9092-9094 and controller ports 9093-9095 overlap: choose another KAFKA_CONTROLLER_PORT',
    ],
    [{ KAFKA_SECURITY: 'tls' }, 'KAFKA_SECURITY=tls: expected one of plaintext, sasl_ssl'],
    [
      { KAFKA_SECURITY: 'sasl_ssl', KAFKA_NODES: '3' },
      'KAFKA_SECURITY=sasl_ssl runs a single node: unset KAFKA_NODES',
    ],
  ])('%o is refused', (env, message) => {
    expect(() => localSettings(env)).toThrow(new KafkaLocalError(message));
  });
});
