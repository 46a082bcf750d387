/**
 * Nest in plain ESM JavaScript: Node has no decorator syntax, so the benchmark applies decorators the way
 * TypeScript's emitted `__decorate` does (last decorator first), with the `design:paramtypes` that
 * `emitDecoratorMetadata` writes for a decorated method (the library refuses a handler without it). No constructor
 * parameter types are written: the benchmark controllers inject nothing.
 */
import 'reflect-metadata';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { libraryEntry } from './settings.mjs';

export function decorateClass(target, decorators) {
  let result = target;
  for (const decorator of [...decorators].reverse()) result = decorator(result) ?? result;
  return result;
}

/**
 * Applies `decorators` and the parameter decorators `params` ([index, decorator] pairs) to method `name`, and writes
 * its `design:paramtypes`: `paramTypes`, else `Object` for each parameter (what TypeScript emits for an interface or
 * `any`).
 */
export function decorateMethod(target, name, decorators, params = [], paramTypes) {
  const proto = target.prototype;
  const types = paramTypes ?? Array.from({ length: proto[name].length }, () => Object);
  Reflect.defineMetadata('design:paramtypes', types, proto, name);
  let descriptor = Object.getOwnPropertyDescriptor(proto, name);
  // TypeScript applies parameter decorators (as __param) after the method decorators listed above them.
  const all = [
    ...decorators,
    ...params.map(
      ([index, decorator]) =>
        (t, k) =>
          decorator(t, k, index),
    ),
  ];
  for (const decorator of all.reverse()) descriptor = decorator(proto, name, descriptor) ?? descriptor;
  Object.defineProperty(proto, name, descriptor);
}

/** The compiled library: the package by its name (built by `npm run build`), or the build at BENCH_DIST. */
export function importLibrary(env = process.env) {
  return env.BENCH_DIST ? import(pathToFileURL(libraryEntry(env)).href) : import('nest-kafka-groups');
}

/** The library's `nest-kafka-groups/validation` entry, from the same build as importLibrary. */
export function importLibraryValidation(env = process.env) {
  return env.BENCH_DIST
    ? import(pathToFileURL(join(dirname(libraryEntry(env)), 'validation', 'index.js')).href)
    : import('nest-kafka-groups/validation');
}

/**
 * The library's kafkajs seam (its `client/kafkajs.js`, beside the entry): the same module instance the library
 * uses, so a latency run can watch the consumers it creates (bench/lib/latency-probe.mjs).
 */
export function importLibraryClient(env = process.env) {
  return import(pathToFileURL(join(dirname(libraryEntry(env)), 'client', 'kafkajs.js')).href);
}

export const NEST_LOG_LEVELS = ['error', 'warn'];
