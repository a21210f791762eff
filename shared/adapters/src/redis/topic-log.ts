import type { TopicEvent, TxEvent } from '@dtm-ts/domain';
import type { TopicLog } from '@dtm-ts/ports';
import type { RedisEventLog } from './event-log';

/**
 * Topic streams live in the same Redis log as transactions (so they share its atomic appends and
 * its feed, and an audit replays them too); the log stores JSON events whatever their type.
 */
export const redisTopicLog = (log: RedisEventLog): TopicLog => ({
  read: async (id) => {
    const { events, version } = await log.read(id);
    return { events: events as unknown as TopicEvent[], version };
  },
  append: (id, events, expected) => log.append(id, events as unknown as TxEvent[], expected),
});
