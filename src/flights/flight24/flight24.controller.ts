import { Controller, Get, Logger } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { KafkaGroupContext, KafkaHandler } from '../../kafka/index.js';
import { FlightPositionDto } from '../shared/flight-position.dto.js';
import { LatestPositionsStore } from '../shared/latest-positions.store.js';

/** Consumes the flight24 feed in consumer group `FLIGHT24_GROUP_ID` and serves the latest position per aircraft. */
@Controller('flight24')
export class Flight24Controller {
  private readonly logger = new Logger(Flight24Controller.name);
  private readonly store = new LatestPositionsStore();

  @KafkaHandler('${FLIGHT24_TOPIC}')
  onPosition(@Payload() position: FlightPositionDto, @Ctx() ctx: KafkaGroupContext): void {
    this.store.update(position);
    this.logger.debug(
      `Processed message (topic=${ctx.topic}, partition=${ctx.partition}, offset=${ctx.offset}, key=${ctx.key})`,
    );
  }

  @Get('flights')
  flights(): FlightPositionDto[] {
    return this.store.all();
  }
}
