// ort_bench.js - times ONNX Runtime (npm onnxruntime-node) the way `crun bench --json`
// times crun: load, first run, then warm-up and timed runs on the same inputs; prints one
// JSON object with load_ms, first_run_ms, median_ms, p90_ms, min_ms.
//   node ort_bench.js ORT_MODULE_DIR MODEL THREADS WARMUP RUNS NAME=FILE.npy...
'use strict';
const fs = require('fs');
const path = require('path');

const NPY = {'<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array]};

function readNpy(file) {
  const b = fs.readFileSync(file);
  const hlen = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + hlen);
  const descr = header.match(/'descr':\s*'([^']+)'/)[1];
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
  const raw = b.subarray(10 + hlen);
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  const [type, Arr] = NPY[descr];
  return {type, shape, data: new Arr(copy.buffer)};
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const [ortDir, model, threads, warmup, runs, ...inputs] = process.argv.slice(2);
  const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));
  const feeds = {};
  for (const spec of inputs) {
    const eq = spec.lastIndexOf('=');
    const t = readNpy(spec.slice(eq + 1));
    feeds[spec.slice(0, eq)] = new ort.Tensor(t.type, t.data, t.shape);
  }
  const t0 = now();
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all', executionMode: 'sequential', intraOpNumThreads: Number(threads),
    interOpNumThreads: 1});
  const load = now() - t0;
  let t1 = now();
  await session.run(feeds);
  const first = now() - t1;
  for (let i = 0; i < Number(warmup); i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < Number(runs); i++) {
    t1 = now();
    await session.run(feeds);
    times.push(now() - t1);
  }
  times.sort((a, b) => a - b);
  const pick = p => times[Math.min(times.length - 1, Math.max(0, Math.ceil(p * times.length) - 1))];
  console.log(JSON.stringify({load_ms: load, first_run_ms: first, median_ms: pick(0.5), p90_ms: pick(0.9),
                              min_ms: times[0], runs: times.length}));
}

main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
