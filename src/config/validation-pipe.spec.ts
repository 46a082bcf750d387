import { describe, expect, test } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { RpcParamtype } from '@nestjs/microservices/enums/rpc-paramtype.enum.js';
import { FlightPositionDto } from '../flights/shared/flight-position.dto.js';
import { FlightsQueryDto } from '../flights/shared/flights-query.dto.js';
import { createValidationPipe } from './validation-pipe.js';

const POSITION = {
  icao24: '3c6444',
  callsign: 'DLH4AB',
  lat: 50.0379,
  lon: 8.5622,
  altitude: 10_668,
  speed: 231.5,
  heading: 271,
  ts: 1_760_000_000_000,
};

async function rejection(run: Promise<unknown>): Promise<string[]> {
  const error = await run.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(BadRequestException);
  return ((error as BadRequestException).getResponse() as { message: string[] }).message;
}

describe('the service validation pipe', () => {
  const pipe = createValidationPipe();
  // How Nest's context creator hands a `@Payload()` parameter to the pipes: its numeric RPC param type.
  const payload = { type: RpcParamtype.PAYLOAD as unknown as 'body', metatype: FlightPositionDto };

  test('a well-formed position becomes a FlightPositionDto', async () => {
    const position = await pipe.transform({ ...POSITION }, payload);
    expect(position).toBeInstanceOf(FlightPositionDto);
    expect({ ...position }).toEqual(POSITION);
  });

  test('a field the DTO does not declare is refused, however large', async () => {
    const messages = await rejection(pipe.transform({ ...POSITION, junk: 'x'.repeat(900 * 1024) }, payload));
    expect(messages).toEqual(['property junk should not exist']);
  });

  test('an array where one position is expected is refused', async () => {
    await rejection(pipe.transform([POSITION], payload));
  });

  test('GET ?limit: a number from 1 to 1000, 100 when absent, unknown parameters refused', async () => {
    const query = { type: 'query', metatype: FlightsQueryDto } as const;
    expect(await pipe.transform({}, query)).toEqual(Object.assign(new FlightsQueryDto(), { limit: 100 }));
    expect(((await pipe.transform({ limit: '7' }, query)) as FlightsQueryDto).limit).toBe(7);
    for (const limit of ['0', '1001', 'abc', '1.5']) await rejection(pipe.transform({ limit }, query));
    await rejection(pipe.transform({ limit: '5', sort: 'callsign' }, query));
  });
});
