/**
 * Jest globalSetup: every e2e spec needs a real broker. Reuses one that answers at KAFKA_BROKERS (a developer's
 * `docker compose up -d` or `npm run kafka:start`), else starts a local one with scripts/kafka-local-lib.mjs.
 * Jest runs this in its main process before creating workers, so the variables set here reach every spec.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBroker, isBrokerReachable, localSettings, log } from '../../scripts/kafka-local-lib.mjs';

/** Within Jest's own bound on the global setup, as the cluster specs' wait (test/support/prestarted-cluster.ts). */
const PRESTART_WAIT_MS = 200_000;

export default async function globalSetup() {
  const { brokers, started } = (await prestartedBroker()) ?? (await ensureBroker());
  if (!started) log(`reusing the broker at ${brokers}`);
  process.env.KAFKA_BROKERS = brokers;
  // Tells global-teardown to stop the broker, and outage specs that they may stop and restart it.
  process.env.KAFKA_LOCAL_STARTED = started ? '1' : '0';
}

/**
 * The broker `.ci/run` starts for this run beside the build (KAFKA_PRESTART_DIR, a file named after its port:
 * `starting`, then `ready` or `failed`, as the cluster specs' clusters): once its start ended and it answers, the
 * run owns it as one it started. Nothing (undefined) without one or when its start failed: the broker is then
 * reused or started as without `.ci/run`.
 */
async function prestartedBroker() {
  const dir = process.env.KAFKA_PRESTART_DIR;
  if (!dir || process.env.KAFKA_BROKERS) return undefined;
  const settings = localSettings();
  const marker = join(dir, String(settings.port));
  const deadline = Date.now() + PRESTART_WAIT_MS;
  for (;;) {
    if (!existsSync(marker)) return undefined;
    const state = readFileSync(marker, 'utf8').trim();
    if (state === 'failed') return undefined;
    if (state === 'ready') {
      return (await isBrokerReachable(settings.brokers))
        ? { brokers: settings.brokers, started: true }
        : undefined;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the broker .ci/run started ahead on ${settings.brokers} is still starting (${marker})`,
      );
    }
    await sleep(500);
  }
}
