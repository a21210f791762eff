// The transaction list (newest first, filters, paging), the unfinished view and the alerts.
import { useState } from './vendor/hooks.mjs';
import {
  api,
  dtm,
  fmtDue,
  fmtDuration,
  fmtTime,
  html,
  Notice,
  qs,
  STATUSES,
  StatusBadge,
  TRANS_TYPES,
  txHref,
} from './api.js';
import { AutoRefresh, Field, usePoll } from './widgets.js';

/** `datetime-local` values are local time; the API takes epoch milliseconds. */
const toMs = (local) => (local ? String(new Date(local).getTime()) : '');

const filtersFromUrl = () => {
  const p = new URLSearchParams(location.search);
  const limit = Number(p.get('limit'));
  return {
    status: p.get('status') ?? '',
    transType: p.get('transType') ?? '',
    from: p.get('from') ?? '',
    to: p.get('to') ?? '',
    gid: p.get('gid') ?? '',
    limit: Number.isInteger(limit) && limit > 0 && limit <= 1000 ? limit : 20,
  };
};

const Counts = ({ counts, onPick }) => {
  if (!counts) return null;
  const label = counts.complete ? 'All transactions' : `Newest ${counts.scanned} transactions`;
  return html`<section aria-labelledby="counts-h" class="counts">
    <h2 id="counts-h" class="sr-only">Counts per status</h2>
    <span class="muted">${label}:</span>
    ${STATUSES.map(
      (s) =>
        html`<button
          type="button"
          class="chip"
          onClick=${() => onPick(s)}
          aria-label=${`${counts.counts[s] ?? 0} ${s}: show them`}
        >
          <${StatusBadge} status=${s} /> <strong>${counts.counts[s] ?? 0}</strong>
        </button>`,
    )}
    <a class="chip" href="/unfinished">${counts.unfinished} unfinished in all</a>
  </section>`;
};

const TxTable = ({ rows, caption, extra }) =>
  html`<table class="tx">
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        <th scope="col">gid</th>
        <th scope="col">type</th>
        <th scope="col">status</th>
        <th scope="col">created</th>
        ${
          extra
            ? extra.head
            : html`<th scope="col">updated</th>
                <th scope="col">rollback reason</th>`
        }
      </tr>
    </thead>
    <tbody>
      ${
        rows.length === 0 &&
        html`<tr>
          <td colspan="6" class="muted">No transactions.</td>
        </tr>`
      }
      ${rows.map(
        (t) =>
          html`<tr key=${t.gid} data-gid=${t.gid}>
            <td><a class="gid" href=${txHref(t.gid)}>${t.gid}</a></td>
            <td>${t.trans_type}</td>
            <td><${StatusBadge} status=${t.status} /></td>
            <td class="t">${fmtTime(t.create_time)}</td>
            ${
              extra
                ? extra.cells(t)
                : html`<td class="t">${fmtTime(t.update_time)}</td>
                    <td class="reason">${t.rollback_reason ?? ''}</td>`
            }
          </tr>`,
      )}
    </tbody>
  </table>`;

/** `/`: every transaction, newest first. */
export const ListPage = () => {
  const [filters, setFilters] = useState(filtersFromUrl);
  const [draft, setDraft] = useState(filters);
  // Cursors of the pages before this one, so "Previous" can go back.
  const [cursors, setCursors] = useState([]);
  const [position, setPosition] = useState('');
  const [auto, setAuto] = useState(true);

  const list = usePoll(
    () =>
      api(
        filters.gid
          ? dtm('all', { gid: filters.gid })
          : dtm('all', {
              limit: filters.limit,
              position,
              status: filters.status,
              transType: filters.transType,
              createTimeStart: toMs(filters.from),
              createTimeEnd: toMs(filters.to),
            }),
      ),
    [filters, position],
    { auto },
  );
  const counts = usePoll(() => api('/api/console/counts'), [], { auto });

  const apply = (next) => {
    setFilters(next);
    setDraft(next);
    setCursors([]);
    setPosition('');
    const { limit, ...rest } = next;
    const search = qs({ ...rest, limit: limit === 20 ? '' : limit });
    history.replaceState(null, '', search ? `/?${search}` : '/');
  };
  const field = (key) => ({
    value: draft[key],
    onInput: (e) => setDraft({ ...draft, [key]: e.currentTarget.value }),
  });
  const rows = list.data?.transactions ?? [];
  const next = list.data?.next_position ?? '';

  return html`<h1 tabindex="-1">Transactions</h1>
    <${Counts} counts=${counts.data} onPick=${(s) => apply({ ...filters, gid: '', status: s })} />
    <form
      class="filters"
      aria-label="Filter transactions"
      onSubmit=${(e) => {
        e.preventDefault();
        apply(draft);
      }}
    >
      <${Field} id="f-status" label="Status">
        <select id="f-status" name="status" ...${field('status')} onChange=${field('status').onInput}>
          <option value="">any</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      <//>
      <${Field} id="f-type" label="Type">
        <select id="f-type" name="transType" ...${field('transType')} onChange=${field('transType').onInput}>
          <option value="">any</option>
          ${TRANS_TYPES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      <//>
      <${Field} id="f-from" label="Created from">
        <input id="f-from" type="datetime-local" name="from" step="1" ...${field('from')} />
      <//>
      <${Field} id="f-to" label="Created to">
        <input id="f-to" type="datetime-local" name="to" step="1" ...${field('to')} />
      <//>
      <${Field} id="f-gid" label="gid">
        <input id="f-gid" type="search" name="gid" placeholder="exact gid" ...${field('gid')} />
      <//>
      <button type="submit">Apply</button>
      <button
        type="button"
        onClick=${() => apply({ status: '', transType: '', from: '', to: '', gid: '', limit: filters.limit })}
      >
        Clear
      </button>
    </form>
    <${AutoRefresh} auto=${auto} setAuto=${setAuto} onRefresh=${() => (list.reload(), counts.reload())} />
    <${Notice} error=${list.error} />
    <${TxTable}
      rows=${rows}
      caption=${`Newest first, page ${cursors.length + 1}${list.loading ? ' (loading…)' : ''}`}
    />
    <nav class="pager" aria-label="Pages">
      <button
        type="button"
        disabled=${cursors.length === 0}
        onClick=${() => {
          setPosition(cursors[cursors.length - 1] ?? '');
          setCursors(cursors.slice(0, -1));
        }}
      >
        ← Previous page
      </button>
      <button
        type="button"
        disabled=${!next}
        onClick=${() => {
          setCursors([...cursors, position]);
          setPosition(next);
        }}
      >
        Next page →
      </button>
    </nav>`;
};

