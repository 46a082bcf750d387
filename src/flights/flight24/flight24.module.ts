import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { KafkaModule } from 'nest-kafka-groups';
import type { Environment } from '../../config/environment.js';
import { flightTopicProvider } from '../shared/flight-topic.provider.js';
import { latestPositionsProvider } from '../shared/latest-positions.provider.js';
import { Flight24Controller } from './flight24.controller.js';

@Module({
  imports: [
    KafkaModule.forFeatureAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<Environment, true>) => ({
        groupId: config.get('FLIGHT24_GROUP_ID', { infer: true }),
        topicVariables: { FLIGHT_TOPIC: config.get('FLIGHT24_TOPIC', { infer: true }) },
      }),
    }),
  ],
  providers: [latestPositionsProvider, flightTopicProvider('FLIGHT24_TOPIC')],
  controllers: [Flight24Controller],
})
export class Flight24Module {}
