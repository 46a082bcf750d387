import { Module } from '@nestjs/common';
import { KafkaAdminClient } from './kafka-admin.client.js';
import { KafkaStatusService } from './kafka-status.service.js';

/**
 * Status of the consumer groups (members, counts, committed offsets, lag) for an HTTP endpoint of your own:
 * inject `KafkaStatusService` and return `groups()`. Needs `KafkaModule.forRoot` in the application.
 */
@Module({
  providers: [KafkaAdminClient, KafkaStatusService],
  exports: [KafkaAdminClient, KafkaStatusService],
})
export class KafkaStatusModule {}
