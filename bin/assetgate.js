#!/usr/bin/env node
// The assetgate command line. The code lives in dist/ (built by `npm install`).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('assetgate: not built yet; run `npm run build` in the assetgate folder');
  process.exit(1);
}
const { runCli } = await import(cli.href);
// A progress line is redrawn in place, on a terminal only: scripts and pipes get none.
let drawn = false;
const progress = process.stderr.isTTY
  ? (line) => {
      process.stderr.write(`\r\x1b[2K${line.slice(0, process.stderr.columns - 1)}`);
      drawn = true;
    }
  : undefined;
const clear = () => {
  if (drawn) process.stderr.write('\r\x1b[2K');
  drawn = false;
};
process.exitCode = await runCli(process.argv.slice(2), process.env, {
  out: (line) => {
    clear();
    console.log(line);
  },
  err: (line) => {
    clear();
    console.error(line);
  },
  progress,
  stdout: process.stdout,
});
clear();
