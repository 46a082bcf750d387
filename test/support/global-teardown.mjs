/** Jest globalTeardown: stops the broker only if global-setup started it; a reused broker keeps running. */
import { stopBroker } from '../../scripts/kafka-local-lib.mjs';

export default async function globalTeardown() {
  if (process.env.KAFKA_LOCAL_STARTED === '1') await stopBroker();
}
