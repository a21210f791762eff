// `/tx/<gid>`: one transaction's fields, branches, alerts and its whole history from the log.
import { useState } from './vendor/hooks.mjs';
import { api, decodePayload, dtm, fmtDue, fmtTime, html, Notice, pretty, StatusBadge, UNDO_OPS } from './api.js';
import { AutoRefresh, ConfirmDialog, usePoll } from './widgets.js';

const FINAL = new Set(['succeed', 'failed']);

/** Fields of the transaction record, in reading order; the rest follow. */
const FIELD_ORDER = [
  'trans_type',
  'status',
  'protocol',
  'create_time',
  'update_time',
  'finish_time',
  'rollback_time',
  'rollback_reason',
  'next_cron_time',
  'retry_count',
  'retry_limit',
  'retry_interval',
  'timeout_to_fail',
  'request_timeout',
  'wait_result',
  'concurrent',
  'custom_data',
  'query_prepared',
  'result',
];
const HIDDEN = new Set(['gid', 'steps', 'payloads', 'branch_headers']);

const fieldValue = (key, v) => {
  if (key.endsWith('_time')) return fmtTime(v, true);
  if (key === 'status') return html`<${StatusBadge} status=${v} />`;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
};

const Payload = ({ payload }) => {
  if (payload.base64 !== undefined)
    return html`<details>
      <summary>binary (base64)</summary>
      <pre class="payload">${payload.base64}</pre>
    </details>`;
  if (payload.text === '') return html`<span class="muted">empty</span>`;
  return payload.text.length <= 60 && !payload.text.includes('\n')
    ? html`<code class="payload">${payload.text}</code>`
    : html`<details>
        <summary>${payload.text.slice(0, 40)}…</summary>
        <pre class="payload">${pretty(payload.text)}</pre>
      </details>`;
};

const Fields = ({ tx, extra }) => {
  const keys = [...FIELD_ORDER.filter((k) => k in tx), ...Object.keys(tx).filter((k) => !FIELD_ORDER.includes(k))];
  return html`<dl class="fields">
    ${keys
      .filter((k) => !HIDDEN.has(k) && tx[k] !== '' && tx[k] !== undefined)
      .map(
        (k) =>
          html`<div>
            <dt>${k}</dt>
            <dd>${fieldValue(k, tx[k])}</dd>
          </div>`,
      )}
    ${
      extra?.trace_id &&
      html`<div>
        <dt>trace id</dt>
        <dd>
          ${
            extra.trace_url
              ? html`<a href=${extra.trace_url} target="_blank" rel="noopener noreferrer">${extra.trace_id}</a>`
              : html`<code>${extra.trace_id}</code>`
          }
        </dd>
      </div>`
    }
    ${
      tx.branch_headers &&
      html`<div>
        <dt>branch_headers</dt>
        <dd>${Object.keys(tx.branch_headers).join(', ')} (values hidden)</dd>
      </div>`
    }
  </dl>`;
};

const Branches = ({ branches }) =>
  html`<table class="branches">
    <caption>
      Branches, in creation order
    </caption>
    <thead>
      <tr>
        <th scope="col">branch</th>
        <th scope="col">op</th>
        <th scope="col">URL</th>
        <th scope="col">status</th>
        <th scope="col">created</th>
        <th scope="col">updated</th>
        <th scope="col">finished</th>
        <th scope="col">payload</th>
      </tr>
    </thead>
    <tbody>
      ${
        branches.length === 0 &&
        html`<tr>
          <td colspan="8" class="muted">No branches.</td>
        </tr>`
      }
      ${branches.map(
        (b) =>
          html`<tr class=${UNDO_OPS.has(b.op) ? 'undo' : ''} key=${`${b.branch_id}/${b.op}`}>
            <td>${b.branch_id}</td>
            <td>${b.op}</td>
            <td class="url">${b.url}</td>
            <td><${StatusBadge} status=${b.status} /></td>
            <td class="t">${fmtTime(b.create_time, true)}</td>
            <td class="t">${fmtTime(b.update_time, true)}</td>
            <td class="t">${fmtTime(b.finish_time, true)}</td>
            <td><${Payload} payload=${decodePayload(b.bin_data)} /></td>
          </tr>`,
      )}
    </tbody>
  </table>`;

const OUTCOME_WORDS = { succeed: 'succeeded', failed: 'failed', ongoing: 'not done yet', error: 'error' };

