import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { EventLog, ReadModel } from '@dtm-ts/ports';
import type { RetryAlert } from '@dtm-ts/runtime';
import { BadRequest } from '../http/bad-request';

/** What the console's own JSON routes read. */
export interface ConsoleDeps {
  readonly readModel: Pick<ReadModel, 'get' | 'list' | 'overdue'>;
  readonly log: EventLog;
  /** Alerts raised (newest first), see ALERT_RETRY_LIMIT. */
  readonly alerts: (limit: number) => Promise<RetryAlert[]>;
  /** Exact number of unfinished transactions. */
  readonly unfinishedCount: () => Promise<number>;
  readonly settings: {
    readonly traceUrlTemplate?: string;
    readonly alertRetryLimit: number;
    readonly alertWebhook: boolean;
  };
  readonly now: () => number;
}

/** Pages of the single-page console; each serves the same shell, the script reads the path. */
export const CONSOLE_PAGES = ['/', '/unfinished', '/alerts', '/topics', '/tx/:gid'] as const;

/**
 * No inline script or style, nothing from elsewhere: the console is plain modules from this origin,
 * and gids and payloads (attacker-controlled) are only ever rendered as text.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>dtm-ts console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/style.css">
<script type="module" src="/console/app.js"></script>
</head>
<body>
<div id="app"><p class="loading">Loading the console…</p></div>
<noscript>The dtm-ts console needs JavaScript.</noscript>
</body>
</html>
`;

interface Asset {
  readonly body: string;
  readonly type: string;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The console's front-end sources: plain ES modules and one stylesheet, served as they are. */
export const CONSOLE_WEB_DIR = join(here, '..', '..', 'console');

const loadAssets = (): Map<string, Asset> => {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(CONSOLE_WEB_DIR)) {
    const type = name.endsWith('.js') ? 'text/javascript' : name.endsWith('.css') ? 'text/css' : undefined;
    if (type) assets.set(name, { body: readFileSync(join(CONSOLE_WEB_DIR, name), 'utf8'), type });
  }
  // Preact and htm from node_modules; the hooks module's bare `preact` import points at our copy.
  const require = createRequire(import.meta.url);
  const sibling = (entry: string, file: string) => readFileSync(join(dirname(require.resolve(entry)), file), 'utf8');
  const js = (body: string): Asset => ({ body, type: 'text/javascript' });
  assets.set('vendor/preact.mjs', js(sibling('preact', 'preact.mjs')));
  assets.set(
    'vendor/hooks.mjs',
    js(sibling('preact/hooks', 'hooks.mjs').replace(/from\s*["']preact["']/g, 'from"./preact.mjs"')),
  );
  assets.set('vendor/htm.mjs', js(sibling('htm', 'htm.mjs')));
  return assets;
};

const securityHeaders = (res: Response): void => {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-cache');
};

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace id of a W3C traceparent, or null. */
export const traceIdOf = (traceparent: string | undefined): string | null => {
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null;
  return m && !/^0+$/.test(m[1]!) ? m[1]! : null;
};

const limitOf = (req: Request, dflt: number, max: number): number => {
  const raw = req.query.limit;
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n) || n < 1 || n > max)
    throw new BadRequest(`limit must be an integer from 1 to ${max}`);
  return n;
};

type Handler = (req: Request) => Promise<unknown>;
const json = (h: Handler) => (req: Request, res: Response, next: NextFunction) => {
  h(req).then((body) => res.json(body), next);
};

/** Transactions the status counts look at, newest first: bounded so a large read model stays cheap. */
export const COUNT_SCAN = 5000;

/**
 * The admin console: its pages (`/`, `/tx/<gid>`, …), its scripts under `/console/`, and the JSON it
 * needs beyond DTM's API under `/api/console/`.
 */
export const consoleRouter = (deps: ConsoleDeps): Router => {
  const assets = loadAssets();
  const r = express.Router();
  for (const page of CONSOLE_PAGES) {
    r.get(page, (_req, res) => {
      securityHeaders(res);
      res.type('html').send(SHELL);
    });
  }
  r.get(/^\/console\/(.+)$/, (req, res, next) => {
    const asset = assets.get(String((req.params as Record<string, string>)[0]));
    if (!asset) return next();
    securityHeaders(res);
    res.type(asset.type).send(asset.body);
  });

  r.get(
    '/api/console/settings',
    json(() => Promise.resolve(deps.settings)),
  );

  r.get(
    '/api/console/unfinished',
    json(async (req) => {
      const now = deps.now();
      const due = await deps.readModel.overdue(Number.MAX_SAFE_INTEGER, limitOf(req, 100, 1000));
      const rows = await Promise.all(due.map(async (d) => ({ d, s: await deps.readModel.get(d.gid) })));
      return {
        transactions: rows.flatMap(({ d, s }) =>
          s && s.status !== 'succeed' && s.status !== 'failed'
            ? [
                {
                  ...s.record,
                  wake_time: new Date(d.wakeAt).toISOString(),
                  overdue_s: Math.max(0, (now - d.wakeAt) / 1000),
                },
              ]
            : [],
        ),
        total: await deps.unfinishedCount(),
      };
    }),
  );

  r.get(
    '/api/console/counts',
    json(async () => {
      const counts: Record<string, number> = {};
      let position = '';
      let scanned = 0;
      do {
        const page = await deps.readModel.list({ position, limit: Math.min(1000, COUNT_SCAN - scanned) });
        for (const s of page.items) counts[s.status] = (counts[s.status] ?? 0) + 1;
        scanned += page.items.length;
        position = page.next;
      } while (position && scanned < COUNT_SCAN);
      return { counts, scanned, complete: position === '', unfinished: await deps.unfinishedCount() };
    }),
  );

  r.get(
    '/api/console/alerts',
    json(async (req) => ({ alerts: await deps.alerts(limitOf(req, 100, 1000)) })),
  );

  r.get(
    '/api/console/tx',
    json(async (req) => {
      const gid = typeof req.query.gid === 'string' ? req.query.gid : '';
      if (gid === '') throw new BadRequest('no gid specified');
      const { events } = await deps.log.read(gid);
      const first = events[0];
      const traceId = traceIdOf(first?.type === 'TransactionPrepared' ? first.data.trace : undefined);
      const template = deps.settings.traceUrlTemplate;
      return {
        gid,
        trace_id: traceId,
        trace_url: traceId && template ? template.replaceAll('{traceId}', traceId) : null,
        alerts: (await deps.alerts(1000)).filter((a) => a.gid === gid),
      };
    }),
  );
  return r;
};
