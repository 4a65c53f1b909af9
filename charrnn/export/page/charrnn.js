// charrnn's page: the recurrent step of an exported model (LSTM, GRU, SimpleRNN layers) and the
// draw rule of every charrnn sampler (docs/export.md), in plain JavaScript (and a small
// WebAssembly product kernel assembled below). Written by `charrnn export RUN --format web`; the
// same seed and options give the text charrnn.portable and `charrnn sample RUN` give.
"use strict";

const CharRNN = (() => {
  // ------------------------------------------------------------ the products
  // Every product of a step is out = bias + matrix @ x. Two kernels compute it: a WebAssembly
  // function with 128-bit SIMD (float32, four lanes; about 8x the JavaScript kernel's speed in
  // V8), used where the browser runs WebAssembly SIMD and the layers' width is a multiple of 4;
  // and plain JavaScript (float64 sums of the float32 weights) everywhere else. `?kernel=js` in the
  // page's address picks the JavaScript one.

  // The WebAssembly module, assembled here from its instructions (no binary file to trust): one
  // function matvec(matrix, x, bias, out, rows, columns), byte addresses into its memory:
  // out[j] = bias[j] + sum over i of matrix[j * columns + i] * x[i], four columns at a time.
  function wasmBytes() {
    const leb = (n) => { const out = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return out; };
    const vec = (items) => [...leb(items.length), ...items.flat()];
    const section = (id, bytes) => [id, ...leb(bytes.length), ...bytes];
    const name = (text) => [...leb(text.length), ...Array.from(text, (c) => c.charCodeAt(0))];
    const I32 = 0x7f, V128 = 0x7b;
    const get = (i) => [0x20, i], set = (i) => [0x21, i], i32 = (v) => [0x41, v];  // constants here are < 64
    const simd = (op) => [0xfd, ...leb(op)];
    const times4 = [...i32(2), 0x74];  // << 2
    const [LOAD, CONST, LANE, ADD, MUL] = [0x00, 0x0c, 0x1f, 0xe4, 0xe6];  // v128.load, v128.const, f32x4.extract_lane, f32x4.add, f32x4.mul
    // params 0 matrix, 1 x, 2 bias, 3 out, 4 rows, 5 columns; locals 6 j, 7 i, 8 row address, 9 sums (v128)
    const body = [
      ...vec([[3, I32], [1, V128]]),
      ...i32(0), ...set(6),
      0x02, 0x40, 0x03, 0x40,                                           // block; loop over rows
      ...get(6), ...get(4), 0x4f, 0x0d, 1,                              //   j >= rows: leave
      ...simd(CONST), ...new Array(16).fill(0), ...set(9),              //   sums = 0
      ...i32(0), ...set(7),                                             //   i = 0
      ...get(0), ...get(6), ...get(5), 0x6c, ...times4, 0x6a, ...set(8), //  row = matrix + j * columns * 4
      0x02, 0x40, 0x03, 0x40,                                           //   block; loop over columns
      ...get(7), ...get(5), 0x4f, 0x0d, 1,                              //     i >= columns: leave
      ...get(9),
      ...get(8), ...get(7), ...times4, 0x6a, ...simd(LOAD), 0, 0,       //     matrix[j, i .. i + 3]
      ...get(1), ...get(7), ...times4, 0x6a, ...simd(LOAD), 0, 0,       //     x[i .. i + 3]
      ...simd(MUL), ...simd(ADD), ...set(9),                            //     sums += their products
      ...get(7), ...i32(4), 0x6a, ...set(7),                            //     i += 4
      0x0c, 0, 0x0b, 0x0b,                                              //   end of the columns
      ...get(3), ...get(6), ...times4, 0x6a,                            //   address of out[j]
      ...get(2), ...get(6), ...times4, 0x6a, 0x2a, 2, 0,                //   bias[j]
      ...get(9), ...simd(LANE), 0, ...get(9), ...simd(LANE), 1, 0x92,   //   (lane 0 + lane 1)
      ...get(9), ...simd(LANE), 2, ...get(9), ...simd(LANE), 3, 0x92,   //   + (lane 2 + lane 3)
      0x92, 0x92, 0x38, 2, 0,                                           //   out[j] = bias[j] + that
      ...get(6), ...i32(1), 0x6a, ...set(6),                            //   j += 1
      0x0c, 0, 0x0b, 0x0b, 0x0b,                                        // end of the rows, of the function
    ];
    return new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,                   // "\0asm", version 1
      ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), 0]])),  // type: 6 x i32 -> ()
      ...section(3, vec([[0]])),                                        // function 0 has type 0
      ...section(5, vec([[0x00, 1]])),                                  // a memory of at least 1 page
      ...section(7, vec([[...name("matvec"), 0x00, 0], [...name("memory"), 0x02, 0]])),
      ...section(10, vec([[...leb(body.length), ...body]])),
    ]);
  }

  // The WebAssembly kernel over `tensors` (name -> Float32Array), or null where it cannot run.
  function wasmKernel(tensors, width) {
    if (width % 4 !== 0 || typeof WebAssembly !== "object") return null;
    let instance;
    try {
      const bytes = wasmBytes();
      if (!WebAssembly.validate(bytes)) return null;  // no SIMD in this browser
      instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    } catch (error) {
      return null;
    }
    const names = Object.keys(tensors);
    const rows = Math.max(...names.map((n) => tensors[n].length / width));
    let floats = 0;
    const at = {};
    for (const n of names) { at[n] = floats; floats += tensors[n].length + (4 - tensors[n].length % 4) % 4; }
    const zeros = floats; floats += rows;
    const vector = floats; floats += width;
    const result = floats; floats += rows;
    const memory = instance.exports.memory;
    memory.grow(Math.ceil((floats * 4) / 65536));
    const view = new Float32Array(memory.buffer);
    for (const n of names) view.set(tensors[n], at[n]);
    const input = view.subarray(vector, vector + width);
    const matvec = instance.exports.matvec;
    return {
      name: "wasm-simd",
      // out (Float64Array of `rows`) = tensors[bias] + tensors[matrix] @ x
      product(matrix, bias, x, out, count) {
        input.set(x);
        matvec(at[matrix] * 4, vector * 4, (bias ? at[bias] : zeros) * 4, result * 4, count, width);
        for (let j = 0; j < count; j++) out[j] = view[result + j];
      },
    };
  }

  // out[j] = bias[j] + sum_i matrix[j, i] * x[i]   (matrix rows x columns, row-major). Four rows
  // at a time: each x[i] is read once for four products, and the four sums do not wait on each other
  // (about 3.5x the speed of one row at a time in chromium on a 2-core EPYC).
  function matvec(matrix, x, bias, out, rows, columns) {
    let j = 0;
    for (; j + 3 < rows; j += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      const b0 = j * columns, b1 = b0 + columns, b2 = b1 + columns, b3 = b2 + columns;
      for (let i = 0; i < columns; i++) {
        const v = x[i];
        s0 += matrix[b0 + i] * v;
        s1 += matrix[b1 + i] * v;
        s2 += matrix[b2 + i] * v;
        s3 += matrix[b3 + i] * v;
      }
      out[j] = (bias ? bias[j] : 0) + s0;
      out[j + 1] = (bias ? bias[j + 1] : 0) + s1;
      out[j + 2] = (bias ? bias[j + 2] : 0) + s2;
      out[j + 3] = (bias ? bias[j + 3] : 0) + s3;
    }
    for (; j < rows; j++) {
      let sum = 0;
      const base = j * columns;
      for (let i = 0; i < columns; i++) sum += matrix[base + i] * x[i];
      out[j] = (bias ? bias[j] : 0) + sum;
    }
  }

  // The JavaScript kernel: the weights as float64 (V8 runs the products about twice as fast on
  // one element type as on float32 weights against float64 states; the values are exact).
  function jsKernel(tensors, width) {
    const wide = {};
    for (const n of Object.keys(tensors)) wide[n] = Float64Array.from(tensors[n]);
    return {
      name: "js",
      product(matrix, bias, x, out, count) { matvec(wide[matrix], x, bias ? wide[bias] : null, out, count, width); },
    };
  }

  // ------------------------------------------------------------ the model
  function load(source, options = {}) {
    const bytes = Uint8Array.from(atob(source.data), (c) => c.charCodeAt(0));
    const data = new Float32Array(bytes.buffer, 0, bytes.length / 4);
    const tensor = (name) => {
      const entry = source.tensors[name];
      if (!entry) return null;
      const size = entry[1].reduce((a, b) => a * b, 1);
      return data.subarray(entry[0], entry[0] + size);
    };
    const meta = source.metadata;
    const config = meta.model;
    const units = config.units, cell = config.cell;
    const gates = units * { lstm: 4, gru: 3, rnn: 1 }[cell];
    const products = {};  // the tensors the kernels multiply with (all but the input table)
    const layers = [];
    for (let l = 1; l <= config.layers; l++) {
      const layer = {};
      for (const [key, name] of [["kernel", `kernel_${l}`], ["bias", `bias_${l}`], ["recurrent", `recurrent_${l}`],
                                 ["recurrentBias", `recurrent_bias_${l}`]]) {
        if (tensor(name)) { products[name] = tensor(name); layer[key] = name; } else layer[key] = null;
      }
      layers.push(layer);
    }
    products.head_kernel = tensor("head_kernel");
    products.head_bias = tensor("head_bias");
    const kernel = (options.kernel !== "js" && wasmKernel(products, units)) || jsKernel(products, units);
    const symbols = Array.from(meta.vocabulary.symbols);
    const index = new Map(symbols.map((s, i) => [s, i]));
    return {
      meta, cell, units, gates, layers, symbols, index, kernel,
      vocab: symbols.length,
      inputTable: tensor("input_table"),
      // a labelled model's label names (in id order) and label part of layer 1's input, (labels, gates)
      labels: Array.from(meta.labels || []),
      labelTable: tensor("label_table"),
      // scratch buffers, reused by every step
      xPart: new Float64Array(gates), hPart: new Float64Array(gates), logits: new Float64Array(symbols.length),
    };
  }

  function zeroState(model) {
    return model.layers.map(() => ({
      h: new Float64Array(model.units), c: model.cell === "lstm" ? new Float64Array(model.units) : null,
    }));
  }

  const sigmoid = (x) => 1 / (1 + Math.exp(-x));

  // The label id a labelled model's step needs (null for an unlabelled model).
  function checkLabel(model, label) {
    if (!model.labelTable) {
      if (label != null) throw new Error("this model was exported without labels");
      return null;
    }
    if (!Number.isInteger(label) || label < 0 || label >= model.labels.length) {
      throw new Error(`this model is labelled: give a label id from 0 to ${model.labels.length - 1} (${model.labels.join(", ")})`);
    }
    return label;
  }

  // One character: feeds `id` (under label id `label` for a labelled model), updates `state` in
  // place, returns the logits (a reused buffer).
  function step(model, id, state, label = null) {
    const { units, gates, xPart, hPart } = model;
    const labelRow = checkLabel(model, label) === null ? -1 : label * gates;
    let below = null;
    for (let l = 0; l < model.layers.length; l++) {
      const layer = model.layers[l], s = state[l];
      if (l === 0) {
        const row = id * gates;
        for (let j = 0; j < gates; j++) xPart[j] = model.inputTable[row + j];
        if (labelRow >= 0) for (let j = 0; j < gates; j++) xPart[j] += model.labelTable[labelRow + j];
      } else {
        model.kernel.product(layer.kernel, layer.bias, below, xPart, gates);
      }
      model.kernel.product(layer.recurrent, layer.recurrentBias, s.h, hPart, gates);
      const h = s.h;
      if (model.cell === "lstm") {
        for (let j = 0; j < units; j++) {
          const i = sigmoid(xPart[j] + hPart[j]);
          const f = sigmoid(xPart[units + j] + hPart[units + j]);
          const g = Math.tanh(xPart[2 * units + j] + hPart[2 * units + j]);
          const o = sigmoid(xPart[3 * units + j] + hPart[3 * units + j]);
          s.c[j] = f * s.c[j] + i * g;
          h[j] = o * Math.tanh(s.c[j]);
        }
      } else if (model.cell === "gru") {
        for (let j = 0; j < units; j++) {
          const z = sigmoid(xPart[j] + hPart[j]);
          const r = sigmoid(xPart[units + j] + hPart[units + j]);
          const candidate = Math.tanh(xPart[2 * units + j] + r * hPart[2 * units + j]);
          h[j] = z * h[j] + (1 - z) * candidate;
        }
      } else {
        for (let j = 0; j < units; j++) h[j] = Math.tanh(xPart[j] + hPart[j]);
      }
      below = h;
    }
    model.kernel.product("head_kernel", "head_bias", below, model.logits, model.vocab);
    return model.logits;
  }

  // ------------------------------------------------------------ the draw rule (docs/export.md)
  // Every charrnn sampler draws this way (the compiled TensorFlow loop, the native loop, numpy's
  // charrnn.portable.rng, the SavedModel), so one seed gives one text: a counter-based hash of
  // 32-bit words gives each draw its uniform number; the draw is an inverse CDF over float32
  // weights summed in float64.
  const GOLDEN = 0x9E3779B9;

  // murmur3's 32-bit finaliser (all arithmetic modulo 2^32)
  function mix(value) {
    value = (value ^ (value >>> 16)) >>> 0;
    value = Math.imul(value, 0x85EBCA6B) >>> 0;
    value = (value ^ (value >>> 13)) >>> 0;
    value = Math.imul(value, 0xC2B2AE35) >>> 0;
    return (value ^ (value >>> 16)) >>> 0;
  }

  // An integer (a Number, a BigInt or a string of digits) modulo 2^32.
  function word(value) {
    if (typeof value === "bigint" || typeof value === "string") return Number(BigInt.asUintN(32, BigInt(value)));
    return ((Math.trunc(value) % 4294967296) + 4294967296) % 4294967296;
  }

  // The draws of sample `sample` of `seed` (the sample-th text of a request, from 0): key =
  // mix(mix(seed + G) ^ mix(sample + 2G)); the draw at position n (the n-th character generated,
  // from 0) uses (mix(key ^ mix(n + 3G)) >>> 8) * 2^-24. uniform() takes the next position's.
  class DrawStream {
    constructor(seed, sample = 0) {
      this.key = mix((mix((word(seed) + GOLDEN) >>> 0) ^ mix((word(sample) + 2 * GOLDEN) >>> 0)) >>> 0);
      this.position = 0;
    }
    uniformAt(position) { return (mix((this.key ^ mix((word(position) + 3 * GOLDEN) >>> 0)) >>> 0) >>> 8) * 2 ** -24; }
    uniform() { return this.uniformAt(this.position++); }
  }

  // Which symbols top-k / top-p keep (k 0: no limit; p >= 1: no limit): a symbol is kept when
  // fewer than k symbols have a larger scaled value and the probability of those (each weight /
  // the total, summed in float64 from the highest; tied symbols share their rank and mass) is
  // below p. `scaled`: float32 logits / temperature; `weights`: float64 of float32 exp(scaled - max).
  function keptSymbols(scaled, weights, k, p) {
    const n = scaled.length, kept = new Uint8Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i];
    const order = Array.from({ length: n }, (_, i) => i)
      .sort((a, b) => (scaled[b] - scaled[a]) || (a - b));  // highest first, ties by lower id
    let above = 0;
    for (let start = 0; start < n;) {
      let end = start + 1;
      while (end < n && scaled[order[end]] === scaled[order[start]]) end++;
      const keep = (k <= 0 || start < k) && (p >= 1 || above < p);
      for (let j = start; j < end; j++) { kept[order[j]] = keep ? 1 : 0; above += weights[order[j]] / total; }
      start = end;
    }
    return kept;
  }

  // The first id whose running sum of weights (float64, id order) is greater than uniform x total.
  function pick(weights, uniform) {
    const n = weights.length, cumulative = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) { sum += weights[i]; cumulative[i] = sum; }
    const target = uniform * cumulative[n - 1];
    for (let i = 0; i < n; i++) if (cumulative[i] > target) return i;
    return n - 1;
  }

  function argmax(logits) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }

  // options: {temperature, topK, topP, argmax}; generator (a DrawStream) null takes the argmax.
  // The logits are rounded to float32 first, as every runtime's are.
  function draw(logits, generator, options) {
    if (!generator || options.argmax) return argmax(logits);
    const n = logits.length, temperature = Math.fround(options.temperature == null ? 1 : options.temperature);
    const scaled = new Float32Array(n);
    let max = -Infinity;
    for (let i = 0; i < n; i++) { scaled[i] = Math.fround(logits[i]) / temperature; if (scaled[i] > max) max = scaled[i]; }
    const weights = new Float64Array(n);
    for (let i = 0; i < n; i++) weights[i] = Math.fround(Math.exp(Math.fround(scaled[i] - max)));
    const k = options.topK || 0, p = options.topP == null ? 1 : Math.fround(options.topP);
    if (k > 0 || p < 1) {
      const kept = keptSymbols(scaled, weights, k, p);
      for (let i = 0; i < n; i++) if (!kept[i]) weights[i] = 0;
    }
    return pick(weights, generator.uniform());
  }

  // ------------------------------------------------------------ text <-> symbols
  function symbolsOfText(model, text) {
    if (model.meta.vocabulary.encoding !== "bytes") return Array.from(text);
    return Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(b));
  }

  function textOfSymbols(model, symbols) {
    if (model.meta.vocabulary.encoding !== "bytes") return symbols.join("");
    return new TextDecoder().decode(Uint8Array.from(symbols, (s) => s.charCodeAt(0)));
  }

  function encode(model, symbols) {
    return symbols.map((s) => {
      if (!model.index.has(s)) throw new Error(`the prime has a character not in the vocabulary: ${JSON.stringify(s)}`);
      return model.index.get(s);
    });
  }

  // ------------------------------------------------------------ generation
  // A stream of text as charrnn.portable.generate_chunks makes stream `stream` of it: the prime
  // (or the default prime, not shown) fed from a zero state, then one draw per character; a
  // labelled model's under label id `options.label`. Returns {next(): symbol or null when done}.
  function stream(model, options) {
    const prime = options.prime || [];
    const fed = encode(model, prime.length ? prime : Array.from(model.meta.vocabulary.default_prime));
    const state = zeroState(model);
    const label = checkLabel(model, options.label == null ? null : options.label);
    let logits = null;
    for (const id of fed) logits = step(model, id, state, label);
    const generator = options.argmax ? null : new DrawStream(options.seed, options.stream || 0);
    let done = 0;
    return {
      next() {
        if (done >= options.length) return null;
        const id = draw(logits, generator, options);
        done++;
        if (done < options.length) logits = step(model, id, state, label);
        return model.symbols[id];
      },
    };
  }

  // One item draw (stream `index` of the seed): the item's symbols, or null when it is not whole
  // (no end symbol within the cap, or empty). As charrnn.portable.sample_items.
  function drawItem(model, options, index) {
    const end = model.meta.vocabulary.end_symbol;
    const prime = options.prime || [];
    const cap = options.maxLength || model.meta.max_item_length || 256;
    const source = stream(model, { ...options, prime: [end, ...prime], length: Math.max(1, cap - prime.length + 1), stream: index });
    const text = [];
    for (let symbol = source.next(); symbol !== null; symbol = source.next()) {
      if (symbol === end) return prime.length + text.length ? [...prime, ...text] : null;
      text.push(symbol);
    }
    return null;
  }

  return { load, zeroState, step, DrawStream, keptSymbols, pick, draw, symbolsOfText, textOfSymbols, encode, stream, drawItem };
})();

if (typeof module !== "undefined") module.exports = CharRNN;
