import type { RedisClient } from '@dtm-ts/adapters';
import { foldTopic, topicStreamId, type TopicEvent } from '@dtm-ts/domain';
import type { TopicLog } from '@dtm-ts/ports';
import type { KvRow, TopicIndex } from '../http/dtm-service';

/**
 * Topic names in a Redis sorted set (all scores 0, so ordered by name), next to the topic streams.
 *
 * The set is a superset of the topics that exist: a name is added before its first event is appended
 * and never removed (a deletion and a concurrent subscribe could otherwise race the removal), so
 * listing reads each named stream and skips the topics that are gone. Topics are few; a deleted
 * name costs one stream read per listing.
 */
export class TopicDirectory implements TopicIndex {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly topics: TopicLog,
  ) {
    this.key = `${prefix}:topic-names`;
  }

  async add(topic: string): Promise<void> {
    await this.redis.zadd(this.key, 0, topic);
  }

  async scan(position: string, limit: number): Promise<{ rows: KvRow[]; next: string }> {
    const rows: KvRow[] = [];
    let min = position ? `(${position}` : '-';
    const batch = Math.max(limit, 50);
    for (;;) {
      const names = await this.redis.zrangebylex(this.key, min, '+', 'LIMIT', 0, batch);
      for (const name of names) {
        const row = await this.row(name);
        if (!row) continue;
        if (rows.length === limit) return { rows, next: rows[rows.length - 1]!.k };
        rows.push(row);
      }
      if (names.length < batch) return { rows, next: '' };
      min = `(${names[names.length - 1]!}`;
    }
  }

  async query(key: string): Promise<KvRow[]> {
    if (key === '') return (await this.scan('', 10_000)).rows;
    const row = await this.row(key);
    return row ? [row] : [];
  }

  /** The KV row of a topic as its stream tells it since its last deletion; null when it does not exist. */
  private async row(topic: string): Promise<KvRow | null> {
    const { events } = await this.topics.read(topicStreamId(topic));
    return kvRowOf(topic, events);
  }
}

/** DTM's KV row of a topic from its events: `version` counts changes since it was (re)created, from 1. Pure. */
export const kvRowOf = (topic: string, events: readonly TopicEvent[]): KvRow | null => {
  const lastDelete = events.findLastIndex((e) => e.type === 'TopicDeleted');
  const live = events.slice(lastDelete + 1);
  const first = live[0];
  const last = live[live.length - 1];
  if (!first || !last) return null;
  const { exists, subscribers } = foldTopic(events);
  if (!exists) return null;
  return {
    cat: 'topics',
    k: topic,
    v: JSON.stringify(subscribers.map((s) => ({ url: s.url, remark: s.remark }))),
    version: live.length,
    create_time: first.data.at,
    update_time: last.data.at,
  };
};
