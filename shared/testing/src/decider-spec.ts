import { expect } from 'vitest';

/**
 * Given / when / then for a decider (house style §8):
 * `given(events).when(command).then(expectedEvents)` or `.thenThrows(ErrorClass, /message/)`.
 */
export const deciderSpec = <E, C, S>(d: {
  decide: (c: C, s: S) => E[];
  evolve: (s: S, e: E) => S;
  initialState: S;
}) => ({
  given: (history: readonly E[]) => ({
    when: (command: C) => {
      const run = (): E[] => d.decide(command, history.reduce(d.evolve, d.initialState));
      return {
        then: (expected: readonly E[]): void => {
          expect(run()).toEqual(expected);
        },
        thenThrows: (type: new (...args: never[]) => Error, message?: RegExp): void => {
          expect(run).toThrow(type);
          if (message) expect(run).toThrow(message);
        },
      };
    },
  }),
});
