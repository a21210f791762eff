// The dtm-ts console: one shell for every page; the path picks the page.
import { render } from './vendor/preact.mjs';
import { useEffect, useState } from './vendor/hooks.mjs';
import { getToken, html, setToken } from './api.js';
import { DetailPage } from './detail.js';
import { AlertsPage, ListPage, UnfinishedPage } from './list.js';
import { LivePanel } from './live.js';
import { TopicsPage } from './topics.js';

const NAV = [
  ['/', 'Transactions'],
  ['/unfinished', 'Unfinished'],
  ['/alerts', 'Alerts'],
  ['/topics', 'Topics'],
];

/** The page for a path; a gid in `/tx/<gid>` is URL-encoded. */
const route = (path) => {
  if (path.startsWith('/tx/')) {
    let gid;
    try {
      gid = decodeURIComponent(path.slice(4));
    } catch {
      gid = path.slice(4);
    }
    return { key: '/tx', title: `Transaction ${gid}`, page: html`<${DetailPage} gid=${gid} />` };
  }
  if (path === '/unfinished') return { key: path, title: 'Unfinished', page: html`<${UnfinishedPage} />` };
  if (path === '/alerts') return { key: path, title: 'Alerts', page: html`<${AlertsPage} />` };
  if (path === '/topics') return { key: path, title: 'Topics', page: html`<${TopicsPage} />` };
  return { key: '/', title: 'Transactions', page: html`<${ListPage} />` };
};

/** The bearer token sent with every call (the admin scope, when the TM has auth on). */
const TokenForm = () => {
  const [draft, setDraft] = useState(getToken());
  const [saved, setSaved] = useState(getToken() !== '');
  return html`<form
    class="token"
    aria-label="API token"
    onSubmit=${(e) => {
      e.preventDefault();
      setToken(draft.trim());
      setSaved(draft.trim() !== '');
      location.reload();
    }}
  >
    <label
      >API token
      <input type="password" autocomplete="off" value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)}
    /></label>
    <button type="submit">${saved ? 'Update' : 'Use'}</button>
    ${
      saved &&
      html`<button
        type="button"
        onClick=${() => {
          setToken('');
          location.reload();
        }}
      >
        Forget
      </button>`
    }
  </form>`;
};

const App = () => {
  const r = route(location.pathname);
  useEffect(() => {
    document.title = `${r.title} · dtm-ts`;
  }, [r.title]);
  return html`<a class="skip" href="#main">Skip to content</a>
    <header>
      <div class="bar">
        <a class="brand" href="/">dtm-ts</a>
        <nav aria-label="Console">
          ${NAV.map(
            ([href, label]) => html`<a href=${href} aria-current=${r.key === href ? 'page' : undefined}>${label}</a>`,
          )}
        </nav>
        <${TokenForm} />
      </div>
      <${LivePanel} />
    </header>
    <main id="main" tabindex="-1">${r.page}</main>`;
};

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
