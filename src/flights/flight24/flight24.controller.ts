import { Controller } from '@nestjs/common';
import { FlightPositionsController } from '../shared/flight-positions.controller.js';

/** The flight24 feed, read in consumer group `FLIGHT24_GROUP_ID`; latest positions at `GET /flight24/flights`. */
@Controller('flight24')
export class Flight24Controller extends FlightPositionsController {}
