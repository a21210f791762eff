import { OutboundRuleError } from './rules';

/** KAFKA_TOPIC_ALLOW compiled: the patterns as written and as one regular expression each; empty: unset. */
export interface TopicPatterns {
  readonly patterns: readonly { readonly text: string; readonly re: RegExp }[];
}

/** A glob over Kafka's topic alphabet: `*` any run of characters, `?` one. */
const GLOB = /^[A-Za-z0-9._*?-]{1,249}$/;

/**
 * Reads KAFKA_TOPIC_ALLOW: comma-separated globs (`orders.*`, `audit-?`). Globs, not regular expressions: topic
 * names cannot hold `*`, `?` or `,`, so a glob says all that is needed, reads at a glance and cannot be made
 * to backtrack for ever.
 *
 * @throws {@link OutboundRuleError} naming a pattern with other characters
 */
export const parseTopicPatterns = (raw: string | undefined): TopicPatterns => {
  const patterns = (raw ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((text) => {
      if (!GLOB.test(text)) {
        throw new OutboundRuleError(
          `KAFKA_TOPIC_ALLOW: '${text}' may only hold a-z A-Z 0-9 . _ - and the wildcards * ?`,
        );
      }
      const source = text.replace(/[.*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : '\\.'));
      return { text, re: new RegExp(`^${source}$`) };
    });
  return { patterns };
};

/**
 * Why producing to `topic` is refused, or null. With no patterns every topic is allowed except Kafka's internal
 * ones (`__consumer_offsets`, `__transaction_state`, …: every name starting with `__`); with patterns only
 * matching topics are, internal ones included when a pattern names them.
 */
export const kafkaTopicRefusal = (t: TopicPatterns, topic: string, shown: string): string | null => {
  if (t.patterns.length === 0) {
    return topic.startsWith('__') ? `${shown}: '${topic}' is an internal Kafka topic; never produced to` : null;
  }
  if (t.patterns.some((p) => p.re.test(topic))) return null;
  return `${shown}: topic '${topic}' matches no KAFKA_TOPIC_ALLOW pattern`;
};
