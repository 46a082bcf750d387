/**
 * Jest globalSetup: every e2e spec needs a real broker. Reuses one that answers at KAFKA_BROKERS (a developer's
 * `docker compose up -d` or `npm run kafka:start`), else starts a local one with scripts/kafka-local-lib.mjs.
 * Jest runs this in its main process before creating workers, so the variables set here reach every spec.
 */
import { ensureBroker, log } from '../../scripts/kafka-local-lib.mjs';

export default async function globalSetup() {
  const { brokers, started } = await ensureBroker();
  if (!started) log(`reusing the broker at ${brokers}`);
  process.env.KAFKA_BROKERS = brokers;
  // Tells global-teardown to stop the broker, and outage specs that they may stop and restart it.
  process.env.KAFKA_LOCAL_STARTED = started ? '1' : '0';
}
