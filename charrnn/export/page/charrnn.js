// charrnn's page: the recurrent step of an exported model (LSTM, GRU, SimpleRNN layers), the PCG32
// generator and the draws of charrnn.portable (docs/export.md), in plain JavaScript. Written by
// `charrnn export RUN --format web`; the same seed and options give the text charrnn.portable gives.
"use strict";

const CharRNN = (() => {
  // ------------------------------------------------------------ the model
  // The weights as float64: V8 runs the products about twice as fast on one element type as on
  // float32 weights against float64 states (the values are the float32 weights, exactly).
  function decodeBase64(text) {
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return Float64Array.from(new Float32Array(bytes.buffer, 0, bytes.length / 4));
  }

  function load(source) {
    const data = decodeBase64(source.data);
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
    const layers = [];
    for (let l = 1; l <= config.layers; l++) {
      layers.push({
        kernel: tensor(`kernel_${l}`), bias: tensor(`bias_${l}`),
        recurrent: tensor(`recurrent_${l}`), recurrentBias: tensor(`recurrent_bias_${l}`),
      });
    }
    const symbols = Array.from(meta.vocabulary.symbols);
    const index = new Map(symbols.map((s, i) => [s, i]));
    return {
      meta, cell, units, gates, layers, symbols, index,
      vocab: symbols.length,
      inputTable: tensor("input_table"), headKernel: tensor("head_kernel"), headBias: tensor("head_bias"),
      // scratch buffers, reused by every step
      xPart: new Float64Array(gates), hPart: new Float64Array(gates), logits: new Float64Array(symbols.length),
    };
  }

  function zeroState(model) {
    return model.layers.map(() => ({
      h: new Float64Array(model.units), c: model.cell === "lstm" ? new Float64Array(model.units) : null,
    }));
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

  const sigmoid = (x) => 1 / (1 + Math.exp(-x));

  // One character: feeds `id`, updates `state` in place, returns the logits (a reused buffer).
  function step(model, id, state) {
    const { units, gates, xPart, hPart } = model;
    let below = null;
    for (let l = 0; l < model.layers.length; l++) {
      const layer = model.layers[l], s = state[l];
      if (l === 0) {
        const row = id * gates;
        for (let j = 0; j < gates; j++) xPart[j] = model.inputTable[row + j];
      } else {
        matvec(layer.kernel, below, layer.bias, xPart, gates, units);
      }
      matvec(layer.recurrent, s.h, layer.recurrentBias, hPart, gates, units);
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
    matvec(model.headKernel, below, model.headBias, model.logits, model.vocab, units);
    return model.logits;
  }

  // ------------------------------------------------------------ PCG32 and the draws
  const M64 = (1n << 64n) - 1n, M32 = (1n << 32n) - 1n, MULTIPLIER = 6364136223846793005n;

  class PCG32 {
    constructor(seed, stream = 0) {
      this.state = 0n;
      this.increment = ((BigInt(stream) << 1n) | 1n) & M64;
      this.nextUint32();
      this.state = (this.state + BigInt.asUintN(64, BigInt(seed))) & M64;
      this.nextUint32();
    }
    nextUint32() {
      const old = this.state;
      this.state = (old * MULTIPLIER + this.increment) & M64;
      const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & M32);
      const rotation = Number(old >> 59n);
      return ((xorshifted >>> rotation) | (xorshifted << ((-rotation) & 31))) >>> 0;
    }
    uniform() { return (this.nextUint32() >>> 8) * 2 ** -24; }
  }

  function filteredWeights(logits, temperature, topK, topP) {
    const n = logits.length, scaled = new Float64Array(n), weights = new Float64Array(n);
    let max = -Infinity;
    for (let i = 0; i < n; i++) { scaled[i] = logits[i] / temperature; if (scaled[i] > max) max = scaled[i]; }
    for (let i = 0; i < n; i++) weights[i] = Math.exp(scaled[i] - max);
    const k = topK || 0, p = topP == null ? 1 : topP;
    if (k <= 0 && p >= 1) return weights;
    const order = Array.from({ length: n }, (_, i) => i)
      .sort((a, b) => (scaled[b] - scaled[a]) || (a - b));  // highest first, ties by lower id
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i];
    const kept = new Uint8Array(n);
    let before = 0;
    for (let j = 0; j < n; j++) {
      const id = order[j];
      if (j === 0 || (before < p && (k <= 0 || j < k))) kept[id] = 1;
      before += weights[id] / total;
    }
    for (let i = 0; i < n; i++) if (!kept[i]) weights[i] = 0;
    return weights;
  }

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

  // options: {temperature, topK, topP, argmax}; generator null takes the argmax
  function draw(logits, generator, options) {
    if (!generator || options.argmax) return argmax(logits);
    return pick(filteredWeights(logits, options.temperature, options.topK, options.topP), generator.uniform());
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
  // (or the default prime, not shown) fed from a zero state, then one draw per character.
  // Returns {next(): symbol or null when done}.
  function stream(model, options) {
    const prime = options.prime || [];
    const fed = encode(model, prime.length ? prime : Array.from(model.meta.vocabulary.default_prime));
    const state = zeroState(model);
    let logits = null;
    for (const id of fed) logits = step(model, id, state);
    const generator = options.argmax ? null : new PCG32(options.seed, options.stream || 0);
    let done = 0;
    return {
      next() {
        if (done >= options.length) return null;
        const id = draw(logits, generator, options);
        done++;
        if (done < options.length) logits = step(model, id, state);
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

  return { load, zeroState, step, PCG32, filteredWeights, pick, draw, symbolsOfText, textOfSymbols, encode, stream, drawItem };
})();

if (typeof module !== "undefined") module.exports = CharRNN;
