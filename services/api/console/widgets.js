// Pieces several pages use: a polling hook and a confirmation dialog.
import { useCallback, useEffect, useRef, useState } from './vendor/hooks.mjs';
import { html } from './api.js';

/**
 * Loads `load()` now and every `everyMs` while `auto` is on; `reload` loads again at once.
 * Keeps the last good data on a failed refresh, with the error beside it.
 */
export const usePoll = (load, deps, { everyMs = 5000, auto = true } = {}) => {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(() => {
    const mine = ++seq.current;
    return load().then(
      (data) => mine === seq.current && setState({ data, error: null, loading: false }),
      (error) => mine === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, deps);
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    reload();
    if (!auto) return undefined;
    const t = setInterval(reload, everyMs);
    return () => clearInterval(t);
  }, [reload, auto, everyMs]);
  return { ...state, reload };
};

/**
 * A modal confirmation (`<dialog>`: focus moves into it, Escape cancels, focus returns after).
 * `ask` is `{ title, text, confirm, run }` or null.
 */
export const ConfirmDialog = ({ ask, onClose }) => {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (ask && !d.open) d.showModal();
    if (!ask && d.open) d.close();
  }, [ask]);
  const confirm = () => {
    const run = ask?.run;
    onClose();
    run?.();
  };
  return html`<dialog ref=${ref} class="confirm" aria-labelledby="confirm-title" onClose=${onClose}>
    ${
      ask &&
      html`<h2 id="confirm-title">${ask.title}</h2>
        <p>${ask.text}</p>
        <div class="buttons">
          <button type="button" autofocus onClick=${onClose}>Cancel</button>
          <button type="button" class="danger" onClick=${confirm}>${ask.confirm}</button>
        </div>`
    }
  </dialog>`;
};

/** The auto-refresh switch every live page shows. */
export const AutoRefresh = ({ auto, setAuto, onRefresh }) =>
  html`<div class="refresh">
    <label
      ><input type="checkbox" checked=${auto} onChange=${(e) => setAuto(e.currentTarget.checked)} /> Auto-refresh (5
      s)</label
    >
    <button type="button" onClick=${onRefresh}>Refresh now</button>
  </div>`;

/** A labelled form control: the label names the control by its id. */
export const Field = ({ id, label, children }) =>
  html`<div class="field"><label for=${id}>${label}</label>${children}</div>`;
