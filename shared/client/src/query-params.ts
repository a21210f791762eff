/** A parsed query string: express's `req.query`, a `URLSearchParams`, or a plain record of strings. */
export type QueryLike = URLSearchParams | Readonly<Record<string, unknown>>;

/** DTM strips these from gid and other values taken from a query (`dtmimp.Escape`). */
const escape = (s: string): string => s.replace(/[\n\r;]/g, '');

/** One value of a query parameter ('' when absent; the first when repeated). */
export const queryValue = (query: QueryLike, key: string): string => {
  if (query instanceof URLSearchParams) return escape(query.get(key) ?? '');
  const v = query[key];
  const first: unknown = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? escape(first) : '';
};
