// The live panel: figures from the TM's Prometheus text (GET /api/metrics), rates between two readings.
import { useEffect, useRef, useState } from './vendor/hooks.mjs';
import { api, fmtDuration, html } from './api.js';

/** Sums the samples of every series whose name matches `name` (and whose labels match `labels`, if given). */
export const sumSeries = (text, name, labels) => {
  let total = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || !name.test(m[1])) continue;
    if (labels && !labels.test(m[2] ?? '')) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) {
      total += v;
      seen = true;
    }
  }
  return seen ? total : null;
};

const readFigures = (text) => ({
  at: Date.now(),
  finished: sumSeries(text, /^dtm_transaction_handled_duration\w*_count$/),
  retries: sumSeries(text, /^dtm_branch_retries_total$/),
  overdue: sumSeries(text, /^dtm_oldest_overdue_seconds$/),
  queued: sumSeries(text, /^dtm_queue_jobs$/, /state="(waiting|active)"/),
  delayed: sumSeries(text, /^dtm_queue_jobs$/, /state="delayed"/),
});

const perMinute = (now, before, key) =>
  before && now[key] !== null && before[key] !== null && now.at > before.at
    ? `${(((now[key] - before[key]) * 60_000) / (now.at - before.at)).toFixed(1)}/min`
    : '…';

export const LivePanel = () => {
  const [figures, setFigures] = useState({ now: null, before: null, error: null });
  const last = useRef(null);
  useEffect(() => {
    const read = () =>
      api('/api/metrics', { text: true }).then(
        (text) => {
          const now = readFigures(text);
          setFigures({ now, before: last.current, error: null });
          last.current = now;
        },
        (error) => setFigures((f) => ({ ...f, error })),
      );
    read();
    const t = setInterval(read, 5000);
    return () => clearInterval(t);
  }, []);
  const { now, before, error } = figures;
  const item = (label, value, title) =>
    html`<div class="stat" title=${title}>
      <dt>${label}</dt>
      <dd>${value}</dd>
    </div>`;
  return html`<section class="live" aria-labelledby="live-h">
    <h2 id="live-h" class="sr-only">Live figures</h2>
    ${
      error
        ? html`<p class="muted">metrics unavailable: ${String(error.message)}</p>`
        : html`<dl>
            ${item('finished', now ? perMinute(now, before, 'finished') : '…', 'Transactions that reached succeed or failed, per minute (this process)')}
            ${item('retries', now ? perMinute(now, before, 'retries') : '…', 'Branch retries scheduled, per minute (this process)')}
            ${item('oldest overdue', now?.overdue != null ? (now.overdue > 0 ? fmtDuration(now.overdue) : 'none') : '…', 'How late the most overdue unfinished transaction is')}
            ${item('queue', now?.queued != null ? `${now.queued} ready, ${now.delayed ?? 0} delayed` : '…', 'Pass jobs waiting or running, and delayed (retries, timeouts)')}
          </dl>`
    }
  </section>`;
};
