import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { freePort, tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every process whose parent chain leads to `pid`, read from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command may hold spaces and parentheses: fields start after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // it ended meanwhile
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, of] of parents) if (of === parent) (found.push(child), walk(child));
  };
  walk(pid);
  return found;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // ESRCH: no such process
  }
};

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

test('`npm start` serves the build and SIGTERM to npm stops the server: port closed, no process left', async () => {
  const data = tempDir();
  const port = await freePort();
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: data.dir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout!.on('data', (chunk) => (output += chunk));
  npm.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  let processes: number[] = [];
  try {
    let healthy = false;
    for (let i = 0; i < 600 && !healthy && npm.exitCode === null; i++) {
      healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (!healthy) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(healthy, `the server did not answer /healthz:\n${output}`);
    processes = descendants(npm.pid!);
    assert.ok(processes.length > 0, 'npm runs the server as a child');

    npm.kill('SIGTERM');
    // npm waits for its script; a server that ignored the signal would hold it, so the wait is bounded.
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    for (let i = 0; i < 100 && (await portOpen(port)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await portOpen(port), false, 'the port is closed');
    const left = processes.filter(alive);
    assert.deepEqual(left, [], `no server process outlives npm:\n${output}`);
  } finally {
    if (npm.exitCode === null) npm.kill('SIGKILL');
    for (const pid of processes.filter(alive)) process.kill(pid, 'SIGKILL');
    npm.stdout!.destroy();
    npm.stderr!.destroy();
    data.remove();
  }
});
