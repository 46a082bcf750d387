import { Module } from '@nestjs/common';
import { ConditionalModule, ConfigModule, ConfigService } from '@nestjs/config';
import { type Environment, isTrue, validateEnvironmentOrExit } from './config/environment.js';
import { kafkaSecurityOf } from './config/kafka-security.js';
import { KafkaAdminModule } from './admin/kafka-admin.module.js';
import { AirnavModule } from './flights/airnav/airnav.module.js';
import { FlightFeedModule } from './flights/feed/flight-feed.module.js';
import { Flight24Module } from './flights/flight24/flight24.module.js';
import { TracksModule } from './flights/tracks/tracks.module.js';
import { KafkaModule } from 'nest-kafka-groups';
import { ObservabilityModule } from './observability/observability.module.js';
import { TracingModule } from './observability/tracing.module.js';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, validate: validateEnvironmentOrExit }),
    KafkaModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<Environment, true>) => ({
        brokers: config.get('KAFKA_BROKERS', { infer: true }).split(','),
        clientId: config.get('KAFKA_CLIENT_ID', { infer: true }),
        concurrency: config.get('KAFKA_GROUP_CONCURRENCY', { infer: true }),
        fromBeginning: config.get('KAFKA_FROM_BEGINNING', { infer: true }),
        shutdownTimeoutMs: config.get('KAFKA_SHUTDOWN_TIMEOUT_MS', { infer: true }),
        // Each group's topics and dead-letter topics, created at start-up before its members join.
        topics: {
          create: config.get('KAFKA_CREATE_TOPICS', { infer: true }),
          partitions: config.get('KAFKA_TOPIC_PARTITIONS', { infer: true }),
          replicationFactor: config.get('KAFKA_TOPIC_REPLICATION_FACTOR', { infer: true }),
        },
        ...kafkaSecurityOf((name) => config.get(name, { infer: true })),
      }),
    }),
    AirnavModule,
    Flight24Module,
    ConditionalModule.registerWhen(TracksModule, (env) => isTrue(env.TRACKS_ENABLED)),
    FlightFeedModule,
    KafkaAdminModule,
    ObservabilityModule,
    TracingModule,
  ],
})
export class AppModule {}
