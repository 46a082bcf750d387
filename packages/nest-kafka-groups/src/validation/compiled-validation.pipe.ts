import {
  type ArgumentMetadata,
  Injectable,
  Logger,
  Optional,
  ValidationPipe,
  type ValidationPipeOptions,
} from '@nestjs/common';
import { classToPlain, plainToInstance } from 'class-transformer';
import {
  getMetadataStorage,
  type ValidationArguments,
  ValidationError,
  ValidationTypes,
} from 'class-validator';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The files whose behaviour the plan reproduces or reads, as they were when it was checked against them (the
 * differential specs): class-validator's executor, message formatter and metadata storage, class-transformer's
 * plainToInstance and metadata storage, Nest's ValidationPipe. Any other content (an upgrade, a patch) leaves every
 * class to ValidationPipe's own path, with a warning, until the plan is checked against it and these are updated.
 */
export const PINNED_INTERNALS: readonly { module: string; file: string; sha256: string }[] = [
  {
    module: 'class-validator',
    file: 'validation/ValidationExecutor.js',
    sha256: '8787073e5512449e187b2f3deb4ec2fdf7df89505c50909baf392abea41beee1',
  },
  {
    module: 'class-validator',
    file: 'validation/ValidationUtils.js',
    sha256: '5116f5e8bc3defcdadc1b72cd7b7b4bdd8b0432981eb8be74d1ce74d297e9876',
  },
  {
    module: 'class-validator',
    file: 'metadata/MetadataStorage.js',
    sha256: '8428df66b6bf3021e346b29f58389f3dbcf5a44feb7c6a4cd5c0c896d408ee9f',
  },
  {
    module: 'class-transformer',
    file: 'TransformOperationExecutor.js',
    sha256: 'ee01fa05de8a5eb26e23f88095e1ccbd0d1da2c13b83e6786199f85861af9d81',
  },
  {
    module: 'class-transformer',
    file: 'MetadataStorage.js',
    sha256: 'b872d8635a61a87db4d58f82ccc2cb207ba5ae93d1f090b801690391577f9f48',
  },
  {
    module: 'class-transformer',
    file: 'storage.js',
    sha256: '2fd860e8b86457a34eb276a576fa7ed754c89e6603f759590a9b3c3771daa0b8',
  },
  {
    module: '@nestjs/common',
    file: 'pipes/validation.pipe.js',
    sha256: '462063a5fdea4cb9207ec02e171ff74f00e121ed6678b31741f3b520c733cefa',
  },
];

const require = createRequire(import.meta.url);

/** The pinned files that are missing or differ, each as `module/file (reason)`; none when all are as pinned. */
export function changedInternals(pins: typeof PINNED_INTERNALS = PINNED_INTERNALS): string[] {
  const changed: string[] = [];
  for (const { module, file, sha256 } of pins) {
    try {
      const path = join(dirname(require.resolve(module)), file);
      const digest = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (digest !== sha256) changed.push(`${module}/${file} (content differs)`);
    } catch (error) {
      changed.push(`${module}/${file} (${(error as Error).message.split('\n')[0]})`);
    }
  }
  return changed;
}

const CHANGED = changedInternals();

/**
 * The two parts of class-validator and class-transformer this pipe reads that their entry points do not export:
 * class-validator's message formatter (so messages come out exactly as class-validator writes them) and
 * class-transformer's metadata storage (to know that a class has no transformation rules). Loaded from the same
 * package directories as the entry points, so they are the same module instances; only when pinned as checked.
 */
const internals =
  CHANGED.length > 0
    ? undefined
    : {
        ValidationUtils: (
          require(join(dirname(require.resolve('class-validator')), 'validation/ValidationUtils.js')) as {
            ValidationUtils: {
              replaceMessageSpecialTokens(message: unknown, args: ValidationArguments): string;
            };
          }
        ).ValidationUtils,
        defaultMetadataStorage: (
          require(join(dirname(require.resolve('class-transformer')), 'storage.js')) as {
            defaultMetadataStorage: Record<string, unknown>;
          }
        ).defaultMetadataStorage,
      };
let warned = false;

/** class-transformer's maps of rules by class: a class in none of them (nor its ancestors) is copied key by key. */
const TRANSFORMER_MAPS = ['_typeMetadatas', '_transformMetadatas', '_exposeMetadatas', '_excludeMetadatas'];

/** Validator options the plan reproduces; any other set option leaves the class to ValidationPipe. */
const PLANNED_OPTIONS = new Set([
  'forbidUnknownValues',
  'whitelist',
  'forbidNonWhitelisted',
  'validationError',
]);

