import 'reflect-metadata';
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import {
  type ArgumentMetadata,
  HttpStatus,
  ValidationPipe,
  type ValidationPipeOptions,
} from '@nestjs/common';
import { Exclude, Transform, Type } from 'class-transformer';
import {
  Allow,
  IsBoolean,
  IsDefined,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  registerDecorator,
  ValidateIf,
  ValidateNested,
  type ValidationArguments,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
  type ValidationError,
} from 'class-validator';
import { changedInternals, CompiledValidationPipe, PINNED_INTERNALS } from './compiled-validation.pipe.js';

/**
 * CompiledValidationPipe against ValidationPipe: the same options, classes and inputs must give the same result
 * (the same instance or plain value, or the same exception with the same response), and the plan must really run
 * where it applies (else these comparisons would only compare ValidationPipe with itself).
 */

function IsEvenWithin(max: number) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isEvenWithin',
      target: target.constructor,
      propertyName,
      constraints: [max],
      options: {
        message: (args: ValidationArguments) =>
          `$property ${String(args.value)} not even or over $constraint1`,
      },
      validator: {
        validate: (value: unknown, args: ValidationArguments) =>
          typeof value === 'number' && value % 2 === 0 && value <= (args.constraints[0] as number),
      },
    });
}

@ValidatorConstraint({ name: 'isAvailable', async: true })
class IsAvailableConstraint implements ValidatorConstraintInterface {
  async validate(value: unknown): Promise<boolean> {
    await new Promise((resolve) => setImmediate(resolve));
    return value !== 'taken';
  }
  defaultMessage(args: ValidationArguments): string {
    return `$property ${String(args.value)} is taken`;
  }
}
function IsAvailable() {
  return (target: object, propertyName: string) =>
    registerDecorator({ target: target.constructor, propertyName, validator: IsAvailableConstraint });
}

/** The flight DTO's kind of rules, with a custom constraint and conditions. */
class PositionDto {
  @IsInt() @Min(0) seq!: number;
  @IsString() @Matches(/^[0-9a-f]{6}$/, { message: 'icao24 must be 6 lowercase hex digits' }) icao24!: string;
  @IsString() @MaxLength(8) callsign!: string;
  @IsString() @Length(4, 4) origin!: string;
  @IsNumber() @Min(-90) @Max(90) lat!: number;
  @IsBoolean() onGround!: boolean;
  @IsIn(['ADSB', 'MLAT']) source!: string;
  @IsOptional() @IsString() @MaxLength(3) note?: string;
  @ValidateIf((o: PositionDto) => o.source === 'MLAT')
  @IsInt({ message: 'receivers of $target.$property must be an integer, got $value' })
  receivers?: number;
  @IsDefined() @IsEvenWithin(100) even!: number;
  @Allow() free?: unknown;
  @IsOptional() @IsString({ each: true }) tags?: string;
  @IsOptional() @MaxLength(2, { validateIf: (o: PositionDto) => o.source === 'ADSB' }) code?: string;
  @IsOptional() @IsAvailable() slot?: string;
}

/** Beyond the plan: a rule with a context, which class-validator adds to the error. */
class WithContext {
  @IsInt({ context: { code: 42 } }) n!: number;
}

/** Inherited rules, a constructor default, a method and a getter-only property on the prototype. */
class BasePosition {
  @IsInt() @Min(1) id!: number;
}
class ExtendedPosition extends BasePosition {
  @IsString() name!: string;
  @IsOptional() @IsInt() level = 7;
  describe(): string {
    return this.name;
  }
  get label(): string {
    return `#${this.id}`;
  }
}

class Inner {
  @IsInt() n!: number;
}
/** Beyond the plan: nested validation with class-transformer's @Type. */
class Outer {
  @ValidateNested() @Type(() => Inner) inner!: Inner;
  @IsString() name!: string;
}
/** Beyond the plan: a class-transformer rule. */
class Trimmed {
  @Transform(({ value }) => (typeof value === 'string' ? value.trim() : value))
  @IsString()
  @Length(1, 3)
  code!: string;
}
class Hidden {
  @Exclude() @IsOptional() secret?: string;
  @IsString() name!: string;
}
class Empty {}

const valid = {
  seq: 1,
  icao24: 'a1b2c3',
  callsign: 'BAW1',
  origin: 'EGLL',
  lat: 51.47,
  onGround: false,
  source: 'ADSB',
  even: 4,
};

