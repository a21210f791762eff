import type { FeedSubscription } from '@dtm-ts/ports';
import { FoldCache, projectEntries, type ProjectorDeps } from './projector';

/** Runs the projector on `feed` (whichever log it follows) until the feed is stopped. */
export const startProjector = async (feed: FeedSubscription, deps: Omit<ProjectorDeps, 'cache'>): Promise<void> => {
  // Built once: a spread followed by a new key is slow in V8 (Node 20), and this runs for every batch.
  const withCache: ProjectorDeps = { ...deps, cache: new FoldCache() };
  await feed.start((entries) => projectEntries(withCache, entries));
};
