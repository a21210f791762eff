import { z } from 'zod';
import { parseApiTokens, parseTrustedNets } from './auth-settings';
import { parseRedisClusterNodes } from './redis-cluster';

export * from './auth-settings';
export * from './redis-cluster';

/** A setting parsed by `parse`, its errors reported without the value (which may be a secret). */
const parsed = <T>(parse: (s: string) => T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return parse(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional();

/** One entry per setting: environment variable, schema with default, and what it is for (the README table is generated from it). */
const settings = {
  port: {
    env: 'PORT',
    schema: z.coerce.number().int().min(0).max(65535).default(36789),
    doc: 'HTTP port of the API (DTM: 36789)',
  },
  grpcPort: {
    env: 'GRPC_PORT',
    schema: z.coerce.number().int().min(0).max(65535).default(36790),
    doc: "gRPC port of the API, DTM's service dtmgimp.Dtm (DTM: 36790); 0: no gRPC API",
  },
  host: { env: 'HOST', schema: z.string().default('0.0.0.0'), doc: 'Address the API listens on (HTTP and gRPC)' },
  apiTokens: {
    env: 'API_TOKENS',
    schema: parsed(parseApiTokens),
    secret: true,
    doc: 'Bearer tokens of the API and their scopes, `<token>:client,<token>:admin`; set: callers need one (see Security)',
  },
  apiTokensFile: {
    env: 'API_TOKENS_FILE',
    schema: z.string().optional(),
    doc: 'File of API tokens, one `<token>:<scope>` per line (`#` comments); read at start, added to API_TOKENS',
  },
  apiTrustedNets: {
    env: 'API_TRUSTED_NETS',
    schema: parsed(parseTrustedNets),
    doc: 'CIDRs whose callers need no token, `10.0.0.0/8,fd00::/8,127.0.0.1/32=admin` (scope client unless `=admin`)',
  },
  redisUrl: {
    env: 'REDIS_URL',
    schema: z
      .string()
      .url()
      .refine((u) => !/^rediss?\+cluster:/i.test(u), 'a cluster URL goes in REDIS_CLUSTER_NODES')
      .optional(),
    doc: 'Redis for the event log, read model and queues. Unset: `npm start` runs its own redis-server (AOF on) under DATA_DIR',
  },
  redisCluster: {
    env: 'REDIS_CLUSTER_NODES',
    schema: parsed(parseRedisClusterNodes),
    secret: true,
    doc: 'Redis Cluster instead of REDIS_URL: seed nodes `host:port,…`, or `redis+cluster://[user:password@]host:port,…[/?tls=true]` (see Redis Cluster)',
  },
  eventStore: {
    env: 'EVENT_STORE',
    schema: z.enum(['redis', 'esdb']).default('redis'),
    doc: 'Where the event log lives: `redis` or `esdb` (EventStoreDB at ESDB_URL); read model, queues, leases stay in Redis',
  },
  esdbUrl: {
    env: 'ESDB_URL',
    schema: z
      .string()
      .regex(/^esdb(\+discover)?:\/\/\S+$/, 'expected an EventStoreDB connection string, esdb://host:2113?tls=false')
      .optional(),
    doc: 'EventStoreDB connection string, `esdb://host:2113?tls=false` (`esdb+discover://…` for a cluster); needed for esdb',
  },
  dataDir: {
    env: 'DATA_DIR',
    schema: z.string().default('data'),
    doc: 'Where the managed redis-server keeps its files',
  },
  prefix: {
    env: 'KEY_PREFIX',
    schema: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('dtm'),
    doc: 'Prefix of every Redis key and queue name',
  },
  partitions: {
    env: 'LOG_PARTITIONS',
    schema: z.coerce.number().int().min(1).max(1024).default(4),
    doc: 'Partitions of the Redis event log (hash slots); fixed for the life of the data. On a cluster: ≥ 4 × masters',
  },
  passQueues: {
    env: 'PASS_QUEUES',
    schema: z.coerce.number().int().min(1).max(1024).optional(),
    doc: 'BullMQ pass queues, each serving every PASS_QUEUES-th partition; the same on every process. Unset: 1 on one Redis, LOG_PARTITIONS on a cluster',
  },
  kafkaBrokers: {
    env: 'KAFKA_BROKERS',
    schema: z
      .string()
      .regex(
        /^\s*(\[[^\]]+\]|[^\s,:[\]]+):\d{1,5}\s*(,\s*(\[[^\]]+\]|[^\s,:[\]]+):\d{1,5}\s*)*$/,
        'expected host:port,…',
      )
      .transform((s) => s.split(',').map((b) => b.trim()))
      .optional(),
    doc: 'Kafka bootstrap brokers, `host:port,…`, for msg steps whose action is `kafka://<topic>`. Unset: such steps are refused (422)',
  },
  kafkaClientId: {
    env: 'KAFKA_CLIENT_ID',
    schema: z.string().min(1).default('dtm-ts'),
    doc: 'Client id the TM gives Kafka (quotas, broker logs)',
  },
  kafkaSsl: {
    env: 'KAFKA_SSL',
    schema: z.stringbool().default(false),
    doc: 'Connect to Kafka over TLS (system CAs)',
  },
  kafkaSaslMechanism: {
    env: 'KAFKA_SASL_MECHANISM',
    schema: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
    doc: 'Kafka SASL mechanism: plain, scram-sha-256 or scram-sha-512 (needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD)',
  },
  kafkaSaslUsername: {
    env: 'KAFKA_SASL_USERNAME',
    schema: z.string().optional(),
    doc: 'Kafka SASL user name',
  },
  kafkaSaslPassword: {
    env: 'KAFKA_SASL_PASSWORD',
    schema: z.string().optional(),
    doc: 'Kafka SASL password (never logged)',
  },
  kafkaTopicAllow: {
    env: 'KAFKA_TOPIC_ALLOW',
    schema: z.string().optional(),
    doc: 'Topics `kafka://` steps may name: comma-separated globs (`orders.*`, `audit-?`). Unset: any but internal `__*` topics',
  },
  kafkaAutoCreateTopics: {
    env: 'KAFKA_AUTO_CREATE_TOPICS',
    schema: z.stringbool().default(false),
    doc: 'Let the brokers create a missing topic on its first record (where they allow it); off, a missing topic is an error',
  },
  outboundAllow: {
    env: 'OUTBOUND_ALLOW',
    schema: z.string().optional(),
    doc: 'Only these hosts may be called: comma-separated hosts, `.suffix` domains, CIDRs, `*`, each optionally `:port`',
  },
  outboundDeny: {
    env: 'OUTBOUND_DENY',
    schema: z.string().optional(),
    doc: 'Hosts never called (same forms as OUTBOUND_ALLOW; deny wins), beyond the built-in denials (Security)',
  },
  branchSigningKey: {
    env: 'BRANCH_SIGNING_KEY',
    // Its length is checked where it is used, so that an error never prints the key.
    schema: z.string().optional(),
    doc: 'Key of the HMAC-SHA256 `dtm-signature` on every branch call (never logged). Unset: calls are not signed',
  },
  branchSigningKeyFile: {
    env: 'BRANCH_SIGNING_KEY_FILE',
    schema: z.string().optional(),
    doc: 'File holding BRANCH_SIGNING_KEY (surrounding whitespace ignored), e.g. a mounted secret',
  },
  retryIntervalS: {
    env: 'RETRY_INTERVAL',
    schema: z.coerce.number().int().min(1).default(10),
    doc: 'Default base retry interval, seconds (DTM RetryInterval); ONGOING retries at this fixed interval',
  },
  timeoutToFailS: {
    env: 'TIMEOUT_TO_FAIL',
    schema: z.coerce.number().int().min(1).default(35),
    doc: 'Default timeout of tcc/xa/msg transactions, seconds (saga only times out when asked)',
  },
  requestTimeoutS: {
    env: 'REQUEST_TIMEOUT',
    schema: z.coerce.number().int().min(1).default(3),
    doc: 'Default timeout of one branch call, seconds',
  },
  backoffCapS: {
    env: 'RETRY_BACKOFF_CAP',
    schema: z.coerce.number().int().min(1).default(3600),
    doc: 'Longest delay between retries after errors, seconds (DTM: unbounded)',
  },
  metricsPort: {
    env: 'METRICS_PORT',
    schema: z.coerce.number().int().min(0).max(65535).default(9464),
    doc: "Worker role: port of its own GET /metrics (0: none); TM_PROCESSES > 1: process i's on METRICS_PORT + i. The API serves GET /api/metrics on PORT",
  },
  projectionLeaseMs: {
    env: 'PROJECTION_LEASE_MS',
    schema: z.coerce.number().int().min(1000).default(10000),
    doc: "EVENT_STORE=esdb: lease of the one worker that projects the log into the read model; a dead one's is taken over after about 4/3 of it",
  },
  workerConcurrency: {
    env: 'WORKER_CONCURRENCY',
    schema: z.coerce.number().int().min(1).max(10000).default(200),
    doc: 'Transactions one worker drives at once',
  },
  tmProcesses: {
    env: 'TM_PROCESSES',
    schema: z.coerce.number().int().min(1).max(256).default(1),
    doc: '`npm start`: TM processes sharing PORT and GRPC_PORT (node:cluster), each with its metrics on METRICS_PORT…+10; a crashed one is restarted',
  },
  inlinePasses: {
    env: 'INLINE_PASSES',
    schema: z.coerce.number().int().min(0).default(512),
    doc: 'All-in-one TM: passes it drives itself right after a submit (0: queue every one). The API role always queues',
  },
  jobLockMs: {
    env: 'JOB_LOCK_MS',
    schema: z.coerce.number().int().min(1000).default(10000),
    doc: "Lock of a pass job; a dead worker's pass is taken over after about this long",
  },
  passJobAttempts: {
    env: 'PASS_JOB_ATTEMPTS',
    schema: z.coerce.number().int().min(1).max(1000).default(5),
    doc: 'Runs of a pass job that threw (an outage: a failing pass records PassFailed instead) before the sweep takes over',
  },
  passJobBackoffMs: {
    env: 'PASS_JOB_BACKOFF_MS',
    schema: z.coerce.number().int().min(1).default(1000),
    doc: 'Delay before a pass job that threw runs again; it doubles for each run after',
  },
  sweepIntervalMs: {
    env: 'SWEEP_INTERVAL_MS',
    schema: z.coerce.number().int().min(100).default(5000),
    doc: 'How often each worker looks for transactions with no pending job',
  },
  sweepGraceMs: {
    env: 'SWEEP_GRACE_MS',
    schema: z.coerce.number().int().min(100).default(10000),
    doc: 'How overdue a transaction must be before the sweep re-enqueues it',
  },
  finishedRetentionS: {
    env: 'FINISHED_RETENTION',
    schema: z.coerce
      .number()
      .int()
      .min(0)
      .default(7 * 24 * 3600),
    doc: 'Seconds a finished transaction stays in the read model (/all) and, with the Redis log, in Redis after it ends; then its stream moves to the archive. 0: forever',
  },
  archiveDir: {
    env: 'ARCHIVE_DIR',
    schema: z.string().optional(),
    doc: 'Redis log: where finished streams go after FINISHED_RETENTION (gzip NDJSON files); every API and worker host must see the same directory. Unset: DATA_DIR/archive',
  },
  maxBodyBytes: {
    env: 'MAX_BODY_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024),
    doc: 'Largest accepted request body',
  },
  maxBranches: {
    env: 'MAX_BRANCHES',
    schema: z.coerce.number().int().min(1).default(1000),
    doc: 'Most steps one transaction may have, and most branch ids registered on a TCC, XA or workflow transaction',
  },
  tracesExporter: {
    env: 'OTEL_TRACES_EXPORTER',
    schema: z.enum(['none', 'otlp']).default('none'),
    doc: 'Where traces go: none, or otlp (OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT)',
  },
  otlpEndpoint: {
    env: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    schema: z.string().url().default('http://localhost:4318/v1/traces'),
    doc: 'OTLP/HTTP traces endpoint',
  },
  traceSampleRatio: {
    env: 'OTEL_TRACES_SAMPLE_RATIO',
    schema: z.coerce.number().min(0).max(1).default(1),
    doc: "Fraction of new traces recorded (an incoming traceparent's decision is followed)",
  },
  traceUrlTemplate: {
    env: 'TRACE_URL_TEMPLATE',
    schema: z
      .string()
      .regex(/^https?:\/\/\S*\{traceId\}\S*$/, 'expected an http(s) URL containing {traceId}')
      .optional(),
    doc: 'Console: link of a trace id, `{traceId}` replaced, e.g. `http://jaeger:16686/trace/{traceId}`. Unset: no link',
  },
  alertRetryLimit: {
    env: 'ALERT_RETRY_LIMIT',
    schema: z.coerce.number().int().min(1).max(1000).default(3),
    doc: 'Alert once a branch has failed this many times in a row (DTM AlertRetryLimit); listed in the console',
  },
  alertWebhook: {
    env: 'ALERT_WEBHOOK',
    schema: z.string().url().optional(),
    doc: 'URL the TM POSTs a JSON alert to, once per crossing of ALERT_RETRY_LIMIT (DTM AlertWebHook). Unset: console only',
  },
  logLevel: {
    env: 'LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    doc: 'Log level (JSON logs on stdout)',
  },
} as const;

