import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { KafkaBatchContext, KafkaHandler } from 'nest-kafka-groups';
import { FlightPositionDto } from '../shared/flight-position.dto.js';
import { TrackArchive, type TrackPoint } from './track-archive.js';

/**
 * Both feeds again, in a group of their own (`TRACKS_GROUP_ID`), as a batch handler: each call appends up to 500
 * positions of one partition to the aircraft's tracks at once. Each element is validated as a FlightPositionDto
 * (`items`); an invalid one goes to `<topic>-tracks-dlt` alone. `GET /tracks/:icao24` serves a track.
 */
@Controller('tracks')
export class TracksController {
  constructor(@Inject(TrackArchive) private readonly archive: TrackArchive) {}

  @KafkaHandler(['${AIRNAV_TOPIC}', '${FLIGHT24_TOPIC}'], {
    batch: true,
    maxBatchSize: 500,
    items: FlightPositionDto,
  })
  onPositions(@Payload() positions: FlightPositionDto[], @Ctx() ctx: KafkaBatchContext): void {
    this.archive.append(ctx.topic, positions);
  }

  @Get(':icao24')
  track(@Param('icao24') icao24: string): { icao24: string; points: readonly TrackPoint[] } {
    const points = this.archive.track(icao24);
    if (!points) throw new NotFoundException(`No track of aircraft ${icao24}`);
    return { icao24, points };
  }
}
