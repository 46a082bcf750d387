import type { Provider } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Environment } from '../../config/environment.js';
import { LatestPositionsStore } from './latest-positions.store.js';

/** Each flight module lists this provider: its own store, sized from the configuration. */
export const latestPositionsProvider: Provider = {
  provide: LatestPositionsStore,
  inject: [ConfigService],
  useFactory: (config: ConfigService<Environment, true>) =>
    new LatestPositionsStore({
      maxAircraft: config.get('FLIGHTS_MAX_AIRCRAFT', { infer: true }),
      maxClockSkewMs: config.get('FLIGHTS_MAX_CLOCK_SKEW_MS', { infer: true }),
    }),
};
