import type { EventFeed, EventLog, StreamCatalog } from '@dtm-ts/ports';

/**
 * Ids of every transaction in the log, in pages, for audits and rebuilds: from the log's catalog where it has
 * one (the Redis log: its feed is trimmed once projected, so it no longer lists everything), else from the
 * whole feed (EventStoreDB's `$all`). `archived`: also the transactions moved to the archive. Topic streams
 * (`$`…) are left out. A page may repeat an id seen before.
 */
export async function* transactionIds(
  log: EventLog | (EventLog & StreamCatalog),
  feed: EventFeed,
  opts: { archived: boolean; pageSize?: number },
): AsyncIterable<string[]> {
  const keep = (ids: readonly string[]): string[] => ids.filter((id) => !id.startsWith('$'));
  if ('streamIds' in log) {
    for await (const ids of log.streamIds(opts)) {
      const page = keep(ids);
      if (page.length) yield page;
    }
    return;
  }
  let checkpoint = '';
  for (;;) {
    const page = await feed.readPage(checkpoint, opts.pageSize ?? 1000);
    if (page.length === 0) return;
    const ids = keep([...new Set(page.map((e) => e.gid))]);
    if (ids.length) yield ids;
    checkpoint = page.at(-1)?.checkpoint ?? checkpoint;
  }
}
