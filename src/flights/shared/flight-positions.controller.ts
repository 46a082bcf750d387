import {
  Body,
  Get,
  HttpCode,
  Inject,
  Logger,
  Post,
  Query,
  ServiceUnavailableException,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import {
  KafkaGroupContext,
  KafkaHandler,
  KafkaProducer,
  KafkaProducerError,
  printable,
} from 'nest-kafka-groups';
import { FlightPositionDto } from './flight-position.dto.js';
import { FLIGHT_TOPIC } from './flight-topic.provider.js';
import { FlightsQueryDto } from './flights-query.dto.js';
import { LatestPositionsStore } from './latest-positions.store.js';

/**
 * What both flight modules do with their feed: validate each position, keep the latest per aircraft and serve the
 * most recent at `GET /<prefix>/flights?limit=N`. Each module subclasses it under its own route and provides its
 * own store; its group (forFeature) gives the value of `${FLIGHT_TOPIC}`, so the inherited handler reads that
 * module's topic in that module's group. `POST /<prefix>/positions` publishes one position to that topic (with
 * tracing on, one trace runs from the HTTP request through the send to the handler).
 */
export abstract class FlightPositionsController {
  private readonly logger = new Logger(this.constructor.name);
  // Property injection: the subclasses declare no constructor of their own.
  @Inject(LatestPositionsStore)
  private readonly store!: LatestPositionsStore;
  @Inject(FLIGHT_TOPIC)
  private readonly topic!: string;
  @Inject(KafkaProducer)
  private readonly producer!: KafkaProducer;

  @KafkaHandler('${FLIGHT_TOPIC}')
  onPosition(@Payload() position: FlightPositionDto, @Ctx() ctx: KafkaGroupContext): void {
    this.store.update(position);
    if (Logger.isLevelEnabled('debug')) {
      this.logger.debug(
        `Processed message (topic=${ctx.topic}, partition=${ctx.partition}, offset=${ctx.offset}, key=${printable(ctx.key ?? '')})`,
      );
    }
  }

  /** Publishes a validated position to this module's topic, keyed by `icao24`; 202 once the broker has it. */
  @Post('positions')
  @HttpCode(202)
  async publish(@Body() position: FlightPositionDto): Promise<{ topic: string; key: string }> {
    try {
      await this.producer.send(this.topic, { key: position.icao24, value: position });
    } catch (error) {
      if (error instanceof KafkaProducerError) throw new ServiceUnavailableException(error.message);
      throw error;
    }
    return { topic: this.topic, key: position.icao24 };
  }

  @Get('flights')
  flights(@Query() query: FlightsQueryDto): FlightPositionDto[] {
    return this.store.latest(query.limit);
  }
}
