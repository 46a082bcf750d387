import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { KafkaModule } from 'nest-kafka-groups';
import type { Environment } from '../../config/environment.js';
import { flightTopicProvider } from '../shared/flight-topic.provider.js';
import { latestPositionsProvider } from '../shared/latest-positions.provider.js';
import { AirnavController } from './airnav.controller.js';

@Module({
  imports: [
    KafkaModule.forFeatureAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<Environment, true>) => ({
        groupId: config.get('AIRNAV_GROUP_ID', { infer: true }),
        topicVariables: { FLIGHT_TOPIC: config.get('AIRNAV_TOPIC', { infer: true }) },
      }),
    }),
  ],
  providers: [latestPositionsProvider, flightTopicProvider('AIRNAV_TOPIC')],
  controllers: [AirnavController],
})
export class AirnavModule {}
