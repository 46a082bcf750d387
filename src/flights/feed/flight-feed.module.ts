import { Module } from '@nestjs/common';
import { FlightTopicsModule } from '../topics/flight-topics.module.js';
import { FlightFeedService } from './flight-feed.service.js';

/** The simulated live flight feed (FEED_ENABLED, FEED_RATE_PER_SEC, FEED_AIRCRAFT). */
@Module({
  imports: [FlightTopicsModule],
  providers: [FlightFeedService],
  exports: [FlightFeedService],
})
export class FlightFeedModule {}