/** `/unfinished`: prepared, submitted and aborting transactions, the most overdue first. */
export const UnfinishedPage = () => {
  const [auto, setAuto] = useState(true);
  const list = usePoll(() => api('/api/console/unfinished?limit=200'), [], { auto });
  const rows = list.data?.transactions ?? [];
  const now = Date.now();
  return html`<h1 tabindex="-1">Unfinished transactions</h1>
    <p class="muted">
      Prepared, submitted and aborting transactions, by when they are next due: the most overdue first.
      ${list.data ? ` ${list.data.total} unfinished in all.` : ''}
    </p>
    <${AutoRefresh} auto=${auto} setAuto=${setAuto} onRefresh=${list.reload} />
    <${Notice} error=${list.error} />
    <${TxTable}
      rows=${rows}
      caption=${`Showing ${rows.length}`}
      extra=${{
        head: html`<th scope="col">next due</th>
          <th scope="col">overdue</th>`,
        cells: (t) => {
          const late = Date.parse(t.wake_time) < now;
          return html`<td class="t">${fmtTime(t.wake_time)}</td>
            <td class=${late ? 'late' : ''}>
              ${late ? fmtDuration(t.overdue_s) : `not yet (due ${fmtDue(t.wake_time, now)})`}
            </td>`;
        },
      }}
    />`;
};

/** `/alerts`: branches retried past ALERT_RETRY_LIMIT. */
export const AlertsPage = () => {
  const [auto, setAuto] = useState(true);
  const alerts = usePoll(() => api('/api/console/alerts?limit=200'), [], { auto });
  const settings = usePoll(() => api('/api/console/settings'), [], { auto: false });
  const rows = alerts.data?.alerts ?? [];
  const s = settings.data;
  return html`<h1 tabindex="-1">Alerts</h1>
    <p class="muted">
      A branch that failed ${s ? s.alertRetryLimit : 'ALERT_RETRY_LIMIT'} times in a row raises one alert
      ${s && (s.alertWebhook ? ', also POSTed to ALERT_WEBHOOK' : ' (no ALERT_WEBHOOK set: shown here only)')}.
    </p>
    <${AutoRefresh} auto=${auto} setAuto=${setAuto} onRefresh=${alerts.reload} />
    <${Notice} error=${alerts.error} />
    <table class="tx">
      <caption>
        Newest first
      </caption>
      <thead>
        <tr>
          <th scope="col">raised</th>
          <th scope="col">gid</th>
          <th scope="col">type</th>
          <th scope="col">branch</th>
          <th scope="col">failed calls</th>
          <th scope="col">last error</th>
        </tr>
      </thead>
      <tbody>
        ${
          rows.length === 0 &&
          html`<tr>
            <td colspan="6" class="muted">No alerts.</td>
          </tr>`
        }
        ${rows.map(
          (a) =>
            html`<tr>
              <td class="t">${fmtTime(a.at)}</td>
              <td><a class="gid" href=${txHref(a.gid)}>${a.gid}</a></td>
              <td>${a.trans_type}</td>
              <td>${a.branch_id}/${a.op}</td>
              <td>${a.retry_count}</td>
              <td class="reason">${a.error}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
};
