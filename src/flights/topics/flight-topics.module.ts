import { Module } from '@nestjs/common';
import { FlightTopicsService } from './flight-topics.service.js';

/** Creates the flight topics at start, before any consumer joins. */
@Module({
  providers: [FlightTopicsService],
  exports: [FlightTopicsService],
})
export class FlightTopicsModule {}
