import { Controller } from '@nestjs/common';
import { FlightPositionsController } from '../shared/flight-positions.controller.js';

/** The airnav feed, read in consumer group `AIRNAV_GROUP_ID`; latest positions at `GET /airnav/flights`. */
@Controller('airnav')
export class AirnavController extends FlightPositionsController {}
