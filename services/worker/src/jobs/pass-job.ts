import type { Driver } from '@dtm-ts/engine';
import type { PassJobData } from '@dtm-ts/ports';

/** What a worker does with a pass job: one pass over its transaction, as of the time it was asked for. */
export const passJobHandler =
  (driver: Driver) =>
  async (job: PassJobData): Promise<void> => {
    await driver.runPass(job.gid, { notBefore: job.at, trace: job.trace });
  };
