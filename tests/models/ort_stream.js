// ort_stream.js - ONNX Runtime reference for a streaming model: feeds AUDIO.npy (float32
// [n]) in chunks of CHUNK samples to a Silero-VAD-style model (inputs input, state, sr;
// outputs output, stateN), carrying the state across calls, and writes the per-chunk
// outputs (OUTDIR/output.npy [chunks, ...]) and the final state (OUTDIR/state.npy).
//   node ort_stream.js ORT_MODULE_DIR MODEL OUTDIR AUDIO.npy CHUNK SAMPLE_RATE
'use strict';
const fs = require('fs');
const path = require('path');

function readF32(file) {
  const b = fs.readFileSync(file);
  const hlen = b.readUInt16LE(8);
  const raw = b.subarray(10 + hlen);
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return new Float32Array(copy.buffer);
}

function writeF32(file, data, dims) {
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + (dims.length === 1 ? dims[0] + ',' : dims.join(', ')) + '), }';
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

async function main() {
  const [ortDir, model, outDir, audioFile, chunkStr, srStr] = process.argv.slice(2);
  const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));
  const session = await ort.InferenceSession.create(model, {executionMode: 'sequential'});
  const audio = readF32(audioFile), chunk = Number(chunkStr);
  let state = new ort.Tensor('float32', new Float32Array(2 * 128), [2, 1, 128]);
  const sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(srStr)]), []);
  const outs = [];
  for (let off = 0; off + chunk <= audio.length; off += chunk) {
    const input = new ort.Tensor('float32', audio.slice(off, off + chunk), [1, chunk]);
    const r = await session.run({input, state, sr});
    outs.push(...r.output.data);
    state = r.stateN;
  }
  writeF32(path.join(outDir, 'output.npy'), Float32Array.from(outs), [outs.length]);
  writeF32(path.join(outDir, 'state.npy'), state.data, state.dims);
}

main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
