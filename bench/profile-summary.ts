/**
 * Summarizes a V8 .cpuprofile (from `BENCH_PROFILE=1 npm run bench`): self time by package and by
 * function, so the benchmark note can say where the time goes. Usage: tsx bench/profile-summary.ts FILE
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
const file = process.argv[2];
if (!file) throw new Error('usage: profile-summary FILE.cpuprofile');
const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const self = new Map<number, number>();
prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const byPkg = new Map<string, number>();
const byFn = new Map<string, number>();
const pkgOf = (url: string): string => {
  if (!url) return '(native/gc/idle)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return url;
  const ours = /(shared|services)\/([^/]+)/.exec(url);
  return ours ? `@dtm-ts/${ours[2]}` : url;
};
for (const n of prof.nodes) {
  const t = self.get(n.id) ?? 0;
  if (!t) continue;
  const pkg = n.callFrame.functionName === '(idle)' ? '(idle)' : pkgOf(n.callFrame.url);
  byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + t);
  const fn = `${n.callFrame.functionName || '(anonymous)'} ${pkg}:${n.callFrame.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + t);
}
const show = (title: string, m: Map<string, number>, k: number) => {
  console.log(title);
  for (const [name, t] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k)) {
    console.log(`  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${name}`);
  }
};
console.log(`total ${(total / 1000).toFixed(0)} ms sampled`);
show('self time by package:', byPkg, 15);
show('self time by function:', byFn, 25);
