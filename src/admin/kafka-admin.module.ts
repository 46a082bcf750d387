import { Module } from '@nestjs/common';
import { AdminTokenGuard } from './admin-token.guard.js';
import { KafkaAdminController } from './kafka-admin.controller.js';

/** POST /kafka/groups/:id/pause|resume|stop|start|seek, behind KAFKA_ADMIN_TOKEN (off when it is empty). */
@Module({
  controllers: [KafkaAdminController],
  providers: [AdminTokenGuard],
})
export class KafkaAdminModule {}
