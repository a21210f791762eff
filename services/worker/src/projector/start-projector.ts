import type { FeedSubscription } from '@dtm-ts/ports';
import { FoldCache, projectEntries, type ProjectorDeps } from './projector';

/** Runs the projector on `feed` (whichever log it follows) until the feed is stopped. */
export const startProjector = async (feed: FeedSubscription, deps: Omit<ProjectorDeps, 'cache'>): Promise<void> => {
  const cache = new FoldCache();
  await feed.start((entries) => projectEntries({ ...deps, cache }, entries));
};
