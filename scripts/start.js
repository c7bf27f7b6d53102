// `npm start`: serves what `npm install` built, building first only when the build is missing
// or older than its sources. The server runs in this very process (the script line `exec`s
// node), so a signal sent to `npm start` reaches the server and stops it.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Written after each build this script runs; `npm run build` is behind it when a source is newer. */
const STAMP = path.join(ROOT, 'dist/.built');
const OUTPUTS = ['dist/main.js', 'dist/cli.js', 'dist/web/browser.js'];
const SOURCES = ['src', 'web', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];

/** The newest modification time under `entry` (a file, or a folder walked whole). */
function newest(entry) {
  const stat = statSync(entry, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(entry).map((name) => newest(path.join(entry, name))));
}

/** Why a build is needed, or null when dist/ is complete and newer than every source. */
function staleness() {
  const missing = OUTPUTS.find((file) => !statSync(path.join(ROOT, file), { throwIfNoEntry: false }));
  if (missing) return `${missing} is missing`;
  // tsc rewrites only what changed: the stamp of the last build here, else the oldest output.
  const built = newest(STAMP) || Math.min(...OUTPUTS.map((file) => newest(path.join(ROOT, file))));
  const changed = SOURCES.find((source) => newest(path.join(ROOT, source)) > built);
  return changed ? `${changed} changed since the last build` : null;
}

const reason = staleness();
if (reason) {
  console.error(`assetgate: building (${reason})`);
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  for (const project of ['tsconfig.build.json', 'web/tsconfig.json']) {
    execFileSync(process.execPath, [tsc, '-p', project], { cwd: ROOT, stdio: 'inherit' });
  }
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}
await import(new URL('../dist/main.js', import.meta.url).href);
