/** Where a Redis Cluster is and how to reach it: seed nodes, and the auth and TLS every node shares. */
export interface RedisClusterSettings {
  /** Seed nodes: the client learns the other masters (and their slots) from any one of them. */
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly username?: string;
  readonly password?: string;
  /** Connect to every node over TLS (system CAs). */
  readonly tls: boolean;
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const parseNode = (s: string): { host: string; port: number } => {
  const m = HOST_PORT.exec(s.trim());
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw new Error(`'${s.trim()}' is not host:port`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
};

/**
 * Reads REDIS_CLUSTER_NODES: `host:port,host:port,…`, or the URL form
 * `redis+cluster://[user:password@]host:port,host:port[/?tls=true]` (`rediss+cluster://` is TLS). The URL
 * form is the only one that carries credentials; user and password are percent-decoded.
 */
export const parseRedisClusterNodes = (raw: string): RedisClusterSettings => {
  const url = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]*)\/?(?:\?([^#]*))?$/.exec(raw.trim());
  if (!url && /^[a-z+]+:\/\//i.test(raw.trim())) {
    throw new Error('expected host:port,… or redis+cluster://[user:password@]host:port,…[/?tls=true]');
  }
  const list = url ? url[3]! : raw;
  const nodes = list
    .split(',')
    .filter((s) => s.trim() !== '')
    .map(parseNode);
  if (nodes.length === 0) throw new Error('expected at least one host:port');
  if (!url) return { nodes, tls: false };
  const [user = '', password] = (url[2] ?? '').split(/:(.*)/s);
  const params = new URLSearchParams(url[4] ?? '');
  for (const name of params.keys()) if (name !== 'tls') throw new Error(`unknown parameter '${name}' (only tls)`);
  const tlsParam = params.get('tls');
  if (tlsParam !== null && tlsParam !== 'true' && tlsParam !== 'false') throw new Error('tls must be true or false');
  return {
    nodes,
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(password !== undefined ? { password: decodeURIComponent(password) } : {}),
    tls: url[1] === 'rediss' || tlsParam === 'true',
  };
};