const Timeline = ({ timeline }) =>
  html`<ol class="timeline" aria-label="Event timeline">
    ${timeline.events.map((e) => {
      const undo = e.op !== undefined && UNDO_OPS.has(e.op);
      return html`<li class=${`ev${undo ? ' undo' : ''}${e.outcome ? ` o-${e.outcome}` : ''}`} key=${e.revision}>
        <div class="when">
          <time datetime=${e.at}>${fmtTime(e.at, true)}</time>
          <span class="rev">#${e.revision}</span>
        </div>
        <div class="what">
          <div class="head">
            <strong>${e.type}</strong>
            ${e.statusChanged && html` → <${StatusBadge} status=${e.status} />`}
            ${undo && html` <span class="tag undo-tag">compensation</span>`}
          </div>
          ${
            e.branchId !== undefined &&
            html`<div class="call">
              call <code>${e.branchId}/${e.op}</code>${e.url ? html` <span class="url">${e.url}</span>` : ''}
              ${e.outcome && html` → <span class=${`outcome o-${e.outcome}`}>${OUTCOME_WORDS[e.outcome] ?? e.outcome}</span>`}
            </div>`
          }
          ${e.reason && html`<div class="reason">${e.type === 'TransactionAborting' ? 'rollback reason: ' : ''}${e.reason}</div>`}
          ${
            e.retryAt &&
            html`<div class="retry">
              next try at <time datetime=${e.retryAt}>${fmtTime(e.retryAt, true)}</time> (${fmtDue(e.retryAt)})
            </div>`
          }
          ${
            e.branches &&
            html`<div class="declared">
              branches: ${e.branches.map((b) => `${b.branchId}/${b.op}`).join(', ') || 'none'}
            </div>`
          }
          ${!e.branchId && !e.reason && !e.branches && !e.statusChanged && html`<div class="text">${e.text}</div>`}
        </div>
      </li>`;
    })}
  </ol>`;

const Compensations = ({ list }) =>
  list.length === 0
    ? null
    : html`<section aria-labelledby="comp-h" class="compensations">
        <h2 id="comp-h">Compensations, in order</h2>
        <ol>
          ${list.map(
            (c) =>
              html`<li class=${`undo o-${c.outcome}`}>
                ${fmtTime(c.at, true)} <code>${c.branchId}/${c.op}</code> ${OUTCOME_WORDS[c.outcome] ?? c.outcome}
                ${c.url ? html` <span class="url">${c.url}</span>` : ''}
              </li>`,
          )}
        </ol>
      </section>`;

const Alerts = ({ alerts }) =>
  !alerts?.length
    ? null
    : html`<section aria-labelledby="alerts-h" class="alerts">
        <h2 id="alerts-h">Retry alerts</h2>
        <ul>
          ${alerts.map(
            (a) =>
              html`<li>
                ${fmtTime(a.at)}: <code>${a.branch_id}/${a.op}</code> failed ${a.retry_count} times in a row; last
                error:
                <span class="reason">${a.error}</span>
              </li>`,
          )}
        </ul>
      </section>`;

/** `/tx/<gid>`. */
export const DetailPage = ({ gid }) => {
  const [auto, setAuto] = useState(true);
  const [ask, setAsk] = useState(null);
  const [result, setResult] = useState({ error: null, message: '' });
  const data = usePoll(
    async () => {
      const [query, extra] = await Promise.all([
        api(dtm('query', { gid })),
        api(`/api/console/tx?gid=${encodeURIComponent(gid)}`),
      ]);
      const timeline = query.transaction ? await api(dtm('events', { gid })) : null;
      return { ...query, extra, timeline };
    },
    [gid],
    { auto },
  );
  const tx = data.data?.transaction;
  const act = (path, done) =>
    api(dtm(path), { method: 'POST', body: { gid } }).then(
      () => (setResult({ error: null, message: done }), data.reload()),
      (error) => setResult({ error, message: '' }),
    );

  return html`<h1 tabindex="-1">Transaction <code class="gid">${gid}</code></h1>
    <${Notice} error=${data.error} />
    ${data.data && !tx && html`<p class="notice" role="status">No transaction with this gid.</p>`}
    ${
      tx &&
      html`<div class="actions">
          <${StatusBadge} status=${tx.status} />
          <button
            type="button"
            class="danger"
            disabled=${FINAL.has(tx.status)}
            onClick=${() =>
              setAsk({
                title: 'Force stop?',
                text: `Transaction ${gid} will end as failed now, without calling any compensation.`,
                confirm: 'Force stop',
                run: () => act('forceStop', 'Stopped: the transaction is failed.'),
              })}
          >
            Force stop
          </button>
          <button
            type="button"
            disabled=${FINAL.has(tx.status)}
            onClick=${() =>
              setAsk({
                title: 'Retry now?',
                text: `Every pending retry of ${gid} becomes due now (resetNextCronTime).`,
                confirm: 'Retry now',
                run: () => act('resetNextCronTime', 'Retry schedule reset: the pending calls are due now.'),
              })}
          >
            Retry now
          </button>
          <${AutoRefresh} auto=${auto} setAuto=${setAuto} onRefresh=${data.reload} />
        </div>
        <${Notice} ...${result} />
        <${ConfirmDialog} ask=${ask} onClose=${() => setAsk(null)} />
        <section aria-labelledby="fields-h">
          <h2 id="fields-h">Fields</h2>
          <${Fields} tx=${tx} extra=${data.data.extra} />
        </section>
        <${Alerts} alerts=${data.data.extra?.alerts} />
        <section aria-labelledby="branches-h">
          <h2 id="branches-h">Branches</h2>
          <${Branches} branches=${data.data.branches ?? []} />
        </section>
        ${
          data.data.timeline &&
          html`<${Compensations} list=${data.data.timeline.compensations} />
            <section aria-labelledby="timeline-h">
              <h2 id="timeline-h">Timeline (${data.data.timeline.events.length} events)</h2>
              <${Timeline} timeline=${data.data.timeline} />
            </section>`
        }`
    }`;
};
