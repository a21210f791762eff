import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../support/wait';
import { pauseFor } from './pause';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** A child that prints a tick every 20 ms; the test reads the ticks it printed. */
const ticker = (): { child: ChildProcess; ticks: () => number } => {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => process.stdout.write("."), 20)'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let ticks = 0;
  child.stdout.on('data', (chunk: Buffer) => (ticks += chunk.length));
  return { child, ticks: () => ticks };
};

/** The process state letter of `pid` (T = stopped), from /proc. */
const stateOf = async (pid: number): Promise<string> => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
};

describe('pauseFor', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  // The pause is long so that the checks made during it still fall inside it on a loaded machine.
  it('stops the process for the duration, then it carries on', async () => {
    const t = ticker();
    children.push(t.child);
    await waitFor(() => t.ticks() >= 3, 'the child ticking');
    const paused = pauseFor(t.child.pid!, 3_000);
    await waitFor(async () => (await stateOf(t.child.pid!)) === 'T', 'the child stopped');
    // Output already in the pipe may still arrive: take the count once it settles, then it must not move.
    await new Promise((r) => setTimeout(r, 200));
    const during = t.ticks();
    await new Promise((r) => setTimeout(r, 400));
    expect(await stateOf(t.child.pid!)).toBe('T');
    expect(t.ticks()).toBe(during);
    await paused;
    expect(await stateOf(t.child.pid!)).not.toBe('T');
    await waitFor(() => t.ticks() > during + 3, 'the child ticking again');
  });

  it('continues the process even when it is killed meanwhile or the pid is gone', async () => {
    const t = ticker();
    children.push(t.child);
    await waitFor(() => t.ticks() >= 1, 'the child ticking');
    const exited = new Promise((r) => t.child.once('exit', r));
    const paused = pauseFor(t.child.pid!, 300);
    t.child.kill('SIGKILL');
    await exited;
    await expect(paused).resolves.toBeUndefined();
  });

  it('continues the process when the test process doing the pause is ended by SIGTERM mid-pause', async () => {
    const t = ticker();
    children.push(t.child);
    await waitFor(() => t.ticks() >= 1, 'the child ticking');
    // A separate "test process" that pauses the ticker for a minute and reports once it did.
    const script = `import { pauseFor } from './test/chaos/faults/pause.ts';
      const paused = pauseFor(${t.child.pid}, 60_000);
      console.log('paused');
      await paused;`;
    const controller = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(controller);
    let said = '';
    controller.stdout.on('data', (c: Buffer) => (said += c.toString('utf8')));
    await waitFor(() => said.includes('paused'), 'the controller pausing the ticker', { timeout: 60_000 });
    await waitFor(async () => (await stateOf(t.child.pid!)) === 'T', 'the ticker stopped');
    const exited = new Promise((r) => controller.once('exit', r));
    controller.kill('SIGTERM');
    await exited;
    await waitFor(async () => (await stateOf(t.child.pid!)) !== 'T', 'the ticker continued by the exit hook');
    const after = t.ticks();
    await waitFor(() => t.ticks() > after + 3, 'the ticker ticking again');
  });

  it('rejects for a pid that does not exist, leaving nothing stopped', async () => {
    const t = ticker();
    const exited = new Promise((r) => t.child.once('exit', r));
    t.child.kill('SIGKILL');
    await exited;
    await expect(pauseFor(t.child.pid!, 10)).rejects.toThrow(/ESRCH/);
  });
});
