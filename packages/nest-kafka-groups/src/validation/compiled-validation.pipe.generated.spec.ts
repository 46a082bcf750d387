import 'reflect-metadata';
import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { type ArgumentMetadata, ValidationPipe, type ValidationPipeOptions } from '@nestjs/common';
import { Type } from 'class-transformer';
import {
  Allow,
  IsDefined,
  IsInt,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
  type ValidationArguments,
  ValidationError,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
  registerDecorator,
} from 'class-validator';
import { CompiledValidationPipe } from './compiled-validation.pipe.js';

/**
 * A differential check on generated inputs: for many (seeded, reproducible) payloads, DTO classes and option sets,
 * CompiledValidationPipe must hand the exception factory the very same ValidationError objects as ValidationPipe
 * (class, own keys in order, target, value, constraints in order) and return the same value. The fixed cases of
 * compiled-validation.pipe.spec.ts compare responses; this one compares the errors themselves, where a factory of
 * the user's own sees them.
 */

/** Deterministic generator (mulberry32), so a failure names a seed and case that reproduce it. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

@ValidatorConstraint({ name: 'slowAvailable', async: true })
class SlowAvailable implements ValidatorConstraintInterface {
  async validate(value: unknown): Promise<boolean> {
    // Fails after a number of turns that depends on the value, so async failures land out of rule order.
    const turns = typeof value === 'string' ? value.length % 3 : 1;
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
    return value !== 'taken' && value !== 'abc';
  }
  defaultMessage(args: ValidationArguments): string {
    return `$property ${String(args.value)} unavailable (${args.targetName})`;
  }
}
function SlowlyAvailable(groups?: string[]) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      target: target.constructor,
      propertyName,
      validator: SlowAvailable,
      options: groups ? { groups } : {},
    });
}
function Positive(message?: string) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'positive',
      target: target.constructor,
      propertyName,
      options: message === undefined ? {} : { message },
      validator: {
        validate: (value: unknown) => typeof value === 'number' && value > 0,
        defaultMessage: (args?: ValidationArguments) => `${args?.property} must be positive, got $value`,
      },
    });
}

/** Groups and `always` on rules, validated without groups and with them. */
class Grouped {
  @IsString({ groups: ['a'] }) @MaxLength(3, { always: true }) name!: string;
  @IsInt({ groups: ['b'] }) @Min(5, { always: true }) @Min(1) count!: number;
  @IsOptional({ groups: ['a'] }) @SlowlyAvailable(['b']) slot?: string;
  @Allow({ groups: ['a'] }) free?: unknown;
}

/** Conditions, IsDefined next to IsOptional, repeated constraint types, async and sync custom constraints. */
class Conditional {
  @ValidateIf((o: Conditional) => o.kind !== 'skip')
  @ValidateIf((_o: Conditional, v: unknown) => (v === 0 ? 0 : 'yes') as unknown as boolean)
  @IsInt()
  @Max(10)
  @Max(5, { message: 'second max $constraint1 for $value' })
  level!: number;
  @IsDefined() @IsOptional() @IsString() kind?: string;
  @IsOptional() @SlowlyAvailable() @MaxLength(2) @SlowlyAvailable() slot?: string;
  @Positive() @Positive('custom $property') @IsInt({ each: true }) amount!: number;
  @IsOptional() @MaxLength(1, { validateIf: (o: Conditional) => o.kind === 'short' }) code?: string;
}

/** Inherited rules, one overridden in the subclass, a field initializer and a prototype getter. */
class Base {
  @IsString() name!: string;
  @IsInt() @Min(0) id!: number;
}
class Derived extends Base {
  @IsOptional() @IsInt() declare name: string;
  @IsOptional() @IsString() label = 'default';
  get view(): string {
    return `${this.id}`;
  }
}

class Leaf {
  @IsInt() n!: number;
}
/** Beyond the plan (ValidationPipe's path): nested values. */
class Tree {
  @IsOptional() @ValidateNested() @Type(() => Leaf) leaf?: Leaf;
  @IsString() name!: string;
}

const classes: Record<string, { metatype: Function; keys: string[] }> = {
  Grouped: { metatype: Grouped, keys: ['name', 'count', 'slot', 'free'] },
  Conditional: { metatype: Conditional, keys: ['level', 'kind', 'slot', 'amount', 'code'] },
  Derived: { metatype: Derived, keys: ['name', 'id', 'label', 'view'] },
  Tree: { metatype: Tree, keys: ['leaf', 'name'] },
};

const values: unknown[] = [
  undefined,
  null,
  0,
  -1,
  1,
  3,
  7,
  12,
  2.5,
  Number.NaN,
  '',
  'a',
  'ab',
  'abc',
  'skip',
  'short',
  'taken',
  true,
  false,
  [1],
  ['a', 'b'],
  { n: 1 },
  { n: 'x' },
];
const extraKeys = ['extra', 'toString', 'hasOwnProperty', 'valueOf', '__proto__', 'constructor', 'prototype'];

