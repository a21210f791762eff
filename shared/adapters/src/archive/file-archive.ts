import { createHash, randomUUID } from 'node:crypto';
import { statfsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { Gid, TxEvent } from '@dtm-ts/domain';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * Where finished transactions go when they leave the live log (FINISHED_RETENTION after they end): their
 * whole stream, readable by gid for /query, /events and replay. Writes are durable before they resolve.
 */
export interface TxArchive {
  /**
   * Stores `gid`'s whole stream (its events as JSON, in revision order); resolves once it is durable.
   * Storing a gid again replaces it (an archiver that crashed before deleting the live copy repeats itself).
   */
  put(gid: Gid, events: readonly string[]): Promise<void>;
  /** The archived events of `gid`, or null when it was never archived. */
  get(gid: Gid): Promise<TxEvent[] | null>;
  /** True when `gid` is archived (cheaper than `get`). */
  has(gid: Gid): Promise<boolean>;
  /** Every archived transaction with its events, in no particular order. */
  scan(): AsyncIterable<{ gid: Gid; events: TxEvent[] }>;
}

const SUFFIX = '.ndjson.gz';

/** statfs types of local filesystems (linux/magic.h): ext2-4, xfs, btrfs, tmpfs, overlayfs, zfs, f2fs. */
const LOCAL_FS_TYPES: ReadonlySet<number> = new Set([
  0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1, 0xf2f52010,
]);

/**
 * True when `dir` (or, before it exists, its nearest existing parent) is on a local filesystem; false on NFS,
 * SMB, FUSE or anything not known to be local, or where statfs is not available.
 */
const isLocalFs = (dir: string): boolean => {
  for (let d = dir; ; d = dirname(d)) {
    try {
      return LOCAL_FS_TYPES.has(statfsSync(d).type);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) return false;
    }
  }
};

/**
 * {@link TxArchive} as files: one gzip-compressed NDJSON file per transaction (a header line
 * `{"gid":…,"events":n}`, then one event per line), at `<dir>/<h0h1>/<h2h3>/<sha256(gid)>.ndjson.gz`. The
 * name is a hash because gids may hold any character; two fan-out levels keep directories small.
 *
 * Durable and atomic: a file is written under a temporary name, fsynced, renamed into place and its
 * directory fsynced, so a reader sees the whole file or none, and a crash leaves at most a stray `.tmp`.
 * Several hosts share one archive through a shared volume (NFS, a ReadWriteMany volume): an API host reads
 * what a worker on another host archived.
 */
export class FileArchive implements TxArchive {
  /** Whether `has` may stat synchronously: the archive is on a local filesystem (see {@link isLocalFs}). */
  private readonly localLookups: boolean;

  constructor(readonly dir: string) {
    this.localLookups = isLocalFs(dir);
  }

  /** The file of `gid`. */
  pathOf(gid: Gid): string {
    const h = createHash('sha256').update(gid).digest('hex');
    return join(this.dir, h.slice(0, 2), h.slice(2, 4), `${h}${SUFFIX}`);
  }

  async put(gid: Gid, events: readonly string[]): Promise<void> {
    const path = this.pathOf(gid);
    const folder = join(path, '..');
    await mkdir(folder, { recursive: true });
    const body = await gzipAsync(`${JSON.stringify({ gid, events: events.length })}\n${events.join('\n')}\n`);
    const tmp = `${path}.${randomUUID().slice(0, 8)}.tmp`;
    const file = await open(tmp, 'wx');
    try {
      await file.writeFile(body);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    // The rename is durable only once the directory entry is.
    const dirHandle = await open(folder, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }

  async get(gid: Gid): Promise<TxEvent[] | null> {
    const found = await this.readFile(this.pathOf(gid));
    if (!found) return null;
    if (found.gid !== gid) throw new Error(`archive file ${this.pathOf(gid)} holds '${found.gid}', not '${gid}'`);
    return found.events;
  }

  /**
   * Asked on every new gid. On a local disk one synchronous stat (~3 CPU-µs): the asynchronous one costs 30–80
   * CPU-µs through the thread pool and an ENOENT error object, more than the rest of a submit's decision. On a
   * network volume a lookup of a new name is a round trip to the server, which must not hold up the event loop.
   */
  async has(gid: Gid): Promise<boolean> {
    const path = this.pathOf(gid);
    if (this.localLookups) return statSync(path, { throwIfNoEntry: false }) !== undefined;
    try {
      await stat(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async *scan(): AsyncIterable<{ gid: Gid; events: TxEvent[] }> {
    for (const a of await this.list(this.dir)) {
      for (const b of await this.list(join(this.dir, a))) {
        for (const name of await this.list(join(this.dir, a, b))) {
          if (!name.endsWith(SUFFIX)) continue; // a stray .tmp from a crash mid-write
          const found = await this.readFile(join(this.dir, a, b, name));
          if (found) yield found;
        }
      }
    }
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return (await readdir(dir)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  private async readFile(path: string): Promise<{ gid: Gid; events: TxEvent[] } | null> {
    let raw: Buffer;
    try {
      raw = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const lines = (await gunzipAsync(raw)).toString('utf8').split('\n');
    const header = JSON.parse(lines[0] ?? '') as { gid: Gid; events: number };
    const events = lines.slice(1, 1 + header.events).map((l) => JSON.parse(l) as TxEvent);
    if (events.length !== header.events) throw new Error(`archive file ${path} is incomplete`);
    return { gid: header.gid, events };
  }
}
