import { Module } from '@nestjs/common';
import { FlightFeedService } from './flight-feed.service.js';

/** The simulated live flight feed (FEED_ENABLED, FEED_RATE_PER_SEC, FEED_AIRCRAFT). */
@Module({
  providers: [FlightFeedService],
  exports: [FlightFeedService],
})
export class FlightFeedModule {}
