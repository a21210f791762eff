import { describe, expect, it } from 'vitest';
import { BackgroundLoop } from './background-loop';

describe('BackgroundLoop', () => {
  it('when it is started twice, then the second start throws', () => {
    const loop = new BackgroundLoop();
    loop.start(() => new Promise(() => undefined));
    expect(() => loop.start(() => Promise.resolve())).toThrow('subscriber already started');
  });

  it('when it stops during a long pause, then the pause ends, the interrupt runs and stop waits for the loop', async () => {
    const loop = new BackgroundLoop();
    const steps: string[] = [];
    loop.start(async () => {
      while (!loop.stopped) await loop.pause(60_000);
      steps.push('loop ended');
    });
    const start = Date.now();
    await loop.stop(() => {
      steps.push('interrupted');
      return Promise.resolve();
    });
    expect(steps).toEqual(['interrupted', 'loop ended']);
    expect(Date.now() - start).toBeLessThan(1_000);
  });

  it('when it was stopped, then it starts again and pauses again', async () => {
    const loop = new BackgroundLoop();
    loop.start(() => Promise.resolve());
    await loop.stop();
    expect(loop.stopped).toBe(true);
    let paused = false;
    loop.start(async () => {
      await loop.pause(1);
      paused = true;
    });
    expect(loop.stopped).toBe(false);
    await loop.stop();
    expect(paused).toBe(true);
  });
});
