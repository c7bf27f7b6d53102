import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

/** semver (npm's own range logic) as installed with the product's dependencies. */
const semver = createRequire(import.meta.url)('semver') as {
  subset(range: string, within: string): boolean;
};

interface LockedPackage {
  version?: string;
  engines?: { node?: string };
  os?: string[];
  cpu?: string[];
}

const read = (file: string) => JSON.parse(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'));
const manifest = read('package.json') as { engines: { node: string }; allowScripts: Record<string, boolean> };
const lock = read('package-lock.json') as { packages: Record<string, LockedPackage> };

/** Whether a platform build (sharp's, esbuild's) is one npm would install on this machine. */
function installsHere(entry: LockedPackage): boolean {
  const fits = (list: string[] | undefined, value: string) =>
    !list || list.some((item) => (item.startsWith('!') ? item.slice(1) !== value : item === value));
  return fits(entry.os, process.platform) && fits(entry.cpu, process.arch);
}

test('every locked dependency supports every Node the product names in engines (no EBADENGINE)', () => {
  const ours = manifest.engines.node;
  assert.ok(semver.subset(process.version, ours), `this Node (${process.version}) is outside engines ${ours}`);
  const unsupported = Object.entries(lock.packages)
    .filter(([name, entry]) => name !== '' && entry.engines?.node && installsHere(entry))
    .filter(([, entry]) => !semver.subset(ours, entry.engines!.node!))
    .map(
      ([name, entry]) => `${name.replace(/^.*node_modules\//, '')}@${entry.version} wants node ${entry.engines!.node}`,
    );
  assert.deepEqual(unsupported, []);
});

test('every dependency with an install script is decided in allowScripts (no install-scripts notice)', () => {
  const withScripts = Object.entries(lock.packages)
    .filter(([name, entry]) => name !== '' && (entry as { hasInstallScript?: boolean }).hasInstallScript)
    .map(([name]) => name.replace(/^.*node_modules\//, ''));
  const undecided = [...new Set(withScripts)].filter((name) => !(name in manifest.allowScripts));
  assert.deepEqual(undecided, []);
});
