import { Allow, IsArray, IsInt, IsOptional, IsString, Min, MinLength } from 'class-validator';

/** Body of POST /kafka/groups/:id/pause and /resume: the topics, all of the group's when absent. */
export class TopicsRequestDto {
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  topics?: string[];
}

/**
 * Body of POST /kafka/groups/:id/seek: `topic`, optionally `partition`, and one of `offset` (a number, a decimal
 * string, "earliest" or "latest") or `timestamp` (ms since the epoch, or an ISO 8601 date). The library checks the
 * combination and the values, and names what is wrong.
 */
export class SeekRequestDto {
  @IsString()
  @MinLength(1)
  topic!: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  partition?: number;

  @Allow()
  offset?: unknown;

  @Allow()
  timestamp?: unknown;
}
