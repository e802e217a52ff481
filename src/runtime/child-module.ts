// How Verdict forks one of its own modules as a child process (bench nodes, chaos and crash-test
// processes), whether this code runs from source through tsx (the repository's tests and npm
// scripts) or built to dist/ (the installed package, where tsx is not even installed). Modules
// are named as TypeScript imports name them, with `.js`; from source the `.ts` file is forked.

import { fileURLToPath, pathToFileURL } from 'node:url';

/** Whether this code runs from its TypeScript sources (through tsx) rather than from dist/. */
export const RUNS_FROM_SOURCE: boolean = import.meta.url.endsWith('.ts');

/**
 * The file path of the module `specifier` (e.g. `./bank-node.js`), relative to the module whose
 * `import.meta.url` is `base`: the `.ts` source when running from source, else the built `.js`.
 */
export function childModulePath(specifier: string, base: string): string {
  if (!specifier.endsWith('.js')) throw new Error(`a child module is named with .js, as an import is: ${specifier}`);
  const file = RUNS_FROM_SOURCE ? `${specifier.slice(0, -'.js'.length)}.ts` : specifier;
  return fileURLToPath(new URL(file, base));
}

/**
 * The node flags a forked child needs before `preload` (module paths from `childModulePath`,
 * loaded with `--import` in order): tsx first when running from source, nothing more when built.
 */
export function childExecArgv(preload: readonly string[] = []): string[] {
  // Resolved only from source: an installed package has no tsx, and needs none.
  const loader = RUNS_FROM_SOURCE ? ['--import', import.meta.resolve('tsx')] : [];
  return [...loader, ...preload.flatMap((path) => ['--import', pathToFileURL(path).href])];
}
