import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mysqlBarrierDdl } from './mysql';
import { pgBarrierDdl } from './postgres';

/** The statements of a shipped .sql file, comments dropped. */
const statements = (file: string): string[] =>
  readFileSync(new URL(`../sql/${file}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('--'))
    .join('\n')
    .split(';\n')
    .map((s) => s.trim().replace(/;$/, ''))
    .filter((s) => s !== '');

describe('the shipped barrier DDL', () => {
  it('when the .sql files are read, then they hold exactly what the createTable helpers run', () => {
    expect(statements('barrier.postgres.sql')).toEqual(pgBarrierDdl());
    expect(statements('barrier.mysql.sql')).toEqual(mysqlBarrierDdl());
  });

  it('when PostgreSQL DDL is made for any table, then its unique key is the constraint uniq_barrier', () => {
    expect(pgBarrierDdl('bank.barrier').at(-1)).toContain(
      'CONSTRAINT uniq_barrier UNIQUE (gid, branch_id, op, barrier_id)',
    );
    expect(pgBarrierDdl('barrier')).toHaveLength(2); // no schema to create
  });
});