/** ValidationPipe's own steps the plan stands for: a subclass that overrides one keeps ValidationPipe's path. */
const PIPE_STEPS = [
  'validate',
  'toValidate',
  'toEmptyIfNil',
  'closeArrayGaps',
  'stripProtoKeys',
  'isPrimitive',
  'isBinary',
  'findNestedBinaryValues',
] as const;

/** A class-validator rule as its metadata storage holds it (the fields this pipe reads). */
interface RuleMetadata {
  type: string;
  propertyName: string;
  constraints: unknown[];
  constraintCls: Function;
  message?: string | ((args: ValidationArguments) => string);
  each?: boolean;
  context?: unknown;
  validateIf?: (object: object, value: unknown) => boolean;
}

/** A constraint of a rule (class-validator's ConstraintMetadata). */
interface ConstraintMetadata {
  name?: string;
  readonly instance: {
    validate(value: unknown, args: ValidationArguments): unknown;
    defaultMessage?(args: ValidationArguments): string;
  };
}

interface PlannedRule {
  metadata: RuleMetadata;
  constraints: ConstraintMetadata[];
}

/** One property's rules, split the way class-validator's executor splits them. */
interface PlannedProperty {
  name: string;
  conditions: RuleMetadata[];
  defined: PlannedRule[];
  custom: PlannedRule[];
}

/** A class's rules, read once from class-validator's storage in the order its executor would apply them. */
interface Plan {
  metatype: new () => object;
  properties: PlannedProperty[];
  allowed: Set<string>;
}

const NOT_PLANNED = null;

/**
 * ValidationPipe with the same options, the same DTO classes and decorators and the same results, faster for the
 * common case: a class whose rules are class-validator property rules (built-in or `registerDecorator`
 * constraints, `@IsOptional`, `@ValidateIf`, `@Allow`), without class-transformer rules, and a payload that is a
 * plain object of primitive values (a JSON object without nested objects or arrays). For such a class the rules
 * are read once from class-validator's metadata storage, and each value is copied into an instance and checked
 * with the very same constraint objects and messages, without class-validator's and class-transformer's lookups
 * per call. The result is what ValidationPipe returns (the instance, or the plain copy without `transform`), or the
 * exception its `exceptionFactory` makes of the same `ValidationError`s. Everything else (nested or array values,
 * `@ValidateNested`, `@Type`, `@Transform`, groups, contexts, options beyond
 * `whitelist`, `forbidNonWhitelisted`, `forbidUnknownValues` and `validationError`, custom validator or transformer
 * packages, a subclass overriding ValidationPipe's steps) takes ValidationPipe's own path, unchanged.
 *
 * Rules are read when a class is first validated: a rule registered for that class afterwards is not seen.
 */
@Injectable()
export class CompiledValidationPipe extends ValidationPipe {
  private readonly plans = new WeakMap<Function, Plan | typeof NOT_PLANNED>();
  private readonly plannable: boolean;
  private readonly includeValue: boolean;
  private readonly transformToPlain: boolean;
  /**
   * Whether ValidationPipe loaded the same class-validator and class-transformer as this module imports (it loads
   * them itself, asynchronously): with another copy its rules and errors would not be the ones planned here.
   */
  private samePackages: boolean | Promise<boolean> | undefined;

