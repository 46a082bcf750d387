import { Get, Inject, Logger, Query } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { KafkaGroupContext, KafkaHandler, printable } from 'nest-kafka-groups';
import { FlightPositionDto } from './flight-position.dto.js';
import { FlightsQueryDto } from './flights-query.dto.js';
import { LatestPositionsStore } from './latest-positions.store.js';

/**
 * What both flight modules do with their feed: validate each position, keep the latest per aircraft and serve the
 * most recent at `GET /<prefix>/flights?limit=N`. Each module subclasses it under its own route and provides its
 * own store; its group (forFeature) gives the value of `${FLIGHT_TOPIC}`, so the inherited handler reads that
 * module's topic in that module's group.
 */
export abstract class FlightPositionsController {
  private readonly logger = new Logger(this.constructor.name);
  // Property injection: the subclasses declare no constructor of their own.
  @Inject(LatestPositionsStore)
  private readonly store!: LatestPositionsStore;

  @KafkaHandler('${FLIGHT_TOPIC}')
  onPosition(@Payload() position: FlightPositionDto, @Ctx() ctx: KafkaGroupContext): void {
    this.store.update(position);
    if (Logger.isLevelEnabled('debug')) {
      this.logger.debug(
        `Processed message (topic=${ctx.topic}, partition=${ctx.partition}, offset=${ctx.offset}, key=${printable(ctx.key ?? '')})`,
      );
    }
  }

  @Get('flights')
  flights(@Query() query: FlightsQueryDto): FlightPositionDto[] {
    return this.store.latest(query.limit);
  }
}
