import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBrokerReachable } from '../../scripts/kafka-local-lib.mjs';

/** Within the cluster specs' set-up bound, with room left to fail on it rather than on the hook's timeout. */
const PRESTART_WAIT_MS = 200_000;

/**
 * A cluster that `.ci/run` starts ahead of its spec's turn, while other steps run: KAFKA_PRESTART_DIR holds a file
 * named after the cluster's first port, `starting` until the start ended, then `ready` or `failed`. Waits for that
 * end. True when the cluster answers: the spec then owns it, as one it started (it stops it when done). False when
 * none was started for it or its start failed: the spec starts its own, as without `.ci/run`.
 */
export async function prestartedCluster(port: number, brokers: string): Promise<boolean> {
  const dir = process.env.KAFKA_PRESTART_DIR;
  if (!dir) return false;
  const marker = join(dir, String(port));
  const deadline = Date.now() + PRESTART_WAIT_MS;
  for (;;) {
    if (!existsSync(marker)) return false;
    const state = readFileSync(marker, 'utf8').trim();
    if (state === 'failed') return false;
    if (state === 'ready') return isBrokerReachable(brokers);
    if (Date.now() > deadline) {
      throw new Error(
        `the cluster .ci/run started ahead on port ${port} (${brokers}) is still starting after ` +
          `${PRESTART_WAIT_MS / 1000} s (${marker})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