function generate(next: () => number, keys: string[]): unknown {
  const shape = next();
  if (shape < 0.04) return values[Math.floor(next() * values.length)];
  const input: Record<string, unknown> = {};
  for (const key of keys) {
    if (next() < 0.8) input[key] = values[Math.floor(next() * values.length)];
  }
  if (next() < 0.3) {
    const key = extraKeys[Math.floor(next() * extraKeys.length)];
    // As JSON.parse makes them: an own `__proto__` key included.
    Object.defineProperty(input, key, {
      value: values[Math.floor(next() * 9)],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return shape < 0.08 ? [input] : input;
}

/** Everything a user's exception factory can see of an error tree: classes, own keys in order, values. */
function snapshot(value: unknown, seen = new Set<unknown>()): unknown {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'number' && Number.isNaN(value) ? 'NaN' : value;
  }
  if (seen.has(value)) return '[cycle]';
  seen.add(value);
  const entries = Object.keys(value).map((key) => [
    key,
    snapshot((value as Record<string, unknown>)[key], seen),
  ]);
  seen.delete(value);
  return { class: value.constructor?.name ?? null, entries };
}

async function outcome(pipe: ValidationPipe, input: unknown, metadata: ArgumentMetadata): Promise<unknown> {
  try {
    return { ok: snapshot(await pipe.transform(structuredCloneKeepingProto(input), metadata)) };
  } catch (error) {
    return { thrown: (error as { errors?: unknown }).errors ?? String(error) };
  }
}

/** A copy of a generated input in this realm, own `__proto__` keys kept. */
function structuredCloneKeepingProto(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(structuredCloneKeepingProto);
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    Object.defineProperty(copy, key, {
      value: structuredCloneKeepingProto((value as Record<string, unknown>)[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}

const capture = (errors: ValidationError[]) => ({ errors: snapshot(errors) });

/** The option sets whose flat payloads the plan takes (the others are ValidationPipe's path throughout). */
const plannedSets: ValidationPipeOptions[] = [
  {},
  { transform: true },
  { whitelist: true },
  { transform: true, whitelist: true, forbidNonWhitelisted: true },
  { transform: true, validationError: { value: false } },
  { transform: true, validationError: {} },
  // class-validator leaves the value out for anything but undefined and true (plain JavaScript may pass null).
  { transform: true, validationError: { value: null as unknown as boolean } },
];
const optionSets: ValidationPipeOptions[] = [
  ...plannedSets,
  { forbidNonWhitelisted: true, whitelist: true, validationError: { target: true } },
  // Spread over ValidationPipe's `{ target: false }`, an undefined target puts the target back in every error.
  { transform: true, validationError: { target: undefined } },
  { transform: true, groups: ['a'] },
  { transform: true, always: true },
  { transform: true, strictGroups: true },
  { transform: true, stopAtFirstError: true },
  { transform: true, dismissDefaultMessages: true },
  { transform: true, transformOptions: { enableImplicitConversion: true } },
];

const CASES_PER_SET = 30;

describe('CompiledValidationPipe hands the same ValidationErrors as ValidationPipe on generated inputs', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  for (const [index, options] of optionSets.entries()) {
    const name = JSON.stringify(options, (_key, value: unknown) =>
      value === undefined ? 'undefined' : value,
    );
    test(`options ${name}`, async () => {
      const reference = new ValidationPipe({ ...options, exceptionFactory: capture });
      const compiled = new CompiledValidationPipe({ ...options, exceptionFactory: capture });
      const transform = ValidationPipe.prototype.transform;
      let fallbacks = 0;
      jest.spyOn(ValidationPipe.prototype, 'transform').mockImplementation(function (
        this: ValidationPipe,
        ...args
      ) {
        if (this === compiled) fallbacks++;
        return transform.apply(this, args);
      });
      const next = random(0x5eed + index);
      for (const [className, { metatype, keys }] of Object.entries(classes)) {
        const metadata: ArgumentMetadata = { type: 'body', metatype: metatype as never, data: undefined };
        for (let i = 0; i < CASES_PER_SET; i++) {
          const input = generate(next, keys);
          const label = { seed: 0x5eed + index, className, i, input: snapshot(input) };
          expect([label, await outcome(compiled, input, metadata)]).toStrictEqual([
            label,
            await outcome(reference, input, metadata),
          ]);
        }
      }
      // Else the comparison would only be ValidationPipe against itself.
      const cases = CASES_PER_SET * Object.keys(classes).length;
      if (plannedSets.includes(options)) expect(cases - fallbacks).toBeGreaterThanOrEqual(20);
      else expect(fallbacks).toBe(cases);
    });
  }
});
