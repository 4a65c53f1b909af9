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
    // the symbol characters seen too rarely trained as (--min-char-count), or null: see readPrime
    const unknownId = meta.vocabulary.unknown != null ? index.get(meta.vocabulary.unknown) : null;
    return {
      meta, cell, units, gates, layers, symbols, index, kernel, unknownId,
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

  // New text's ids by the one rule every charrnn reader shares (docs/unknown-characters.md,
  // charrnn.data.vocab.Vocabulary.read): a symbol outside the vocabulary becomes the model's unknown
  // symbol under "auto" where it has one, else it is skipped; "error" throws naming it.
  // Returns {ids, unknown, skipped}.
  function readSymbols(model, symbols, unknown = "auto") {
    const ids = [];
    let unknownCount = 0, skipped = 0;
    for (const s of symbols) {
      if (model.index.has(s)) ids.push(model.index.get(s));
      else if (unknown === "error") throw new Error(checkPrimeVocabulary(model, symbols));
      else if (unknown === "auto" && model.unknownId != null) { ids.push(model.unknownId); unknownCount++; }
      else skipped++;
    }
    return { ids, unknown: unknownCount, skipped };
  }

  function encode(model, symbols, unknown = "auto") {
    return readSymbols(model, symbols, unknown).ids;
  }

  // ------------------------------------------------------------ generation
  // A stream of text as charrnn.portable.generate_chunks makes stream `stream` of it: the prime
  // (or the default prime, not shown) fed from a zero state, then one draw per character; a
  // labelled model's under label id `options.label`. Returns {next(): symbol or null when done}.
  function stream(model, options) {
    const prime = options.prime || [];
    const read = encode(model, prime, options.unknown);  // a prime skipped whole feeds the default prime
    const fed = read.length ? read : encode(model, Array.from(model.meta.vocabulary.default_prime));
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

  // ------------------------------------------------------------ the options, checked
  // Each option of the page and of `generate` / `textStream`, with the rule of the `charrnn sample`
  // option it mirrors: tests/test_export_web.py checks this table against the CLI's option types
  // and runs the same strings through both, so the two cannot drift. kind: integer | number (read
  // as Python's int() / float() read the option's text) | text | stop | label | flag; min / max
  // bound it (minOpen / maxOpen: the bound itself is refused); `default` is what an option left out
  // (or a page field left empty) means: null is off (top-k, top-p, the label of an unlabelled
  // model) or, for the seed, a random one. `itemsMin`: an items model's length (the longest item)
  // is at least this, and by default the run's --max-item-length. `excludes`: options refused
  // beside it (as `charrnn sample --argmax --temperature 1` is a usage error).
  const FIELDS = /* FIELDS */ {
    "prime": {"option": "--prime", "kind": "text", "default": ""},
    "length": {"option": "--length", "kind": "integer", "min": 0, "default": 500, "itemsMin": 1},
    "temperature": {"option": "--temperature", "kind": "number", "min": 0, "minOpen": true, "default": 1.0},
    "topK": {"option": "--top-k", "kind": "integer", "min": 1, "default": null},
    "topP": {"option": "--top-p", "kind": "number", "min": 0, "minOpen": true, "max": 1, "default": null},
    "seed": {"option": "--seed", "kind": "integer", "default": null},
    "numSamples": {"option": "--num-samples", "kind": "integer", "min": 1, "default": 1},
    "argmax": {"option": "--argmax", "kind": "flag", "default": false, "excludes": ["temperature", "topK", "topP", "seed"]},
    "stop": {"option": "--stop", "kind": "stop", "default": []},
    "label": {"option": "--label", "kind": "label", "default": null},
    "unknown": {"option": "--unknown", "kind": "choice", "choices": ["auto", "skip", "error"], "default": "auto"}
  } /* FIELDS */;

  // Python's int() and float() grammars (ASCII digits; `_` between digits), which click's option
  // types use; float's inf and nan parse, and the finite check refuses them, as the CLI does.
  const DIGITS = "\\d+(?:_\\d+)*";
  const INTEGER = new RegExp(`^[+-]?${DIGITS}$`);
  const DECIMAL = new RegExp(`^[+-]?(?:(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:[eE][+-]?${DIGITS})?|inf|infinity|nan)$`, "i");

  function rangeText(name, rule) {
    const low = rule.min == null ? null : `${rule.min} ${rule.minOpen ? "<" : "<="} ${name}`;
    if (rule.max == null) return low ? `${name} ${rule.minOpen ? ">" : ">="} ${rule.min}` : null;
    return `${low || name} ${rule.maxOpen ? "<" : "<="} ${rule.max}`;
  }

  // The error of a refused option: `errors` maps each bad option to its message.
  class OptionsError extends Error {
    constructor(errors) {
      super(Object.entries(errors).map(([name, message]) => `${name}: ${message}`).join("; "));
      this.name = "OptionsError";
      this.errors = errors;
    }
  }

  function isEmpty(given) {
    return given === undefined || given === null || (typeof given === "string" && given.trim() === "");
  }

  // One scalar option checked by its rule in FIELDS: `given` is a string as typed on the page (read
  // as the CLI reads the option's text) or a value from a program; left out (or an empty string) it
  // is the rule's default. Integers come back as numbers, the seed as a decimal string (any size).
  // Throws an Error saying what the rule wants.
  function checkField(name, given) {
    const rule = FIELDS[name];
    if (!rule) throw new Error(`unknown option ${name}; the options are: ${Object.keys(FIELDS).join(", ")}`);
    const shown = `Received: ${rule.option.slice(2)}=${typeof given === "string" ? JSON.stringify(given) : String(given)}`;
    const called = rule.option.slice(2);  // the CLI's name: top-p, num-samples
    if (rule.kind === "flag") {
      if (given == null) return rule.default;
      if (typeof given !== "boolean") throw new Error(`Expected ${called} to be true or false. ${shown}`);
      return given;
    }
    if (rule.kind === "choice") {
      if (isEmpty(given)) return rule.default;
      if (!rule.choices.includes(given)) throw new Error(`Expected ${called} in (${rule.choices.map((c) => `'${c}'`).join(", ")}). ${shown}`);
      return given;
    }
    if (rule.kind === "text") {
      if (given == null) return rule.default;
      if (typeof given !== "string") throw new Error(`Expected ${called} to be a string. ${shown}`);
      return given;
    }
    if (rule.kind !== "integer" && rule.kind !== "number") throw new Error(`${name} is checked with the model (checkOptions)`);
    if (isEmpty(given)) return rule.default;
    const integer = rule.kind === "integer";
    let value;
    if (typeof given === "string") {
      const text = given.trim();
      if (!(integer ? INTEGER : DECIMAL).test(text)) throw new Error(`Expected ${called} to be ${integer ? "an integer" : "a number"}. ${shown}`);
      value = integer ? BigInt(text.replace(/_/g, "")) : Number(text.replace(/_/g, "").replace(/^([+-]?)inf(inity)?$/i, "$1Infinity"));
    } else if (integer && (typeof given === "bigint" || Number.isInteger(given))) {
      value = BigInt(given);
    } else if (!integer && typeof given === "number") {
      value = given;
    } else {
      throw new Error(`Expected ${called} to be ${integer ? "an integer" : "a number"}. ${shown}`);
    }
    if (!integer && !Number.isFinite(value)) throw new Error(`Expected ${called} to be a finite number. ${shown}`);
    const number = integer ? (x) => BigInt(x) : (x) => x;
    const below = rule.min != null && (rule.minOpen ? value <= number(rule.min) : value < number(rule.min));
    const above = rule.max != null && (rule.maxOpen ? value >= number(rule.max) : value > number(rule.max));
    if (below || above) throw new Error(`Expected ${rangeText(called, rule)}. ${shown}`);
    if (!integer) return value;
    return name === "seed" ? value.toString() : Number(value);
  }

  // The message that refuses a prime with characters outside the vocabulary (null when it has
  // none): used under unknown "error" only; otherwise readSymbols reads them by the one rule.
  function checkPrimeVocabulary(model, symbols) {
    const missing = [...new Set(symbols.filter((s) => !model.index.has(s)))].sort();
    if (!missing.length) return null;
    return `the prime has characters not in the vocabulary: ${missing.map((s) => JSON.stringify(s)).join(", ")}`;
  }

  // The label id of a label name (null for an unlabelled model given none), as `charrnn sample
  // --label` reads it; throws naming the labels.
  function labelId(model, name) {
    if (!model.labels.length) {
      if (name != null) throw new Error("this model was trained without labels, so it takes no label");
      return null;
    }
    if (name == null || name === "") throw new Error(`this model is labelled: give a label, one of: ${model.labels.join(", ")}`);
    const id = model.labels.indexOf(name);
    if (id < 0) throw new Error(`this model has no label ${JSON.stringify(name)}; its labels are: ${model.labels.join(", ")}`);
    return id;
  }

  // A stop sequence as typed, read as `charrnn sample --stop` reads it (charrnn.generation.stops.
  // parse_stop): \n, \r, \t and \\ are escapes, every other character stands for itself; an unknown
  // escape, a lone backslash at the end or an empty stop throws.
  const ESCAPES = { n: "\n", r: "\r", t: "\t", "\\": "\\" };
  function parseStop(typed) {
    const known = Object.keys(ESCAPES).map((name) => "\\" + name).join(", ");
    let text = "";
    for (let index = 0; index < typed.length; index++) {
      if (typed[index] !== "\\") { text += typed[index]; continue; }
      if (index + 1 >= typed.length) throw new Error(`the stop ${JSON.stringify(typed)} ends in a lone backslash; write \\\\ for a backslash (escapes: ${known})`);
      const escape = typed[++index];
      if (!(escape in ESCAPES)) throw new Error(`unknown escape \\${escape} in the stop ${JSON.stringify(typed)}; the escapes are ${known}`);
      text += ESCAPES[escape];
    }
    if (!text) throw new Error("a stop sequence cannot be empty");
    return text;
  }

  // Every option checked, with the model (its vocabulary, labels, items): the options `generate`
  // runs with. Throws an OptionsError listing every bad option (nothing is generated).
  function checkOptions(model, given = {}) {
    const items = Boolean(model.meta.vocabulary.items), end = model.meta.vocabulary.end_symbol;
    const errors = {}, checked = { items };
    for (const name of Object.keys(given)) {
      if (!(name in FIELDS) && name !== "signal") errors[name] = `unknown option; the options are: ${Object.keys(FIELDS).join(", ")}, signal`;
    }
    for (const [name, rule] of Object.entries(FIELDS)) {
      if (rule.kind === "stop" || rule.kind === "label") continue;
      try { checked[name] = checkField(name, given[name]); } catch (error) { errors[name] = error.message; }
    }
    if (items && !("length" in errors)) {
      if (isEmpty(given.length)) checked.length = model.meta.max_item_length || 256;
      else if (checked.length < FIELDS.length.itemsMin) errors.length = `length ${checked.length} leaves no room for an item; give at least ${FIELDS.length.itemsMin}`;
    }
    if (checked.argmax) {
      for (const name of FIELDS.argmax.excludes) {
        if (!isEmpty(given[name]) && !errors[name]) errors[name] = `argmax takes the most likely character and does not use ${FIELDS[name].option.slice(2)}; leave it empty, or untick argmax`;
      }
    }
    if (!errors.prime) {
      checked.prime = symbolsOfText(model, checked.prime);
      const refused = checked.unknown === "error" ? checkPrimeVocabulary(model, checked.prime) : null;
      if (refused) errors.prime = refused;
      else if (items && checked.prime.includes(end)) errors.prime = "the prime of an item cannot hold a newline (the end symbol)";
    }
    const stops = given.stop == null ? [] : typeof given.stop === "string" ? [given.stop] : given.stop;
    if (!Array.isArray(stops) || !stops.every((stop) => typeof stop === "string" && stop.length > 0)) {
      errors.stop = `Expected each stop to be a non-empty string. Received: stop=${JSON.stringify(given.stop)}`;
    } else if (items && stops.some((stop) => symbolsOfText(model, stop).includes(end))) {
      const stop = stops.find((text) => symbolsOfText(model, text).includes(end));
      errors.stop = `the stop ${JSON.stringify(stop)} holds a newline, which ends every item: an item never holds one`;
    } else {
      checked.stop = stops.map((stop) => symbolsOfText(model, stop));
      for (const [index, symbols] of checked.stop.entries()) {
        const missing = [...new Set(symbols.filter((s) => !model.index.has(s)))].sort();
        if (missing.length && !errors.stop) {
          errors.stop = `the stop ${JSON.stringify(stops[index])} has characters not in the vocabulary: ` +
            `${missing.map((s) => JSON.stringify(s)).join(", ")}, so it can never be generated`;
        }
      }
    }
    checked.label = given.label == null ? null : given.label;
    try { checked.labelId = labelId(model, checked.label); } catch (error) { errors.label = error.message; }
    if (Object.keys(errors).length) throw new OptionsError(errors);
    if (checked.seed == null) checked.seed = String(crypto.getRandomValues(new Uint32Array(1))[0] >>> 1);
    return checked;
  }

  // ------------------------------------------------------------ stop sequences
  // charrnn.generation.stops.StopScanner's rule over one stream's generated symbols, fed one at a
  // time: the stream ends at the first stop completed (of two completed by the same symbol, the
  // longer); the symbols before it are kept, the stop is not; a tail that may be the beginning of
  // a stop (at most the longest stop's length - 1 symbols) is held back until the next symbols
  // show it is not. `feed` returns the symbols now known to come before any stop.
  class StopScanner {
    constructor(stops) {
      this.stops = stops.map((stop) => Array.from(stop));
      this.longest = Math.max(...this.stops.map((stop) => stop.length));
      this.beginnings = new Set();
      for (const stop of this.stops) for (let size = 1; size < stop.length; size++) this.beginnings.add(stop.slice(0, size).join(""));
      this.held = [];
      this.passed = 0;  // symbols let through
      this.stopped = null;  // the stop that ended the stream (its symbols, joined)
    }
    feed(symbol) {
      if (this.stopped !== null) return [];
      const text = [...this.held, symbol];
      let found = null;
      for (const stop of this.stops) {
        if (stop.length <= text.length && stop.every((s, i) => text[text.length - stop.length + i] === s) &&
            (!found || stop.length > found.length)) found = stop;
      }
      if (found) {
        const released = text.slice(0, text.length - found.length);
        this.held = [];
        this.passed += released.length;
        this.stopped = found.join("");
        return released;
      }
      let keep = 0;
      for (let size = Math.min(text.length, this.longest - 1); size > 0; size--) {
        if (this.beginnings.has(text.slice(text.length - size).join(""))) { keep = size; break; }
      }
      this.held = text.slice(text.length - keep);
      const released = text.slice(0, text.length - keep);
      this.passed += released.length;
      return released;
    }
    finish() {
      const held = this.held;
      this.held = [];
      this.passed += held.length;
      return held;
    }
  }

  // drawItem's draw (stream `index` of the seed) with stop sequences, by charrnn.items.sampling's
  // rule: the item also ends before the first stop completed in its own characters (the prime is not
  // searched). Returns {item (its symbols), stopped (the stop's symbols joined, or null)}, or null
  // where neither the end symbol nor a stop came within the cap, or the item is empty. It must draw
  // as drawItem does: a test checks that a stop that never comes gives drawItem's items.
  function drawItemStopped(model, options, index, stops) {
    const end = model.meta.vocabulary.end_symbol;
    const prime = options.prime || [];
    const cap = options.maxLength || model.meta.max_item_length || 256;
    const source = stream(model, { ...options, prime: [end, ...prime], length: Math.max(1, cap - prime.length + 1), stream: index });
    const scanner = new StopScanner(stops), text = [];
    for (let symbol = source.next(); symbol !== null; symbol = source.next()) {
      const ended = symbol === end;
      text.push(...(ended ? scanner.finish() : scanner.feed(symbol)));
      if (ended || scanner.stopped !== null) {
        return prime.length + text.length ? { item: [...prime, ...text], stopped: scanner.stopped } : null;
      }
    }
    return null;
  }

  // ------------------------------------------------------------ the library: generate, textStream
  // Symbols -> text as they arrive: a bytes model's bytes decoded as UTF-8 across pieces.
  function textDecoder(model) {
    if (model.meta.vocabulary.encoding !== "bytes") return { decode: (symbols) => symbols.join(""), end: () => "" };
    const decoder = new TextDecoder();
    return {
      decode: (symbols) => decoder.decode(Uint8Array.from(symbols, (s) => s.charCodeAt(0)), { stream: true }),
      end: () => decoder.decode(),
    };
  }

  // The pieces of text of checked options, as {sample, text} (a stream model: each sample's prime,
  // then its generated text, cut at a stop; an items model: one whole item each); returns what
  // the result adds ({stopped} or {draws}).
  function* pieces(model, opts) {
    const draws = { prime: opts.prime, temperature: opts.temperature, topK: opts.topK, topP: opts.topP,
                    argmax: opts.argmax, seed: opts.seed, label: opts.labelId, unknown: opts.unknown };
    if (opts.items) {  // as charrnn.portable.sample_items: the first numSamples whole items in draw order
      const limit = Math.max(1000, 20 * opts.numSamples), stopped = [];
      let kept = 0, drawn = 0;
      while (kept < opts.numSamples && drawn < limit) {
        const options = { ...draws, maxLength: opts.length };
        let item = null;
        if (opts.stop.length) {
          const found = drawItemStopped(model, options, drawn++, opts.stop);
          if (found) { item = found.item; stopped.push(found.stopped === null ? null : textOfSymbols(model, Array.from(found.stopped))); }
        } else {
          item = drawItem(model, options, drawn++);
        }
        if (item) yield { sample: kept++, text: textOfSymbols(model, item) };
      }
      if (kept < opts.numSamples) {
        throw new Error(`found ${kept} whole items of the ${opts.numSamples} asked for in ${drawn} draws; ask for fewer, or raise the temperature`);
      }
      return { draws: drawn, stopped };
    }
    const stopped = [];
    for (let sample = 0; sample < opts.numSamples; sample++) {  // sample j: stream j of the seed
      const source = stream(model, { ...draws, length: opts.length, stream: sample });
      const decoder = textDecoder(model);
      const scanner = opts.stop.length ? new StopScanner(opts.stop) : null;
      yield { sample, text: textOfSymbols(model, opts.prime) };
      for (let symbol = source.next(); symbol !== null; symbol = source.next()) {
        const released = scanner ? scanner.feed(symbol) : [symbol];
        const text = decoder.decode(released);
        if (text) yield { sample, text };
        if (scanner && scanner.stopped !== null) break;
      }
      const rest = decoder.decode(scanner && scanner.stopped === null ? scanner.finish() : []) + decoder.end();
      if (rest) yield { sample, text: rest };
      stopped.push(scanner && scanner.stopped !== null ? textOfSymbols(model, Array.from(scanner.stopped)) : null);
    }
    return { stopped };
  }

  const pause = () => new Promise((resolve) => setTimeout(resolve, 0));

  // Generates with `options` (as `charrnn sample MODEL.onnx`: prime, length, temperature, topK,
  // topP, seed, argmax, numSamples, stop, label; and `signal`, an AbortSignal that ends it early),
  // calling onText(text, sample) for each piece as it comes: a stream model's prime, then its
  // characters (a stop ends a sample before it: the stop is never passed on); an items model's
  // whole items, one call each. Yields to the event loop about every 30 ms, so a page stays
  // responsive. Resolves to {texts} (one per sample, prime included) with {seed, stopped (the stop
  // that ended each sample, or null), stopAt (its offset in the text, in characters, or null)}; an
  // items model's to {items, seed, draws}; aborted: true where `signal` ended it. Options are
  // checked first (checkOptions): a bad one rejects with an OptionsError and generates nothing.
  async function generate(model, options = {}, onText = null) {
    const opts = checkOptions(model, options);
    const texts = [], source = pieces(model, opts);
    let until = performance.now() + 30, aborted = false, extra;
    for (;;) {
      if (options.signal && options.signal.aborted) { aborted = true; break; }
      const { value, done } = source.next();
      if (done) { extra = value; break; }
      texts[value.sample] = (texts[value.sample] || "") + value.text;
      if (onText) onText(value.text, value.sample);
      if (performance.now() > until) { await pause(); until = performance.now() + 30; }
    }
    const seed = opts.argmax ? null : opts.seed;
    if (opts.items) {
      const stops = opts.stop.length ? { stopped: texts.map((_, i) => extra ? extra.stopped[i] : null) } : {};
      return { items: texts, seed, draws: extra ? extra.draws : null, ...stops, ...(aborted ? { aborted } : {}) };
    }
    const stopped = extra ? extra.stopped : [];
    const result = { texts, seed, ...(aborted ? { aborted } : {}) };
    if (opts.stop.length) {
      result.stopped = texts.map((_, i) => stopped[i] === undefined ? null : stopped[i]);
      result.stopAt = texts.map((text, i) => result.stopped[i] === null ? null : Array.from(text).length);
    }
    return result;
  }

  // An async iterator over the text of one sample as it is generated (a stream model: the prime,
  // then its pieces; an items model: each whole item): `for await (const text of textStream(model,
  // options))`. Options as `generate` (numSamples > 1 only for items); they are checked at once
  // (an OptionsError is thrown by this call). After the loop, `.seed` and `.stopped` (the stop
  // that ended the text, or null) are set on the iterator.
  function textStream(model, options = {}) {
    const opts = checkOptions(model, options);
    if (!opts.items && opts.numSamples !== 1) throw new OptionsError({ numSamples: "textStream gives one text; use generate for several" });
    const source = pieces(model, opts);
    let until = performance.now() + 30;
    const iterator = {
      seed: opts.argmax ? null : opts.seed, stopped: null,
      [Symbol.asyncIterator]() { return this; },
      async next() {
        if (performance.now() > until) { await pause(); until = performance.now() + 30; }
        if (options.signal && options.signal.aborted) return { value: undefined, done: true };
        const { value, done } = source.next();
        if (done) {
          if (value && value.stopped && !opts.items) iterator.stopped = value.stopped[0];
          return { value: undefined, done: true };
        }
        return { value: value.text, done: false };
      },
      async return() { return { value: undefined, done: true }; },
    };
    return iterator;
  }

  // The model object weights.js describes, from that file's text (for Node, or a page that fetches
  // it): `CharRNN.load(CharRNN.parseWeights(fs.readFileSync("site/weights.js", "utf8")))`.
  function parseWeights(text) {
    const found = /^window\.CHARRNN_MODEL = Object\.assign\(([\s\S]*), \{data: "([A-Za-z0-9+/=]*)"\}\);\s*$/.exec(text);
    if (!found) throw new Error("not a weights.js written by `charrnn export --format web`");
    return { ...JSON.parse(found[1]), data: found[2] };
  }

  return { load, zeroState, step, DrawStream, keptSymbols, pick, draw, symbolsOfText, textOfSymbols, encode, stream, drawItem,
           FIELDS, OptionsError, checkField, checkOptions, checkPrimeVocabulary, readSymbols, parseStop, StopScanner, drawItemStopped,
           generate, textStream, parseWeights };
})();

if (typeof module !== "undefined") module.exports = CharRNN;
