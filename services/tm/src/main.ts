import cluster from 'node:cluster';
import { startManagedRedis } from '@dtm-ts/adapters';
import { loadConfig, type Config } from '@dtm-ts/config';
import { runMain } from '@dtm-ts/runtime';
import { createLogger, type Logger } from '@dtm-ts/telemetry';
import { startMetricsServer } from '@dtm-ts/worker';
import { startTm } from './all-in-one';
import { READY_MESSAGE, startTmProcesses } from './processes';

/** Set by the primary for its processes: the socket of the redis-server it manages for all of them. */
const MANAGED_REDIS_SOCKET = 'DTM_MANAGED_REDIS_SOCKET';

/** One TM process: API and worker. Alone (TM_PROCESSES=1) it manages its own redis-server when REDIS_URL is unset. */
const runTm = async (config: Config, logger: Logger): Promise<() => Promise<void>> => {
  const redisSocket = process.env[MANAGED_REDIS_SOCKET];
  const tm = await startTm(config, logger, { manageRedis: !redisSocket, redisSocket });
  // Under the primary, PORT's /api/metrics answers for whichever process took the connection: process i also
  // serves its own on METRICS_PORT + i (or the next free port after it).
  const index = Number(process.env.TM_PROCESS_INDEX ?? 0);
  const metricsPort = config.metricsPort === 0 ? 0 : Math.min(65535, config.metricsPort + index);
  const metrics = cluster.isWorker
    ? await startMetricsServer(
        { port: metricsPort, host: config.host, warn: (fields, msg) => logger.warn(fields, msg) },
        (req, res) => tm.infra.metrics.handle(req, res),
      )
    : null;
  logger.info(
    {
      api: `${tm.url}/api/dtmsvr`,
      grpc: tm.api.grpc?.target ?? 'off',
      redis:
        config.redisUrl ??
        (config.redisCluster
          ? `cluster ${config.redisCluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`
          : `managed under ${config.dataDir}/redis`),
      ...(cluster.isWorker ? { process: index, pid: process.pid, metricsPort: metrics?.port } : {}),
    },
    'dtm-ts is up',
  );
  process.send?.(READY_MESSAGE);
  // The primary gone (killed), nobody restarts or stops us: shut down as on SIGTERM rather than linger.
  if (cluster.isWorker) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  return async () => {
    await metrics?.close();
    await tm.close();
  };
};

/** TM_PROCESSES > 1: one redis-server (when managed) and the processes sharing the ports, restarted when they die. */
const runPrimary = async (config: Config, logger: Logger): Promise<() => Promise<void>> => {
  const managed =
    config.redisUrl || config.redisCluster
      ? undefined
      : await startManagedRedis({ dataDir: config.dataDir, log: (msg) => logger.info(msg) });
  const env: Record<string, string> = managed ? { [MANAGED_REDIS_SOCKET]: managed.path } : {};
  try {
    const processes = await startTmProcesses(config.tmProcesses, env, logger);
    logger.info(
      { processes: processes.pids(), port: config.port, grpcPort: config.grpcPort },
      'dtm-ts processes are up',
    );
    return async () => {
      await processes.stop();
      await managed?.stop();
    };
  } catch (err) {
    await managed?.stop();
    throw err;
  }
};

runMain('dtm-ts', async () => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'dtm-ts');
  return config.tmProcesses > 1 && cluster.isPrimary ? runPrimary(config, logger) : runTm(config, logger);
});
