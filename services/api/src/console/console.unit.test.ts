import { describe, expect, it } from 'vitest';
import type { TopicEvent } from '@dtm-ts/domain';
import { traceIdOf } from './console-router';
import { kvRowOf } from './topic-directory';

const sub = (url: string, at: string, remark = ''): TopicEvent => ({
  type: 'TopicSubscribed',
  data: { topic: 't', url, remark, at },
});

describe('console helpers', () => {
  it('takes the trace id of a valid traceparent only', () => {
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe(
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
    expect(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeNull();
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736"><script>-00f067aa0ba902b7-01')).toBeNull();
    expect(traceIdOf(undefined)).toBeNull();
  });

  it("builds DTM's KV row of a topic from its stream, counting versions from its last (re)creation", () => {
    const events: TopicEvent[] = [
      sub('http://a', '2026-01-01T00:00:00.000Z'),
      { type: 'TopicDeleted', data: { topic: 't', at: '2026-01-01T00:00:01.000Z' } },
      sub('http://b', '2026-01-01T00:00:02.000Z', 'bee'),
      sub('http://c', '2026-01-01T00:00:03.000Z'),
      { type: 'TopicUnsubscribed', data: { topic: 't', url: 'http://c', at: '2026-01-01T00:00:04.000Z' } },
    ];
    expect(kvRowOf('t', events)).toEqual({
      cat: 'topics',
      k: 't',
      v: '[{"url":"http://b","remark":"bee"}]',
      version: 3,
      create_time: '2026-01-01T00:00:02.000Z',
      update_time: '2026-01-01T00:00:04.000Z',
    });
    expect(kvRowOf('t', events.slice(0, 2))).toBeNull();
    expect(kvRowOf('t', [])).toBeNull();
  });
});