  constructor(@Optional() options?: ValidationPipeOptions) {
    super(options);
    const { validatorPackage, transformerPackage, transformOptions } = options ?? {};
    const { validationError } = this.validatorOptions;
    if (CHANGED.length > 0 && !warned) {
      warned = true;
      new Logger(CompiledValidationPipe.name).warn(
        `CompiledValidationPipe validates through ValidationPipe's own path: ${CHANGED.join(', ')} ` +
          'not as the plan was checked against (another version installed); update nest-kafka-groups',
      );
    }
    this.plannable =
      internals !== undefined &&
      validatorPackage === undefined &&
      transformerPackage === undefined &&
      transformOptions === undefined &&
      Object.entries(this.validatorOptions).every(
        ([key, value]) => value === undefined || PLANNED_OPTIONS.has(key),
      ) &&
      // ValidationPipe spreads these over `{ target: false }`: a `target` key set to anything but false (undefined
      // too) makes class-validator put the target in every error, which the plan does not.
      (validationError === undefined ||
        ((!Object.hasOwn(validationError, 'target') || validationError.target === false) &&
          Object.keys(validationError).every((key) => key === 'target' || key === 'value')));
    // class-validator's own test: the value is left out for anything but undefined and true.
    this.includeValue = validationError?.value === undefined || validationError.value === true;
    // As ValidationPipe decides whether a value it does not transform is returned as a plain copy.
    this.transformToPlain = Object.keys(this.validatorOptions).length > 1;
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const metatype = this.expectedType ?? metadata.metatype;
    if (!this.plannable || typeof metatype !== 'function' || !isFlatObject(value)) {
      return super.transform(value, metadata);
    }
    if (this.samePackages !== true) {
      this.samePackages ??= Promise.all([this.loadValidator(), this.loadTransformer()]).then(
        ([validator, transformer]) =>
          (this.samePackages =
            (validator as { getMetadataStorage?: unknown }).getMetadataStorage === getMetadataStorage &&
            transformer.plainToInstance === plainToInstance),
      );
      if (!(await this.samePackages)) return super.transform(value, metadata);
    }
    if (!this.toValidate(this.expectedType ? { ...metadata, metatype } : metadata)) {
      return super.transform(value, metadata);
    }
    let plan = this.plans.get(metatype);
    if (plan === undefined) {
      plan = this.planFor(metatype as new () => object);
      this.plans.set(metatype, plan);
    }
    if (plan === NOT_PLANNED) return super.transform(value, metadata);

    const entity = instantiate(plan.metatype, value);
    // A constructor that sets `constructor` on its instances: ValidationPipe has a stand-in path for that.
    if (entity.constructor !== plan.metatype) return super.transform(value, metadata);
    const errors = await this.check(plan, entity);
    if (errors.length > 0) throw await this.exceptionFactory(errors);
    if (this.isTransformEnabled) return entity;
    return this.transformToPlain ? classToPlain(entity, this.transformOptions) : value;
  }

  /** The class's plan, or NOT_PLANNED when any of its rules (or ancestors' rules) is beyond what the plan does. */
  private planFor(metatype: new () => object): Plan | typeof NOT_PLANNED {
    if (metatype.prototype?.constructor !== metatype) return NOT_PLANNED;
    if (PIPE_STEPS.some((step) => this[step] !== ValidationPipe.prototype[step])) return NOT_PLANNED;
    if (!hasNoTransformerRules(metatype)) return NOT_PLANNED;
    const storage = getMetadataStorage();
    const rules = storage.getTargetValidationMetadatas(
      metatype,
      undefined as unknown as string,
      false,
      false,
      undefined,
    ) as unknown as RuleMetadata[];
    // An empty class is ValidationPipe's (and forbidUnknownValues') business.
    if (rules.length === 0) return NOT_PLANNED;
    const grouped = storage.groupByPropertyName(rules as never) as unknown as Record<string, RuleMetadata[]>;
    const properties: PlannedProperty[] = [];
    for (const [name, metadatas] of Object.entries(grouped)) {
      const property: PlannedProperty = { name, conditions: [], defined: [], custom: [] };
      for (const metadata of metadatas) {
        // `each` only differs from a single check on arrays, sets and maps, which are never planned.
        if (metadata.context !== undefined) return NOT_PLANNED;
        if (metadata.type === ValidationTypes.WHITELIST) continue;
        if (metadata.type === ValidationTypes.CONDITIONAL_VALIDATION) {
          property.conditions.push(metadata);
          continue;
        }
        if (
          metadata.type !== ValidationTypes.IS_DEFINED &&
          metadata.type !== ValidationTypes.CUSTOM_VALIDATION
        ) {
          return NOT_PLANNED;
        }
        const constraints = storage.getTargetValidatorConstraints(
          metadata.constraintCls,
        ) as unknown as ConstraintMetadata[];
        (metadata.type === ValidationTypes.IS_DEFINED ? property.defined : property.custom).push({
          metadata,
          constraints,
        });
      }
      properties.push(property);
    }
    return { metatype, properties, allowed: new Set(Object.keys(grouped)) };
  }

