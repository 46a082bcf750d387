/**
 * Loads a module of the library from its TypeScript sources, so the scripts that start brokers work from a fresh
 * clone before the first `npm run build`, and while a build has emptied the package's dist/. Each module reached
 * from the entry is transpiled alone (no type check: `npm run build` and `npm run lint` do that) into the package's
 * .build/ folder (git-ignored), beside src/, so a path a module resolves from its own location (the launcher's
 * kafka/pom.xml) is the same as from dist/. Only what changed since the last load is transpiled again.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PACKAGE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'nest-kafka-groups');
const SRC = join(PACKAGE, 'src');
const OUT = join(PACKAGE, '.build');

const sha = (text) => createHash('sha256').update(text).digest('hex');

/** `entry`: a path under the package's src/, e.g. 'testing/kafka-local.ts'. Resolves to the module's namespace. */
export async function importLibrarySource(entry) {
  const manifestFile = join(OUT, `${entry.replaceAll('/', '.')}.json`);
  if (!isFresh(manifestFile)) transpileFrom(entry, manifestFile);
  return import(pathToFileURL(outputOf(entry)).href);
}

function outputOf(source) {
  return join(OUT, source.replace(/\.ts$/, '.js'));
}

/** The manifest lists every module of the entry's graph with the hash of the source it was transpiled from. */
function isFresh(manifestFile) {
  if (!existsSync(manifestFile)) return false;
  const sources = JSON.parse(readFileSync(manifestFile, 'utf8'));
  return Object.entries(sources).every(
    ([source, hash]) =>
      existsSync(join(SRC, source)) &&
      existsSync(outputOf(source)) &&
      sha(readFileSync(join(SRC, source))) === hash,
  );
}

function transpileFrom(entry, manifestFile) {
  const ts = createRequire(import.meta.url)('typescript');
  const compilerOptions = {
    ...readBuildOptions(ts),
    // ES modules as the package's type says; the module graph is walked here, not resolved by the compiler.
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    declaration: false,
    sourceMap: false,
  };
  const sources = {};
  const pending = [entry];
  while (pending.length > 0) {
    const source = pending.pop();
    if (source in sources) continue;
    const text = readFileSync(join(SRC, source), 'utf8');
    sources[source] = sha(text);
    const { outputText } = ts.transpileModule(text, { compilerOptions, fileName: join(SRC, source) });
    writeAtomically(outputOf(source), outputText);
    // The emitted JavaScript's imports: what runs, without the type-only ones.
    for (const { fileName } of ts.preProcessFile(outputText, true, false).importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = relative(SRC, resolve(dirname(join(SRC, source)), fileName.replace(/\.js$/, '.ts')));
      if (target.startsWith('..'))
        throw new Error(`${source} imports ${fileName}, outside the package's src/`);
      pending.push(target.split(sep).join('/'));
    }
  }
  writeAtomically(manifestFile, `${JSON.stringify(sources, null, 2)}\n`);
}

function readBuildOptions(ts) {
  const configFile = join(PACKAGE, 'tsconfig.build.json');
  const { config, error } = ts.readConfigFile(configFile, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(config, ts.sys, PACKAGE, undefined, configFile).options;
}

/** Several processes may load at once (a jest run and the CLI): each file appears whole or not at all. */
function writeAtomically(file, text) {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
}
