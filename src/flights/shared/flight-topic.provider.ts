import type { Provider } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Environment } from '../../config/environment.js';

/** The topic of a flight module, for what its controller produces (the module's `${FLIGHT_TOPIC}`). */
export const FLIGHT_TOPIC = Symbol('FLIGHT_TOPIC');

export function flightTopicProvider(variable: 'AIRNAV_TOPIC' | 'FLIGHT24_TOPIC'): Provider {
  return {
    provide: FLIGHT_TOPIC,
    inject: [ConfigService],
    useFactory: (config: ConfigService<Environment, true>) => config.get(variable, { infer: true }),
  };
}
