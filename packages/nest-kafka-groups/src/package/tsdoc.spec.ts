import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * Every symbol the package exports (from each entry point of its `exports` map), and every public member of an
 * exported class or interface, carries a TSDoc comment: what an editor shows a user is what the package documents.
 */
const SRC = join(dirname(fileURLToPath(import.meta.url)), '..');
const { exports } = JSON.parse(readFileSync(join(SRC, '..', 'package.json'), 'utf8')) as {
  exports: Record<string, string | { default: string }>;
};
/** The sources of the `exports` map's entry points: ./dist/x/index.js is src/x/index.ts. */
const ENTRY_POINTS = Object.values(exports)
  .map((target) => (typeof target === 'string' ? target : target.default))
  .filter((target) => target.startsWith('./dist/'))
  .map((target) => join(SRC, target.slice('./dist/'.length).replace(/\.js$/, '.ts')));

function documented(declaration: ts.Declaration): boolean {
  // A variable's comment sits on its statement; a destructured export's on the whole statement too.
  let node: ts.Node = declaration;
  while (node && !ts.isSourceFile(node)) {
    if (ts.getJSDocCommentsAndTags(node).length > 0) return true;
    if (ts.isVariableStatement(node) || ts.isClassDeclaration(node) || ts.isFunctionDeclaration(node)) break;
    node = node.parent;
  }
  return false;
}

function isPublicMember(member: ts.Declaration): boolean {
  const flags = ts.getCombinedModifierFlags(member);
  if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) return false;
  if (ts.isConstructorDeclaration(member)) return false;
  const name = ts.getNameOfDeclaration(member);
  if (name && ts.isPrivateIdentifier(name)) return false;
  return !ts.getJSDocTags(member).some((tag) => tag.tagName.text === 'internal');
}

/** Members a class gets from a framework interface it implements (Nest's lifecycle hooks, terminus, ...). */
const HOOKS = new Set([
  'onModuleInit',
  'onModuleDestroy',
  'onApplicationBootstrap',
  'beforeApplicationShutdown',
  'onApplicationShutdown',
  'listen',
  'close',
  'on',
  'unwrap',
  'addHandler',
  'transportId',
  'setOnProcessingStartHook',
  'setOnProcessingEndHook',
  'name',
  'message',
  'stack',
  'cause',
]);

function undocumented(): string[] {
  const program = ts.createProgram(ENTRY_POINTS, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2023,
    experimentalDecorators: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const missing = new Set<string>();
  for (const entry of ENTRY_POINTS) {
    const file = program.getSourceFile(entry)!;
    const moduleSymbol = checker.getSymbolAtLocation(file)!;
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declarations = symbol.declarations ?? [];
      const where = (d: ts.Declaration) => relative(SRC, d.getSourceFile().fileName);
      if (declarations.length === 0 || !declarations.some(documented)) {
        missing.add(`${exported.name} (${declarations[0] ? where(declarations[0]) : '?'})`);
      }
      for (const declaration of declarations) {
        if (!ts.isClassDeclaration(declaration) && !ts.isInterfaceDeclaration(declaration)) continue;
        for (const member of declaration.members) {
          const name = member.name && ts.isIdentifier(member.name) ? member.name.text : undefined;
          if (!name || HOOKS.has(name) || !isPublicMember(member) || documented(member)) continue;
          missing.add(`${exported.name}.${name} (${where(declaration)})`);
        }
      }
    }
  }
  return [...missing].sort();
}

describe('TSDoc', () => {
  test('the entry points are the exports map', () => {
    expect(ENTRY_POINTS.map((file) => relative(SRC, file)).sort()).toContain('index.ts');
    expect(ENTRY_POINTS.length).toBeGreaterThanOrEqual(4);
  });

  test('on every exported symbol and every public member of an exported class or interface', () => {
    expect(undocumented()).toEqual([]);
  }, 60_000);
});
