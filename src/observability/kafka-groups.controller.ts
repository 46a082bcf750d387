import { Controller, Get, NotFoundException, Param } from '@nestjs/common';
import { type KafkaGroupStatus, KafkaStatusService } from 'nest-kafka-groups';

/** GET /kafka/groups: every consumer group of this process, its members here, counts, offsets and lag. */
@Controller('kafka/groups')
export class KafkaGroupsController {
  constructor(private readonly status: KafkaStatusService) {}

  @Get()
  async groups(): Promise<{ groups: KafkaGroupStatus[] }> {
    return { groups: await this.status.groups() };
  }

  @Get(':groupId')
  async group(@Param('groupId') groupId: string): Promise<KafkaGroupStatus> {
    const group = await this.status.group(groupId);
    if (!group) throw new NotFoundException(`No consumer group "${groupId}" runs in this process`);
    return group;
  }
}