type Settings = typeof settings;
export type Config = { readonly [K in keyof Settings]: z.output<Settings[K]['schema']> };

/** Thrown when the environment is invalid; the message names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Builds the one frozen config of a process from the environment, failing fast on every bad variable. */
export const loadConfig = (env: NodeJS.ProcessEnv, overrides: Partial<Config> = {}): Config => {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(settings)) {
    if (key in overrides) {
      out[key] = (overrides as Record<string, unknown>)[key];
      continue;
    }
    const raw = env[s.env];
    const r = s.schema.safeParse(raw === '' ? undefined : raw);
    const shown = 'secret' in s && s.secret ? '(value not shown)' : JSON.stringify(raw);
    if (r.success) out[key] = r.data;
    else problems.push(`${s.env}=${shown}: ${r.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (out.eventStore === 'esdb' && out.esdbUrl === undefined) problems.push('ESDB_URL: required when EVENT_STORE=esdb');
  if (out.redisUrl !== undefined && out.redisCluster !== undefined) {
    problems.push('REDIS_URL and REDIS_CLUSTER_NODES: set one of them, not both');
  }
  if (typeof out.passQueues === 'number' && typeof out.partitions === 'number' && out.passQueues > out.partitions) {
    problems.push(
      `PASS_QUEUES=${out.passQueues}: at most LOG_PARTITIONS (${out.partitions}); a queue serves whole partitions`,
    );
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(out) as Config;
};

/** Rows for the README's configuration table. */
export const configDocs = (): { env: string; default: string; doc: string }[] =>
  Object.values(settings).map((s) => {
    const d = s.schema.safeParse(undefined);
    const shown = d.success && d.data !== undefined && typeof d.data !== 'object' ? String(d.data) : '';
    return { env: s.env, default: shown, doc: s.doc };
  });
