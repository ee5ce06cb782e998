/**
 * The layer graph (design.md, principle 3): tpm ← {client, simulator, attest}
 * ← {service, agent} ← {cli, web}. Siblings never import each other, and the
 * TPM stack never loads the service's dependencies. Every import of every
 * source file is read with the TypeScript compiler's pre-processor, which
 * sees static imports, re-exports, dynamic `import()` and `require`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

type Layer = 'tpm' | 'client' | 'simulator' | 'attest' | 'service' | 'agent' | 'cli' | 'web';

/** Which layers each layer may import (itself included). */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  tpm: ['tpm'],
  client: ['client', 'tpm'],
  simulator: ['simulator', 'tpm'],
  attest: ['attest', 'tpm'],
  service: ['service', 'client', 'simulator', 'attest', 'tpm'],
  agent: ['agent', 'client', 'simulator', 'attest', 'tpm'],
  cli: ['cli', 'service', 'agent', 'client', 'simulator', 'attest', 'tpm'],
  web: ['web', 'service', 'attest', 'tpm'],
};

/** Packages the TPM stack may load: Node itself and certificate/curve libraries. */
const STACK_PACKAGES = /^(node:|@peculiar\/|pkijs$|asn1js$|@noble\/curves)/;
const STACK: readonly Layer[] = ['tpm', 'client', 'simulator', 'attest'];

function layerOf(file: string): Layer | undefined {
  const rel = relative(ROOT, file).split(sep);
  if (rel[0] === 'web') return 'web';
  if (rel[0] === 'src' && rel[1] !== undefined && rel[1] in ALLOWED) return rel[1] as Layer;
  return undefined;
}

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(m?[jt]sx?)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

export function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** Every edge that breaks the graph, as "from → to (specifier)". */
export function violations(files: readonly string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    if (from === undefined) continue;
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) {
        const to = layerOf(resolve(dirname(file), spec));
        if (to === undefined || !ALLOWED[from].includes(to)) {
          out.push(`${relative(ROOT, file)}: ${from} → ${to ?? 'outside the layers'} (${spec})`);
        }
      } else if (spec.startsWith('trustroot/')) {
        out.push(`${relative(ROOT, file)}: imports its own package by name (${spec}); use a relative path`);
      } else if (STACK.includes(from) && !STACK_PACKAGES.test(spec)) {
        out.push(`${relative(ROOT, file)}: the TPM stack loads '${spec}'`);
      }
    }
  }
  return out;
}

describe('layer graph', () => {
  const files = [...sourceFiles(join(ROOT, 'src')), ...sourceFiles(join(ROOT, 'web'))];

  it('finds the sources', () => {
    expect(files.some((f) => layerOf(f) === 'tpm')).toBe(true);
  });

  it('has no edge outside the allowed graph', () => {
    expect(violations(files)).toEqual([]);
  });

  it('detects forbidden edges (the checker itself can fail)', () => {
    const fake = (layer: string, name: string) => join(ROOT, 'src', layer, name);
    const check = (file: string, spec: string) => {
      const from = layerOf(file)!;
      const to = layerOf(resolve(dirname(file), spec));
      return to !== undefined && ALLOWED[from].includes(to);
    };
    expect(check(fake('client', 'a.ts'), '../tpm/frame.js')).toBe(true);
    expect(check(fake('client', 'a.ts'), '../simulator/engine.js')).toBe(false);
    expect(check(fake('attest', 'a.ts'), '../client/tpm.js')).toBe(false);
    expect(check(fake('tpm', 'a.ts'), '../attest/quote.js')).toBe(false);
    expect(check(fake('service', 'a.ts'), '../cli/main.js')).toBe(false);
    expect(check(fake('agent', 'a.ts'), '../service/x.js')).toBe(false);
    expect(importsOf(join(ROOT, 'test', 'layering.test.ts'))).toContain('typescript');
  });

  it('declares one package export per layer that exists, each pointing at built output', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> };
    for (const layer of ['tpm', 'client', 'simulator', 'attest', 'service', 'agent'] as const) {
      const index = join(ROOT, 'src', layer, 'index.ts');
      let exists = true;
      try {
        statSync(index);
      } catch {
        exists = false;
      }
      if (exists) expect(pkg.exports[`./${layer}`]?.default).toBe(`./dist/src/${layer}/index.js`);
    }
    expect(Object.keys(pkg.exports)).not.toContain('.');
  });
});
