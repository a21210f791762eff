import { TxRejected } from '../global-transaction/errors';
import { iso } from '../time';

/**
 * Topics (DTM's `topics.go`): a named list of subscriber URLs that `topic://name` msg steps are
 * delivered to. Each topic is its own stream in the log, so every change is audited; the stream
 * is read when a message is stored, so a deletion takes effect at once on every instance.
 */
export type TopicEvent =
  | { type: 'TopicSubscribed'; data: { topic: string; url: string; remark: string; at: string } }
  | { type: 'TopicUnsubscribed'; data: { topic: string; url: string; at: string } }
  | { type: 'TopicDeleted'; data: { topic: string; at: string } };

export interface Subscriber {
  readonly url: string;
  readonly remark: string;
}

export interface TopicState {
  readonly exists: boolean;
  readonly subscribers: readonly Subscriber[];
}

export type TopicCommand =
  | { type: 'Subscribe'; data: { topic: string; url: string; remark: string }; metadata: { now: number } }
  | { type: 'Unsubscribe'; data: { topic: string; url: string }; metadata: { now: number } }
  | { type: 'DeleteTopic'; data: { topic: string }; metadata: { now: number } };

export const initialTopic: TopicState = { exists: false, subscribers: [] };

/** Stream id of a topic; `$` cannot start a gid, so topics and transactions never share a stream. */
export const topicStreamId = (topic: string): string => `$topic:${topic}`;

export const evolveTopic = (s: TopicState, e: TopicEvent): TopicState => {
  switch (e.type) {
    case 'TopicSubscribed':
      return { exists: true, subscribers: [...s.subscribers, { url: e.data.url, remark: e.data.remark }] };
    case 'TopicUnsubscribed':
      // DTM keeps a topic whose last subscriber left.
      return { exists: s.exists, subscribers: s.subscribers.filter((x) => x.url !== e.data.url) };
    case 'TopicDeleted':
      return initialTopic;
  }
};

export const foldTopic = (events: readonly TopicEvent[], from: TopicState = initialTopic): TopicState =>
  events.reduce(evolveTopic, from);

export const decideTopic = (cmd: TopicCommand, s: TopicState): TopicEvent[] => {
  const at = iso(cmd.metadata.now);
  switch (cmd.type) {
    case 'Subscribe':
      if (s.subscribers.some((x) => x.url === cmd.data.url)) {
        throw new TxRejected('invalid', `this url exists: ${cmd.data.url} already subscribes to ${cmd.data.topic}`);
      }
      return [{ type: 'TopicSubscribed', data: { ...cmd.data, at } }];
    case 'Unsubscribe':
      if (!s.exists) throw new TxRejected('not-found', `no topic ${cmd.data.topic}`);
      if (!s.subscribers.some((x) => x.url === cmd.data.url)) {
        throw new TxRejected('not-found', `${cmd.data.url} does not subscribe to ${cmd.data.topic}`);
      }
      return [{ type: 'TopicUnsubscribed', data: { ...cmd.data, at } }];
    case 'DeleteTopic':
      if (!s.exists) throw new TxRejected('not-found', `no topic ${cmd.data.topic}`);
      return [{ type: 'TopicDeleted', data: { topic: cmd.data.topic, at } }];
  }
};
