#!/usr/bin/env node
// The `verdict` command: plain node running the built CLI from dist/. No loader and no wrapper
// process, so the process a shell or npx starts is the CLI itself and SIGINT/SIGTERM reach it
// directly. In a clone of the repository, `npm ci` builds dist/ (the `prepare` script).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('verdict: the built CLI (dist/cli/main.js) is missing: run `npm run build` first');
  process.exit(1);
}
await import(main.href);