/** Inputs for PositionDto: valid, each rule broken, types wrong, extra and missing keys, hostile keys. */
const positionInputs: unknown[] = [
  valid,
  { ...valid, note: 'ok' },
  { ...valid, note: null },
  { ...valid, note: 'too long' },
  { ...valid, seq: -1 },
  { ...valid, seq: 1.5, icao24: 'XYZ', callsign: 'A-VERY-LONG-ONE', origin: 'EGL', lat: 91 },
  { ...valid, seq: '1', lat: '51', onGround: 'false', source: 'RADAR' },
  { ...valid, source: 'MLAT' },
  { ...valid, source: 'MLAT', receivers: 2.5 },
  { ...valid, source: 'MLAT', receivers: 3 },
  { ...valid, even: 3 },
  { ...valid, even: 102 },
  { ...valid, even: undefined },
  { ...valid, free: 'anything' },
  { ...valid, extra: 1, other: 'x' },
  { ...valid, toString: 'shadow', hasOwnProperty: 2 },
  {},
  { seq: null, icao24: null },
  JSON.parse('{"seq": 1, "__proto__": {"polluted": true}}'),
  JSON.parse('{"seq": 1, "constructor": {"prototype": {"x": 1}}}'),
  JSON.parse('{"seq": 1, "__proto__": 5}'),
  { ...valid, constructor: 5 },
  { ...valid, prototype: 'p' },
  { ...valid, tags: 'a' },
  { ...valid, tags: 3 },
  { ...valid, code: 'abc' },
  { ...valid, code: 'abc', source: 'MLAT' },
  { ...valid, slot: 'free' },
  { ...valid, slot: 'taken', seq: -2 },
  { ...valid, nested: { a: 1 } },
  { ...valid, list: [1, 2] },
  [valid],
  null,
  undefined,
  'text',
  42,
  Buffer.from('{}'),
];

const extendedInputs: unknown[] = [
  { id: 1, name: 'a' },
  { id: 0, name: 5 },
  { id: 2, name: 'b', level: 'high' },
  { id: 2, name: 'b', level: null },
  { id: 3, name: 'c', describe: 'not a method', label: 'not a getter', extra: true },
  {},
];

const optionSets: ValidationPipeOptions[] = [
  { transform: true, whitelist: true, forbidNonWhitelisted: true },
  { transform: true },
  { transform: true, whitelist: true },
  {},
  { whitelist: true },
  { transform: true, forbidUnknownValues: true },
  { transform: true, validationError: { value: false } },
  { transform: true, errorHttpStatusCode: HttpStatus.UNPROCESSABLE_ENTITY, errorFormat: 'grouped' },
  { transform: true, disableErrorMessages: true },
  { transform: true, exceptionFactory: (errors: ValidationError[]) => new Error(JSON.stringify(errors)) },
  {
    transform: true,
    validationError: { value: false },
    exceptionFactory: (errors: ValidationError[]) => new Error(JSON.stringify(errors)),
  },
  { transform: true, stopAtFirstError: true },
  { transform: true, skipMissingProperties: true },
  { transform: true, expectedType: PositionDto },
];

/**
 * A deep copy in this realm (structuredClone would make objects of another realm, which the plan leaves to
 * ValidationPipe), keeping own `__proto__` keys as JSON.parse makes them.
 */
