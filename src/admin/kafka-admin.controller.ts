import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  ServiceUnavailableException,
  UseGuards,
} from '@nestjs/common';
import {
  KafkaConsumerProtocolGroupError,
  type KafkaGroupControlStatus,
  KafkaGroupNotEmptyError,
  KafkaGroups,
  KafkaGroupsShuttingDownError,
  type KafkaSeekResult,
  type KafkaSeekTarget,
  KafkaSeekTargetError,
  KafkaUnknownGroupError,
  KafkaUnknownGroupTopicError,
} from 'nest-kafka-groups';
import { AdminTokenGuard } from './admin-token.guard.js';
import { SeekRequestDto, TopicsRequestDto } from './seek-request.dto.js';

/**
 * Runtime control of this process's consumer groups over HTTP, behind a bearer token (AdminTokenGuard):
 * POST /kafka/groups/:id/pause|resume (body `{ topics? }`), /stop, /start, /seek. Each answers with the group as
 * `KafkaGroups.list()` shows it (seek: the committed offsets). The library's typed errors become 404 (unknown
 * group), 400 (unknown topic, bad seek target), 409 (seek while other members, KIP-848 ones too, are in the group)
 * and 503 (shutting down), with the library's message as the body's `message`.
 */
@Controller('kafka/groups')
@UseGuards(AdminTokenGuard)
export class KafkaAdminController {
  constructor(private readonly groups: KafkaGroups) {}

  @Post(':groupId/pause')
  @HttpCode(200)
  pause(@Param('groupId') groupId: string, @Body() body: TopicsRequestDto = {}): KafkaGroupControlStatus {
    return this.control(groupId, () => this.groups.pause(groupId, body.topics));
  }

  @Post(':groupId/resume')
  @HttpCode(200)
  resume(@Param('groupId') groupId: string, @Body() body: TopicsRequestDto = {}): KafkaGroupControlStatus {
    return this.control(groupId, () => this.groups.resume(groupId, body.topics));
  }

  @Post(':groupId/stop')
  @HttpCode(200)
  async stop(@Param('groupId') groupId: string): Promise<KafkaGroupControlStatus> {
    await this.groups.stop(groupId).catch(toHttp);
    return this.statusOf(groupId);
  }

  @Post(':groupId/start')
  @HttpCode(200)
  async start(@Param('groupId') groupId: string): Promise<KafkaGroupControlStatus> {
    await this.groups.start(groupId).catch(toHttp);
    return this.statusOf(groupId);
  }

  @Post(':groupId/seek')
  @HttpCode(200)
  seek(@Param('groupId') groupId: string, @Body() body: SeekRequestDto): Promise<KafkaSeekResult> {
    const { topic, partition, offset, timestamp } = body;
    const target = {
      topic,
      ...(partition !== undefined && { partition }),
      ...(offset !== undefined && { offset }),
      ...(timestamp !== undefined && {
        timestamp: typeof timestamp === 'string' ? new Date(timestamp) : timestamp,
      }),
    } as KafkaSeekTarget;
    return this.groups.seek(groupId, target).catch(toHttp);
  }

  private control(groupId: string, action: () => void): KafkaGroupControlStatus {
    try {
      action();
    } catch (error) {
      toHttp(error);
    }
    return this.statusOf(groupId);
  }

  private statusOf(groupId: string): KafkaGroupControlStatus {
    return this.groups.list().find((group) => group.groupId === groupId)!;
  }
}

/** The library's typed errors as HTTP errors; anything else stays a 500. */
function toHttp(error: unknown): never {
  if (error instanceof KafkaUnknownGroupError) throw new NotFoundException(error.message);
  if (error instanceof KafkaUnknownGroupTopicError || error instanceof KafkaSeekTargetError) {
    throw new BadRequestException(error.message);
  }
  if (error instanceof KafkaGroupNotEmptyError || error instanceof KafkaConsumerProtocolGroupError) {
    throw new ConflictException(error.message);
  }
  if (error instanceof KafkaGroupsShuttingDownError) throw new ServiceUnavailableException(error.message);
  throw error;
}
