import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

/**
 * The parsers that read untrusted bytes, and the lowest version of each that may be
 * installed: the release that fixed the newest advisory known against it. Raise a
 * floor here (with its advisory) when a new one is published; the test fails until
 * the installed copy is upgraded.
 */
const FLOORS: { name: string; floor: string; advisory: string }[] = [
  { name: 'sharp', floor: '0.35.0', advisory: 'GHSA-f88m-g3jw-g9cj (libvips CVE-2026-33327, -33328, -35590, -35591)' },
  { name: 'pdfjs-dist', floor: '4.2.67', advisory: 'GHSA-wgrm-67xf-hhpq (CVE-2024-4367, script execution)' },
  { name: 'file-type', floor: '21.3.1', advisory: 'CVE-2026-31808 (infinite loop in the ASF parser)' },
  { name: 'music-metadata', floor: '11.12.3', advisory: 'CVE-2026-32256 (infinite loop in the ASF parser)' },
  { name: 'busboy', floor: '1.0.0', advisory: 'GHSA-wm7h-9275-46v2 (dicer crash on a malformed multipart header)' },
];

/** Whether dotted version `a` is below `b` (numeric parts; a pre-release counts as its release). */
function below(a: string, b: string): boolean {
  const parts = (v: string) => v.split(/[-+]/)[0].split('.').map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  }
  return false;
}

/**
 * Every installed copy of `name` that the product runs (production dependencies,
 * nested ones included), as npm sees the tree on disk. Test tools (an S3 server for
 * the suite) may carry older copies; they never see a user's bytes.
 */
function installed(name: string): { version: string; location: string }[] {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const out = execFileSync('npm', ['query', `#${name}.prod`], { cwd: root, encoding: 'utf8' });
  return (JSON.parse(out) as { version: string; location: string }[]).map(({ version, location }) => ({
    version,
    location,
  }));
}

test('the version comparison orders releases numerically', () => {
  assert.equal(below('0.34.5', '0.35.0'), true);
  assert.equal(below('0.35.0', '0.35.0'), false);
  assert.equal(below('0.35.10', '0.35.9'), false);
  assert.equal(below('4.10.38', '4.2.67'), false);
  assert.equal(below('11.12.2', '11.12.3'), true);
});

for (const { name, floor, advisory } of FLOORS) {
  test(`every installed ${name} is at least ${floor} (${advisory})`, () => {
    const copies = installed(name);
    assert.ok(copies.length > 0, `${name} is not installed`);
    for (const copy of copies) {
      assert.ok(!below(copy.version, floor), `${copy.location} is ${copy.version}, below ${floor}: ${advisory}`);
    }
  });
}