function clone(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map(clone);
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    Object.defineProperty(copy, key, {
      value: clone((value as Record<string, unknown>)[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}

/** What a transform gave, comparable across the two pipes: the value (with its class) or the exception. */
async function outcome(pipe: ValidationPipe, input: unknown, metadata: ArgumentMetadata) {
  try {
    const value = await pipe.transform(clone(input), metadata);
    return {
      ok: true,
      class: value?.constructor?.name,
      keys: value !== null && typeof value === 'object' ? Object.keys(value) : undefined,
      value,
    };
  } catch (error) {
    const response = (error as { getResponse?: () => unknown }).getResponse?.();
    return {
      ok: false,
      class: (error as Error).constructor.name,
      status: (error as { getStatus?: () => number }).getStatus?.(),
      response,
      message: (error as Error).message,
    };
  }
}

const body = (metatype: Function): ArgumentMetadata => ({
  type: 'body',
  metatype: metatype as never,
  data: undefined,
});

describe('CompiledValidationPipe gives what ValidationPipe gives', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  for (const options of optionSets) {
    const name = JSON.stringify(options, (key, value) =>
      typeof value === 'function' ? value.name || 'fn' : value,
    );
    test(`PositionDto, options ${name}`, async () => {
      const reference = new ValidationPipe(options);
      const compiled = new CompiledValidationPipe(options);
      for (const input of positionInputs) {
        expect([input, await outcome(compiled, input, body(PositionDto))]).toStrictEqual([
          input,
          await outcome(reference, input, body(PositionDto)),
        ]);
      }
    });

    test(`inherited rules, defaults, methods and getters, options ${name}`, async () => {
      const reference = new ValidationPipe(options);
      const compiled = new CompiledValidationPipe(options);
      for (const input of extendedInputs) {
        expect([input, await outcome(compiled, input, body(ExtendedPosition))]).toStrictEqual([
          input,
          await outcome(reference, input, body(ExtendedPosition)),
        ]);
      }
    });
  }

  test('classes beyond the plan (nested, class-transformer rules, no rules) and other parameters', async () => {
    for (const options of [...optionSets.slice(0, 6), optionSets[9]]) {
      const reference = new ValidationPipe(options);
      const compiled = new CompiledValidationPipe(options);
      const cases: [unknown, ArgumentMetadata][] = [
        [{ inner: { n: 1 }, name: 'x' }, body(Outer)],
        [{ inner: { n: 'x' }, name: 'x' }, body(Outer)],
        [{ name: 'x' }, body(Outer)],
        [{ code: '  ab  ' }, body(Trimmed)],
        [{ code: '  abcd ' }, body(Trimmed)],
        [{ secret: 's', name: 'n' }, body(Hidden)],
        [{ a: 1 }, body(Empty)],
        [{ n: 'x' }, body(WithContext)],
        [{ a: 1 }, { type: 'custom', metatype: PositionDto as never, data: undefined }],
        [{ a: 1 }, { type: 'body', metatype: Object as never, data: undefined }],
        ['7', { type: 'param', metatype: Number as never, data: 'id' }],
      ];
      for (const [input, metadata] of cases) {
        expect([input, await outcome(compiled, input, metadata)]).toStrictEqual([
          input,
          await outcome(reference, input, metadata),
        ]);
      }
    }
  });

  test('the plan runs for a flat payload of a planned class, without ValidationPipe.transform', async () => {
    const compiled = new CompiledValidationPipe({
      transform: true,
      whitelist: true,
      forbidNonWhitelisted: true,
    });
    const fallback = jest.spyOn(ValidationPipe.prototype, 'transform');
    await compiled.transform({ ...valid }, body(PositionDto));
    await expect(compiled.transform({ ...valid, seq: -1 }, body(PositionDto))).rejects.toThrow('Bad Request');
    await compiled.transform({ id: 1, name: 'a' }, body(ExtendedPosition));
    expect(fallback).not.toHaveBeenCalled();
    // Nested values, classes with class-transformer rules, or options beyond the plan: ValidationPipe's path.
    await compiled.transform({ ...valid, nested: {} }, body(PositionDto)).catch(() => undefined);
    await compiled.transform({ code: 'a' }, body(Trimmed));
    await compiled.transform({ inner: { n: 1 }, name: 'x' }, body(Outer));
    await new CompiledValidationPipe({ transform: true, stopAtFirstError: true }).transform(
      { ...valid },
      body(PositionDto),
    );
    expect(fallback).toHaveBeenCalledTimes(4);
  });

  test('a subclass that overrides one of ValidationPipe’s steps keeps ValidationPipe’s path', async () => {
    class Custom extends CompiledValidationPipe {
      protected override validate(object: object) {
        return [
          { property: 'all', constraints: { custom: `refused ${object.constructor.name}` }, children: [] },
        ];
      }
    }
    await expect(new Custom().transform({ ...valid }, body(PositionDto))).rejects.toMatchObject({
      response: { message: ['refused PositionDto'] },
    });
  });

  test('the internals the plan relies on are the installed ones, and a moved or changed one is named', () => {
    // An upgrade of class-validator, class-transformer or Nest fails here (and the pipe falls back, warning).
    expect(changedInternals()).toStrictEqual([]);
    const [executor, utils] = PINNED_INTERNALS;
    expect(
      changedInternals([
        { ...executor, sha256: '0'.repeat(64) },
        { ...utils, file: 'validation/Moved.js' },
        { module: 'class-validator-gone', file: 'x.js', sha256: utils.sha256 },
      ]),
    ).toStrictEqual([
      'class-validator/validation/ValidationExecutor.js (content differs)',
      expect.stringMatching(/^class-validator\/validation\/Moved\.js \(ENOENT: no such file/),
      expect.stringMatching(/^class-validator-gone\/x\.js \(Cannot find module 'class-validator-gone'/),
    ]);
  });
});
