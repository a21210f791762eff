// `/topics`: DTM's topics (scanKV cat=topics), their subscribers, subscribe/unsubscribe/delete.
import { useState } from './vendor/hooks.mjs';
import { api, dtm, fmtTime, html, Notice } from './api.js';
import { ConfirmDialog, Field, usePoll } from './widgets.js';

/** Every topic, page after page of scanKV. */
const loadTopics = async () => {
  const rows = [];
  let position = '';
  do {
    const page = await api(dtm('scanKV', { cat: 'topics', limit: 100, position }));
    rows.push(...(page.kv ?? []));
    position = page.next_position;
  } while (position);
  return rows.map((r) => ({ ...r, subscribers: JSON.parse(r.v) }));
};

export const TopicsPage = () => {
  const topics = usePoll(loadTopics, [], { auto: false });
  const [form, setForm] = useState({ topic: '', url: '', remark: '' });
  const [ask, setAsk] = useState(null);
  const [result, setResult] = useState({ error: null, message: '' });
  const run = (call, done) =>
    call.then(
      () => (setResult({ error: null, message: done }), topics.reload()),
      (error) => setResult({ error, message: '' }),
    );
  const field = (key) => ({
    value: form[key],
    onInput: (e) => setForm({ ...form, [key]: e.currentTarget.value }),
  });

  return html`<h1 tabindex="-1">Topics</h1>
    <p class="muted">A msg step <code>topic://name</code> is delivered to every subscriber of the topic.</p>
    <form
      class="filters"
      aria-label="Subscribe"
      onSubmit=${(e) => {
        e.preventDefault();
        run(api(dtm('subscribe', form)), `Subscribed ${form.url} to ${form.topic}.`).then(() =>
          setForm({ ...form, url: '', remark: '' }),
        );
      }}
    >
      <${Field} id="t-topic" label="Topic"><input id="t-topic" name="topic" required ...${field('topic')} /><//>
      <${Field} id="t-url" label="Subscriber URL">
        <input id="t-url" name="url" type="url" required size="40" ...${field('url')} />
      <//>
      <${Field} id="t-remark" label="Remark"><input id="t-remark" name="remark" ...${field('remark')} /><//>
      <button type="submit">Subscribe</button>
    </form>
    <${Notice} ...${result} />
    <${Notice} error=${topics.error} />
    <${ConfirmDialog} ask=${ask} onClose=${() => setAsk(null)} />
    ${topics.data?.length === 0 && html`<p class="muted">No topics.</p>`}
    ${(topics.data ?? []).map(
      (t) =>
        html`<section class="topic" aria-labelledby=${`topic-${t.k}`} data-topic=${t.k} key=${t.k}>
          <h2 id=${`topic-${t.k}`}>${t.k}</h2>
          <p class="muted">
            version ${t.version}, created ${fmtTime(t.create_time)}, updated ${fmtTime(t.update_time)}
          </p>
          <table>
            <caption>
              ${t.subscribers.length} subscriber(s)
            </caption>
            <thead>
              <tr>
                <th scope="col">URL</th>
                <th scope="col">remark</th>
                <th scope="col"><span class="sr-only">actions</span></th>
              </tr>
            </thead>
            <tbody>
              ${t.subscribers.map(
                (s) =>
                  html`<tr key=${s.url}>
                    <td class="url">${s.url}</td>
                    <td>${s.remark}</td>
                    <td>
                      <button
                        type="button"
                        aria-label=${`Unsubscribe ${s.url} from ${t.k}`}
                        onClick=${() =>
                          setAsk({
                            title: 'Unsubscribe?',
                            text: `${s.url} will no longer receive messages of ${t.k}.`,
                            confirm: 'Unsubscribe',
                            run: () =>
                              run(api(dtm('unsubscribe', { topic: t.k, url: s.url })), `Unsubscribed ${s.url}.`),
                          })}
                      >
                        Unsubscribe
                      </button>
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>
          <button
            type="button"
            class="danger"
            onClick=${() =>
              setAsk({
                title: 'Delete topic?',
                text: `Topic ${t.k} and its ${t.subscribers.length} subscriber(s) will be deleted.`,
                confirm: 'Delete topic',
                run: () =>
                  run(api(`/api/dtmsvr/topic/${encodeURIComponent(t.k)}`, { method: 'DELETE' }), `Deleted ${t.k}.`),
              })}
          >
            Delete topic ${t.k}
          </button>
        </section>`,
    )}`;
};
