// ort_run.js - runs a model with ONNX Runtime (npm onnxruntime-node) on .npy inputs and
// writes each output as OUTDIR/<name>.npy. Used by the tests to make reference outputs.
//   node ort_run.js ORT_MODULE_DIR MODEL OUTDIR [--threads N] NAME=FILE.npy...
'use strict';
const fs = require('fs');
const path = require('path');

const NPY = {'<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i8': ['int64', BigInt64Array],
             '<i4': ['int32', Int32Array], '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array],
             '|b1': ['bool', Uint8Array]};

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(file + ': not a .npy file');
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  const descr = header.match(/'descr':\s*'([^']+)'/)[1];
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
  const [type, Arr] = NPY[descr] || [];
  if (!type) throw new Error(file + ': unsupported dtype ' + descr);
  const raw = b.subarray(hstart + hlen);
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  const data = new Arr(copy.buffer);
  return {type, shape, data: type === 'bool' ? Array.from(data, v => v !== 0) : data};
}

function writeNpy(file, tensor) {
  const descr = Object.keys(NPY).find(k => NPY[k][0] === tensor.type);
  if (!descr) throw new Error('cannot write ' + tensor.type);
  const dims = tensor.dims.length === 1 ? tensor.dims[0] + ',' : tensor.dims.join(', ');
  let header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + '), }';
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.type === 'bool' ? Uint8Array.from(tensor.data, v => (v ? 1 : 0)) : tensor.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
                                        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

async function main() {
  const [ortDir, model, outDir, ...rest] = process.argv.slice(2);
  const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));
  const opts = {graphOptimizationLevel: 'all', executionMode: 'sequential'};
  const feeds = {};
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--threads') { opts.intraOpNumThreads = Number(rest[++i]); continue; }
    const eq = rest[i].lastIndexOf('=');
    const t = readNpy(rest[i].slice(eq + 1));
    feeds[rest[i].slice(0, eq)] = new ort.Tensor(t.type, t.data, t.shape);
  }
  const session = await ort.InferenceSession.create(model, opts);
  const out = await session.run(feeds);
  for (const name of session.outputNames) {
    const safe = name.replace(/[^A-Za-z0-9_]/g, '_');
    writeNpy(path.join(outDir, safe + '.npy'), out[name]);
  }
}

main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
