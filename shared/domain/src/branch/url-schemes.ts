/** A msg step whose action is `kafka://<topic>` is delivered by producing a record to that Kafka topic. */
export const KAFKA_SCHEME = 'kafka://';

/** Kafka's rule for topic names: at most 249 of a-z A-Z 0-9 . _ -, and not `.` or `..`. */
export const KAFKA_TOPIC_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}$/;

/** A msg step whose action is `topic://<name>` goes to the topic's subscribers, expanded when the message is stored. */
export const TOPIC_SCHEME = 'topic://';

/**
 * The Kafka topic a `kafka://` URL names: the topic, `null` when the URL is not a Kafka one, or
 * `{ invalid }` when what follows the scheme breaks Kafka's naming rule. The one place that rule lives.
 */
export const kafkaTopicOf = (url: string): string | null | { readonly invalid: string } => {
  if (!url.startsWith(KAFKA_SCHEME)) return null;
  const topic = url.slice(KAFKA_SCHEME.length);
  return KAFKA_TOPIC_NAME.test(topic) ? topic : { invalid: topic };
};
