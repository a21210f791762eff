import { spawn, type ChildProcess } from 'node:child_process';
import { request, type Dispatcher } from 'undici';

/**
 * Starts the all-in-one TM (`services/tm/src/main.ts`) as its own process, as users run it, with `env` on top
 * of this process's environment, and resolves once its API answers; `api` is its `/api/dtmsvr` base URL.
 */
export const startTmProcess = async (
  port: number,
  env: Record<string, string>,
  client: Dispatcher,
  nodeArgs: readonly string[] = [],
): Promise<{ tm: ChildProcess; api: string }> => {
  const tm = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'services/tm/src/main.ts'], {
    // No gRPC API unless asked (36790 may be taken by another TM on this machine).
    env: { ...process.env, PORT: String(port), GRPC_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const api = `http://127.0.0.1:${port}/api/dtmsvr`;
  for (let i = 0; ; i++) {
    try {
      const r = await request(`${api}/version`, { dispatcher: client });
      await r.body.text();
      if (r.statusCode === 200) return { tm, api };
    } catch {
      if (i > 300) throw new Error('TM did not start');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** The benchmarks' saga: two steps against the RM at `rmUrl`, each with its compensation, as a submit body. */
export const twoStepSaga = (gid: string, rmUrl: string): string =>
  JSON.stringify({
    gid,
    trans_type: 'saga',
    steps: [
      { action: `${rmUrl}/TransOut`, compensate: `${rmUrl}/TransOutRevert` },
      { action: `${rmUrl}/TransIn`, compensate: `${rmUrl}/TransInRevert` },
    ],
    payloads: ['{"amount":30}', '{"amount":30}'],
  });
