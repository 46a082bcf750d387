import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { KafkaClientCompatibilityError } from '../errors/kafka-client-compatibility.error.js';

/** The kafkajs release whose internals the carried fixes replace. */
export const KAFKAJS_VERSION = '2.2.4';

export type KafkajsRequire = (id: string) => any;

/** A kafkajs module the library replaces: its path in the package, the digest of 2.2.4's file, the replacement. */
export interface CarriedFix {
  readonly module: string;
  readonly sha256: string;
  /**
   * Builds the module's exports; `require` resolves from the replaced module's own folder, `released` evaluates the
   * released module (the one the digest names) for a fix that extends it rather than rewriting it.
   */
  readonly create: (require: KafkajsRequire, released: () => any) => unknown;
}

export interface LoadedKafkajs {
  readonly exports: any;
  /** Loads a module of this kafkajs instance by its path in the package (`src/...`): for specs and checks. */
  readonly internal: (module: string) => any;
  readonly root: string;
}

/**
 * Loads a private instance of the kafkajs package the library resolves (from `resolveFrom`), with the carried fixes in place of the
 * modules they replace. Each kafkajs file is evaluated here, with a `require` that serves kafkajs's own files from
 * this instance (fixed ones included) and Node's built-in modules from the host: kafkajs 2.2.4 requires nothing
 * else. Why not the CommonJS cache: it is process-wide, so it cannot hold fixes against a kafkajs another module
 * loaded first, and under Jest `require.cache` is a read-only view of Jest's registry. This instance is the same
 * wherever the library runs and leaves any other kafkajs in the process as it is.
 */
export function loadKafkajs(
  fixes: readonly CarriedFix[],
  resolveFrom: string | URL = import.meta.url,
): LoadedKafkajs {
  const host = createRequire(resolveFrom);
  const packageJson = host.resolve('kafkajs/package.json');
  const root = path.dirname(packageJson);
  const version = String((JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: unknown }).version);
  if (version !== KAFKAJS_VERSION) {
    throw new KafkaClientCompatibilityError(
      version,
      packageJson,
      `the library carries fixes for kafkajs ${KAFKAJS_VERSION} only; install exactly that version`,
    );
  }

  const replacements = new Map<string, CarriedFix>();
  for (const fix of fixes) {
    const file = path.join(root, fix.module);
    const digest = createHash('sha256').update(readFileSync(file)).digest('hex');
    if (digest !== fix.sha256) {
      throw new KafkaClientCompatibilityError(
        version,
        fix.module,
        'the file differs from the released one the library replaces (patched or modified in node_modules?); ' +
          `reinstall kafkajs: rm -rf ${root} && npm install`,
      );
    }
    replacements.set(file, fix);
  }

  const modules = new Map<string, { exports: unknown }>();

  const load = (file: string): unknown => {
    const cached = modules.get(file);
    if (cached) return cached.exports;
    const module = { exports: {} as unknown };
    modules.set(file, module);
    const dir = path.dirname(file);
    const fix = replacements.get(file);
    if (fix) {
      module.exports = fix.create(requireFrom(dir), () => evaluateFile(file));
    } else if (file.endsWith('.json')) {
      module.exports = JSON.parse(readFileSync(file, 'utf8'));
    } else {
      module.exports = evaluateFile(file, module);
    }
    return module.exports;
  };

  const evaluateFile = (file: string, module = { exports: {} as unknown }): unknown => {
    const dir = path.dirname(file);
    // Indirect eval compiles in the realm that runs this library (Jest's sandbox under Jest), and keeps the
    // file's line numbers in stack traces (the wrapper opens on the first line).
    const source = readFileSync(file, 'utf8');
    const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})\n//# sourceURL=${pathToFileURL(file).href}`;
    const evaluate = eval;
    const compiled = evaluate(wrapper) as (...args: unknown[]) => void;
    compiled.call(module.exports, module.exports, requireFrom(dir), module, file, dir);
    return module.exports;
  };

  const requireFrom = (dir: string): KafkajsRequire => {
    // kafkajs requires some modules inside code that runs per request (each Fetch requires its version's encoder
    // and decoder): each id is resolved once, not with a path resolution and file checks on every request.
    const resolved = new Map<string, string>();
    return (id: string) => {
      let file = resolved.get(id);
      if (file === undefined) {
        if (isBuiltin(id)) return host(id);
        if (!id.startsWith('./') && !id.startsWith('../')) {
          throw new KafkaClientCompatibilityError(
            version,
            id,
            `required from ${dir}: not a kafkajs file nor a Node module`,
          );
        }
        file = resolveFile(path.resolve(dir, id));
        resolved.set(id, file);
      }
      return load(file);
    };
  };

  const resolveFile = (request: string): string => {
    for (const candidate of [request, `${request}.js`, `${request}.json`, path.join(request, 'index.js')]) {
      if (statSync(candidate, { throwIfNoEntry: false })?.isFile()) return candidate;
    }
    throw new KafkaClientCompatibilityError(version, request, 'module not found in the installed kafkajs');
  };

  // kafkajs requires some modules (the fetch decoders among them) only when first used: a fix is keyed by its
  // file, so it is in place whenever that happens.
  const main = load(path.join(root, 'index.js'));
  return { exports: main, internal: (module) => load(resolveFile(path.join(root, module))), root };
}