  /**
   * class-validator's executor for the planned rules: whitelist errors first, then one error per property with a
   * failed constraint, in the order of the rules, with the messages class-validator writes.
   */
  private check(plan: Plan, entity: Record<string, unknown>): ValidationError[] | Promise<ValidationError[]> {
    const errors: ValidationError[] = [];
    if (this.validatorOptions.whitelist) {
      for (const key of Object.keys(entity)) {
        if (plan.allowed.has(key)) continue;
        if (!this.validatorOptions.forbidNonWhitelisted) {
          delete entity[key];
          continue;
        }
        const error = this.errorFor(entity[key], key);
        error.constraints = { [ValidationTypes.WHITELIST]: `property ${key} should not exist` };
        error.children = undefined;
        errors.push(error);
      }
    }
    const found: (ValidationError | undefined)[] = new Array(plan.properties.length);
    let pending: PromiseLike<void>[] | undefined;
    const targetName = (entity.constructor ? entity.constructor.name : undefined) as string;
    const fail = (at: number, value: unknown, rule: PlannedRule, constraint: ConstraintMetadata) => {
      const error = (found[at] ??= this.errorFor(value, plan.properties[at].name));
      const [type, message] = this.messageOf(entity, targetName, value, rule.metadata, constraint);
      error.constraints![type] = message;
    };
    const run = (at: number, value: unknown, rules: PlannedRule[]) => {
      for (const rule of rules) {
        const { metadata } = rule;
        if (metadata.validateIf && !metadata.validateIf(entity, value)) continue;
        for (const constraint of rule.constraints) {
          const args: ValidationArguments = {
            targetName,
            property: metadata.propertyName,
            object: entity,
            value,
            constraints: metadata.constraints,
          };
          const valid = constraint.instance.validate(value, args);
          if (isPromise(valid)) {
            (pending ??= []).push(
              valid.then((resolved) => {
                if (!resolved) fail(at, value, rule, constraint);
              }),
            );
          } else if (!valid) {
            fail(at, value, rule, constraint);
          }
        }
      }
    };
    for (let at = 0; at < plan.properties.length; at++) {
      const property = plan.properties[at];
      const value = entity[property.name];
      // Every condition is evaluated, as class-validator does, before any rule runs.
      let canValidate = true;
      for (const condition of property.conditions) {
        canValidate =
          (condition.constraints[0] as (o: object, v: unknown) => boolean)(entity, value) && canValidate;
      }
      if (!canValidate) continue;
      run(at, value, property.defined);
      run(at, value, property.custom);
    }
    const collect = () => {
      for (const error of found) if (error) errors.push(error);
      return errors;
    };
    return pending ? Promise.all(pending).then(collect) : collect();
  }

  /** class-validator's error for a property (without the target, as ValidationPipe asks). */
  private errorFor(value: unknown, property: string): ValidationError {
    const error = new ValidationError();
    if (this.includeValue) error.value = value;
    error.property = property;
    error.children = [];
    error.constraints = {};
    return error;
  }

  /** class-validator's constraint name and message for a failed constraint (its createValidationError). */
  private messageOf(
    entity: object,
    targetName: string,
    value: unknown,
    metadata: RuleMetadata,
    constraint: ConstraintMetadata,
  ): [string, string] {
    const args: ValidationArguments = {
      targetName,
      property: metadata.propertyName,
      object: entity,
      value,
      constraints: metadata.constraints,
    };
    let message: unknown = metadata.message || '';
    // dismissDefaultMessages is beyond the plan, so a rule without a message gets its constraint's default.
    if (!metadata.message) {
      const { instance } = constraint;
      if (instance.defaultMessage instanceof Function) message = instance.defaultMessage(args);
    }
    return [
      constraint.name ? constraint.name : metadata.type,
      internals!.ValidationUtils.replaceMessageSpecialTokens(message, args),
    ];
  }
}

/**
 * A plain object whose values are all primitives, with none of the keys ValidationPipe strips: for such a value
 * ValidationPipe's gap closing and prototype-key stripping change nothing and find no binary value.
 */
function isFlatObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype)
    return false;
  for (const key in value) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') return false;
    const item = (value as Record<string, unknown>)[key];
    if (typeof item === 'object' ? item !== null : typeof item === 'function') return false;
  }
  return true;
}

/**
 * class-transformer's plainToInstance for a class without transformation rules and a flat value: a new instance,
 * then each key of the value copied, except one the class's prototype has a getter without setter for, or that the
 * new instance holds a function under.
 */
function instantiate(metatype: new () => object, value: Record<string, unknown>): Record<string, unknown> {
  const entity = new metatype() as Record<string, unknown>;
  const prototype = metatype.prototype as object;
  for (const key of Object.keys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(prototype, key);
    if ((descriptor && !descriptor.set) || entity[key] instanceof Function) continue;
    entity[key] = value[key];
  }
  return entity;
}

/** Whether neither the class nor an ancestor has a class-transformer rule (`@Type`, `@Transform`, `@Expose`, `@Exclude`). */
function hasNoTransformerRules(metatype: Function): boolean {
  const maps = TRANSFORMER_MAPS.map((name) => internals!.defaultMetadataStorage[name]);
  if (!maps.every((map) => map instanceof Map)) return false;
  for (let type: unknown = metatype; typeof type === 'function' && type !== Function.prototype;) {
    if ((maps as Map<unknown, unknown>[]).some((map) => map.has(type))) return false;
    type = Object.getPrototypeOf(type);
  }
  return true;
}

/** class-validator's test of a constraint's result. */
function isPromise(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
  );
}
