import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { KafkaModule } from 'nest-kafka-groups';
import type { Environment } from '../../config/environment.js';
import { TrackArchive } from './track-archive.js';
import { TracksController } from './tracks.controller.js';

/**
 * The third consumer group of the example (`TRACKS_ENABLED=true`): a batch handler over both flight topics. Its
 * dead letters go to `<topic>-tracks-dlt`, apart from the flight modules' `<topic>-dlt`.
 */
@Module({
  imports: [
    KafkaModule.forFeatureAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<Environment, true>) => ({
        groupId: config.get('TRACKS_GROUP_ID', { infer: true }),
        topicVariables: {
          AIRNAV_TOPIC: config.get('AIRNAV_TOPIC', { infer: true }),
          FLIGHT24_TOPIC: config.get('FLIGHT24_TOPIC', { infer: true }),
        },
        deadLetter: { topic: (topic: string) => `${topic}-tracks-dlt` },
      }),
    }),
  ],
  providers: [
    {
      provide: TrackArchive,
      inject: [ConfigService],
      useFactory: (config: ConfigService<Environment, true>) =>
        new TrackArchive({
          maxAircraft: config.get('FLIGHTS_MAX_AIRCRAFT', { infer: true }),
          maxPoints: 100,
        }),
    },
  ],
  controllers: [TracksController],
})
export class TracksModule {}
