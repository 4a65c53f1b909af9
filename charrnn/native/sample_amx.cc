// charrnn's native sampling loop: a stacked LSTM's one-character step, the draw and the loop
// around them, for any number of streams, with the products on the CPU's AMX tiles in bf16.
//
// Plain C ABI (loaded with ctypes; no TensorFlow inside). Compiled on first use by
// charrnn/native/sampling.py with g++ -O2 -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512bf16.
//
// The same file, compiled with -DCHARRNN_DPBF16 and without the AMX flags, is the loop for CPUs
// with AVX512-BF16 but no tiles (AMD Zen 4/5, Intel Cooper Lake): the products run on vdpbf16ps
// over the same packed kernels (a B tile's row is 16 columns' (k, k+1) pairs, exactly the operand
// vdpbf16ps multiplies by a broadcast pair of a stream's inputs); the cell, the draw and the loop
// are shared, so both loops draw by one rule.
//
// Layout. A stream is a row. Layer l's joint kernel J_l (K x N_l, bf16, packed into AMX tiles) is
// [recurrent_kernel_l | kernel_{l+1}] (the head's kernel for the last layer): one product of the
// layer's new output h_l gives both its recurrent part for the next step and the next layer's
// input part for this one. K is the width padded to a multiple of 32 with zero rows, N_l a
// multiple of 32 with zero columns. Layer 1's input part is a row of `table` (embedding @ kernel
// + bias, float32), so a gather replaces its input product.
//
// Same text in any batch or chunking: every product row is computed by the same tile
// instructions in the same order whatever the other rows hold, the states are float32 between
// calls, and each draw's uniform number is keyed by (seed, sample, position) as in the TF loop.

#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <omp.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace {

constexpr int kTileRows = 16;     // rows of a tile: streams of a block, or k pairs of a B tile
constexpr int kTileK = 32;        // bf16 values of K per tile row
constexpr int kTileCols = 16;     // float32 columns of a C tile
constexpr int kTileElems = 512;   // bf16 values in one packed B tile (16 x 16 x 2)

#ifndef CHARRNN_DPBF16
struct TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tiles 0-3 hold products (C), 4-5 streams' inputs (A), 6-7 kernel tiles (B). `rows`: the rows of
// the A and C tiles, 16, or the number of streams when there are fewer: a row's result is the
// same either way, and one stream then stores 64 bytes per C tile instead of 1 KB (the stores of
// 15 empty rows pushed kernel tiles out of L2).
void load_tile_config(int rows) {
  TileConfig config;
  memset(&config, 0, sizeof(config));
  config.palette_id = 1;
  for (int tile = 0; tile < 8; ++tile) {
    config.rows[tile] = tile < 6 ? rows : kTileRows;
    config.colsb[tile] = 64;
  }
  _tile_loadconfig(&config);
}

// C tiles `first` and `second` += the A tile in tile 4 times two adjacent column blocks' B tiles
// (the first at `b`, the next `b_step` values on), through tiles 6 and 7. A macro, not a function:
// GCC's tile intrinsics take the tile numbers as literal tokens.
#define COLUMN_PAIR(first, second, b, b_step) \
  do {                                        \
    _tile_loadd(6, (b), 64);                  \
    _tile_loadd(7, (b) + (b_step), 64);       \
    _tile_dpbf16ps(first, 4, 6);              \
    _tile_dpbf16ps(second, 4, 7);             \
  } while (0)

// y (mblocks*16 x n, float32, row stride n) = x (mblocks*16 x k, bf16, row stride k) @ w (packed),
// columns blocks [first, last) of 16 only (a thread's share; both even). w holds tile (nb, kb) at
// ((nb * k/32) + kb) * 512; row r of a tile is k pair 2r, 2r+1 of 16 columns, each pair adjacent
// (the layout TDPBF16PS reads). n is a multiple of 32.
void product(const uint16_t* x, int mblocks, int, int k, const uint16_t* w, int n, float* y, int first, int last) {
  const int kblocks = k / kTileK;
  const long xstride = static_cast<long>(k) * 2, ystride = static_cast<long>(n) * 4;
  const long b_step = static_cast<long>(kblocks) * kTileElems;
  int mb = 0;
  for (; mb + 2 <= mblocks; mb += 2) {  // two row blocks x two column blocks: 4 C, 2 A, 2 B tiles
    const uint16_t* x0 = x + static_cast<long>(mb) * kTileRows * k;
    const uint16_t* x1 = x0 + static_cast<long>(kTileRows) * k;
    float* y0 = y + static_cast<long>(mb) * kTileRows * n;
    float* y1 = y0 + static_cast<long>(kTileRows) * n;
    for (int nb = first; nb < last; nb += 2) {
      const uint16_t* b0 = w + nb * b_step;
      const uint16_t* b1 = b0 + b_step;
      _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
      for (int kb = 0; kb < kblocks; ++kb) {
        _tile_loadd(4, x0 + kb * kTileK, xstride);
        _tile_loadd(5, x1 + kb * kTileK, xstride);
        _tile_loadd(6, b0 + kb * kTileElems, 64);
        _tile_loadd(7, b1 + kb * kTileElems, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, y0 + nb * kTileCols, ystride);
      _tile_stored(1, y0 + (nb + 1) * kTileCols, ystride);
      _tile_stored(2, y1 + nb * kTileCols, ystride);
      _tile_stored(3, y1 + (nb + 1) * kTileCols, ystride);
    }
  }
  for (; mb < mblocks; ++mb) {  // one row block: four (then two) column blocks at a time
    const uint16_t* x0 = x + static_cast<long>(mb) * kTileRows * k;
    float* y0 = y + static_cast<long>(mb) * kTileRows * n;
    int nb = first;
    for (; nb + 4 <= last; nb += 4) {
      const uint16_t* b0 = w + nb * b_step;
      _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
      for (int kb = 0; kb < kblocks; ++kb) {
        _tile_loadd(4, x0 + kb * kTileK, xstride);
        COLUMN_PAIR(0, 1, b0 + kb * kTileElems, b_step);
        COLUMN_PAIR(2, 3, b0 + 2 * b_step + kb * kTileElems, b_step);
      }
      _tile_stored(0, y0 + nb * kTileCols, ystride);
      _tile_stored(1, y0 + (nb + 1) * kTileCols, ystride);
      _tile_stored(2, y0 + (nb + 2) * kTileCols, ystride);
      _tile_stored(3, y0 + (nb + 3) * kTileCols, ystride);
    }
    for (; nb < last; nb += 2) {
      const uint16_t* b0 = w + nb * b_step;
      _tile_zero(0); _tile_zero(1);
      for (int kb = 0; kb < kblocks; ++kb) {
        _tile_loadd(4, x0 + kb * kTileK, xstride);
        COLUMN_PAIR(0, 1, b0 + kb * kTileElems, b_step);
      }
      _tile_stored(0, y0 + nb * kTileCols, ystride);
      _tile_stored(1, y0 + (nb + 1) * kTileCols, ystride);
    }
  }
}
#else
// ---------------------------------------------------------------- products on vdpbf16ps (no tiles)

// y rows [0, R) x column blocks [nb, nb + C) (float32, row stride n) = x's R rows (bf16, row
// stride k) @ w's blocks. Each output value is summed over k pairs in the same order whatever R,
// C or the thread, so a stream's numbers do not depend on the batch or the thread count.
template <int R, int C>
inline void dp_block(const uint16_t* x, int k, const uint16_t* w, long b_step, float* y, long n, int nb) {
  // the accumulators stay in registers only when every loop over R and C is unrolled
  __m512 acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  const uint16_t* base = w + nb * b_step;
  for (int kb = 0; kb < k / kTileK; ++kb) {
    const uint16_t* tile = base + kb * kTileElems;
    const uint16_t* inputs = x + kb * kTileK;
    for (int pair = 0; pair < kTileRows; ++pair) {
      __m512bh b[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
        b[c] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(tile + c * b_step + pair * 2 * kTileCols));
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        uint32_t both;
        memcpy(&both, inputs + static_cast<long>(r) * k + 2 * pair, 4);
        const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(both)));
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, b[c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(y + r * n + (nb + c) * kTileCols, acc[r][c]);
}

// Column blocks [first, last) (both even) of R rows, C blocks at a time, then pairs.
template <int R, int C>
void dp_rows(const uint16_t* x, int k, const uint16_t* w, long b_step, float* y, long n, int first, int last) {
  int nb = first;
  for (; nb + C <= last; nb += C) dp_block<R, C>(x, k, w, b_step, y, n, nb);
  for (; nb < last; nb += 2) dp_block<R, 2>(x, k, w, b_step, y, n, nb);
}

// As the AMX product, for the `rows` rows that hold streams (no padding rows are computed). One
// row: eight column blocks at a time (independent sums hide vdpbf16ps's latency). More: for each
// pair of column blocks (16 KB of kernel for 256 units, kept in L1), every block of 8, 4, 2 and
// 1 rows, so the kernel is read from L2/L3 once a call however many streams run.
void product(const uint16_t* x, int, int rows, int k, const uint16_t* w, int n, float* y, int first, int last) {
  const long b_step = static_cast<long>(k / kTileK) * kTileElems;
  if (rows == 1) {
    dp_rows<1, 8>(x, k, w, b_step, y, n, first, last);
    return;
  }
  for (int nb = first; nb < last; nb += 2) {
    int r = 0;
    for (; r + 8 <= rows; r += 8)
      dp_block<8, 2>(x + static_cast<long>(r) * k, k, w, b_step, y + static_cast<long>(r) * n, n, nb);
    if (r + 4 <= rows) {
      dp_block<4, 2>(x + static_cast<long>(r) * k, k, w, b_step, y + static_cast<long>(r) * n, n, nb);
      r += 4;
    }
    if (r + 2 <= rows) {
      dp_block<2, 2>(x + static_cast<long>(r) * k, k, w, b_step, y + static_cast<long>(r) * n, n, nb);
      r += 2;
    }
    if (r < rows) dp_block<1, 2>(x + static_cast<long>(r) * k, k, w, b_step, y + static_cast<long>(r) * n, n, nb);
  }
}
#endif

// ---------------------------------------------------------------- elementwise math (AVX-512)

inline __mmask16 tail_mask(int remaining) {
  return remaining >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << remaining) - 1u);
}

// exp on 16 floats: 2^n * e^r with |r| <= ln2/2 and a degree-6 polynomial for e^r (relative
// error about 2e-7); inputs are clamped to [-88, 88].
inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 in two parts
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __m512 sigmoid16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

inline __m512 tanh16(__m512 x) {  // 2 sigmoid(2x) - 1
  const __m512 two = _mm512_set1_ps(2.0f);
  return _mm512_fmsub_ps(two, sigmoid16(_mm512_mul_ps(two, x)), _mm512_set1_ps(1.0f));
}

// One stream's LSTM cell over its gate pre-activations (input part + recurrent part [+ bias]),
// Keras's gate order i, f, c, o; writes h and c (float32) and h as bf16 for the next products.
void lstm_cell(const float* input_part, const float* recurrent_part, const float* bias, int units,
               float* hidden, float* carry, uint16_t* hidden_bf16) {
  for (int j = 0; j < units; j += 16) {
    const __mmask16 mask = tail_mask(units - j);
    auto gate = [&](int index) {
      const int offset = index * units + j;
      __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, input_part + offset),
                                 _mm512_maskz_loadu_ps(mask, recurrent_part + offset));
      return bias ? _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask, bias + offset)) : sum;
    };
    const __m512 in = sigmoid16(gate(0)), forget = sigmoid16(gate(1));
    const __m512 candidate = tanh16(gate(2)), out = sigmoid16(gate(3));
    const __m512 c = _mm512_fmadd_ps(forget, _mm512_maskz_loadu_ps(mask, carry + j), _mm512_mul_ps(in, candidate));
    const __m512 h = _mm512_mul_ps(out, tanh16(c));
    _mm512_mask_storeu_ps(carry + j, mask, c);
    _mm512_mask_storeu_ps(hidden + j, mask, h);
    const __m256bh packed = _mm512_cvtneps_pbh(h);  // round to nearest even
    _mm256_mask_storeu_epi16(hidden_bf16 + j, mask, reinterpret_cast<__m256i>(packed));
  }
}

// ---------------------------------------------------------------- the draw (docs/export.md's rule, as the TF loop)

constexpr uint32_t kGolden = 0x9E3779B9u;

inline uint32_t mix(uint32_t value) {  // murmur3's 32-bit finaliser
  value ^= value >> 16;
  value *= 0x85EBCA6Bu;
  value ^= value >> 13;
  value *= 0xC2B2AE35u;
  value ^= value >> 16;
  return value;
}

inline uint32_t stream_key(int32_t seed, int32_t sample) {
  return mix(mix(static_cast<uint32_t>(seed) + kGolden) ^ mix(static_cast<uint32_t>(sample) + kGolden * 2u));
}

inline float uniform(uint32_t key, int32_t position) {
  const uint32_t bits = mix(key ^ mix(static_cast<uint32_t>(position) + kGolden * 3u));
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

int first_max(const float* values, int size) {
  int best = 0;
  for (int i = 1; i < size; ++i)
    if (values[i] > values[best]) best = i;
  return best;
}

// Inverse-CDF pick over weights (0 = excluded): the first symbol whose running sum (float64, in
// id order) passes u x total (docs/export.md, "The draw rule").
int pick(const float* weights, int size, float u) {
  double total = 0.0;
  for (int i = 0; i < size; ++i) total += weights[i];
  const double target = static_cast<double>(u) * total;
  double running = 0.0;
  int count = 0;
  for (int i = 0; i < size; ++i) {
    running += weights[i];
    count += running <= target;
  }
  return std::min(count, size - 1);
}

// weights[i] = exp(scaled[i] - max) for the symbols kept (kept == nullptr: all), else 0.
void softmax_weights(const float* scaled, const uint8_t* kept, int size, float* weights) {
  float top = -3.0e38f;
  for (int i = 0; i < size; ++i)
    if (!kept || kept[i]) top = std::max(top, scaled[i]);
  for (int i = 0; i < size; i += 16) {
    const __mmask16 mask = tail_mask(size - i);
    const __m512 values = _mm512_maskz_loadu_ps(mask, scaled + i);
    _mm512_mask_storeu_ps(weights + i, mask, exp16(_mm512_sub_ps(values, _mm512_set1_ps(top))));
  }
  if (kept)
    for (int i = 0; i < size; ++i)
      if (!kept[i]) weights[i] = 0.0f;
}

enum Mode { kArgmax = 0, kPlain = 1, kTruncated = 2 };

struct Scratch {
  std::vector<float> scaled, weights;
  std::vector<int> order;
  std::vector<uint8_t> kept;
  explicit Scratch(int vocab) : scaled(vocab), weights(vocab), order(vocab), kept(vocab) {}
};

int draw(const float* logits, int vocab, int mode, float temperature, int top_k, float top_p, float u,
         Scratch& scratch) {
  if (mode == kArgmax) return first_max(logits, vocab);
  float* scaled = scratch.scaled.data();
  for (int i = 0; i < vocab; ++i) scaled[i] = logits[i] / temperature;
  float* weights = scratch.weights.data();
  if (mode == kPlain) {
    softmax_weights(scaled, nullptr, vocab, weights);
    return pick(weights, vocab, u);
  }
  // top-k / top-p: a symbol is kept when fewer than k symbols score above it and the
  // probability of those above it (float64, summed from the highest) is below p (ties share
  // their rank and mass; p >= 1 keeps every symbol)
  softmax_weights(scaled, nullptr, vocab, weights);
  double total = 0.0;
  for (int i = 0; i < vocab; ++i) total += weights[i];
  int* order = scratch.order.data();
  for (int i = 0; i < vocab; ++i) order[i] = i;
  std::stable_sort(order, order + vocab, [scaled](int a, int b) { return scaled[a] > scaled[b]; });
  uint8_t* kept = scratch.kept.data();
  double mass_above = 0.0;
  for (int start = 0; start < vocab;) {
    int end = start + 1;
    while (end < vocab && scaled[order[end]] == scaled[order[start]]) ++end;
    const bool keep = (top_k <= 0 || start < top_k) && (top_p >= 1.0f || mass_above < top_p);
    for (int i = start; i < end; ++i) {
      kept[order[i]] = keep;
      mass_above += static_cast<double>(weights[order[i]]) / total;
    }
    start = end;
  }
  softmax_weights(scaled, kept, vocab, weights);
  const int chosen = pick(weights, vocab, u);
  return weights[chosen] > 0.0f ? chosen : order[0];
}

inline uint16_t to_bf16(float value) {  // round to nearest even (finite values)
  uint32_t bits;
  memcpy(&bits, &value, 4);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace

extern "C" {

// The model, as charrnn/native/sampling.py lays it out (see the top of this file).
struct CharrnnSampleModel {
  int32_t layers;
  int32_t units;         // width of every layer
  int32_t padded_units;  // K: units rounded up to a multiple of 32
  int32_t vocab;
  const float* table;            // (vocab, 4 units): layer 1's input part per symbol, bias included
  const float* const* biases;    // per layer: the input bias (4 units), layer 1's unused (in the table)
  const uint16_t* const* joints; // per layer: the packed joint kernel
  const int32_t* widths;         // per layer: N, the joint's columns (padded to 32)
  const float* head_bias;        // (vocab)
};

#ifndef CHARRNN_DPBF16
// Asks Linux for the AMX tile state; 0 when granted.
int charrnn_amx_init() {
  const long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return static_cast<int>(syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata));
}
#endif

// Runs `steps` characters for `streams` streams. Each step takes one id per stream (from
// `forced` (streams x steps) when it is given, else drawn from `logits`), writes it to `ids`
// (streams x steps) and advances the states. hidden, carry: (layers, streams, units) float32;
// logits: (streams, vocab), the logits of each stream's next character, in and out.
// seeds, samples, positions: each stream's key and its count of characters drawn so far;
// temperature, top_k, top_p: each stream's knobs; mode: 0 argmax, 1 plain, 2 top-k/top-p;
// threads: how many OpenMP threads share the work (the text is the same for any number).
int charrnn_sample_run(const CharrnnSampleModel* model, int streams, int steps, const int32_t* forced,
                       float* hidden, float* carry, float* logits, const int32_t* seeds, const int32_t* samples,
                       const int32_t* positions, const float* temperature, const int32_t* top_k,
                       const float* top_p, int mode, int32_t* ids, int threads) {
  const int layers = model->layers, units = model->units, k = model->padded_units, vocab = model->vocab;
  const int gates = 4 * units;
  const int mblocks = (streams + kTileRows - 1) / kTileRows, rows = mblocks * kTileRows;
  std::vector<std::vector<uint16_t>> inputs(layers, std::vector<uint16_t>(static_cast<size_t>(rows) * k, 0));
  std::vector<std::vector<float>> products(layers);
  for (int l = 0; l < layers; ++l) products[l].assign(static_cast<size_t>(rows) * model->widths[l], 0.0f);
  std::vector<uint32_t> keys(streams);
  for (int s = 0; s < streams; ++s) keys[s] = stream_key(seeds[s], samples[s]);
  std::vector<int32_t> current(streams);
  const long state = static_cast<long>(streams) * units;
#ifdef CHARRNN_DPBF16
  const bool own_rows = streams >= 8 * std::max(threads, 1);
#else
  const bool own_rows = false;  // AMX tiles take blocks of 16 rows: threads share columns
#endif

  // Each thread owns a share of every product's column-block pairs and a share of the streams
  // (their draws and cells); a barrier follows each product and each layer's cells. Every output
  // tile is made by the same instructions whichever thread makes it, so the text does not
  // depend on the thread count.
#pragma omp parallel num_threads(threads)
  {
    const int thread = omp_get_thread_num(), count = omp_get_num_threads();
    auto share = [&](int total, int unit) {  // [begin, end) of `total` in multiples of `unit`
      const int pieces = total / unit;
      return std::pair<int, int>(pieces * thread / count * unit, pieces * (thread + 1) / count * unit);
    };
    const auto [first_stream, last_stream] = share(streams, 1);
    auto columns = [&](int l) { return share(model->widths[l] / kTileCols, 2); };
    // layer l's product: each thread's share of the column-block pairs for all streams (then a
    // barrier before and after it), or, on the vdpbf16ps loop with 8 streams or more a thread,
    // all columns for the thread's own streams: no thread then waits for another within a call
    // (a loaded machine deschedules threads, and each barrier waited for the slowest)
    auto multiply = [&](int l, bool own_rows) {
      const int width = model->widths[l];
      if (own_rows) {
        product(inputs[l].data() + static_cast<size_t>(first_stream) * k, 0, last_stream - first_stream, k,
                model->joints[l], width, products[l].data() + static_cast<size_t>(first_stream) * width, 0,
                width / kTileCols);
      } else {
        const auto [first, last] = columns(l);
        product(inputs[l].data(), mblocks, streams, k, model->joints[l], width, products[l].data(), first, last);
      }
    };
    Scratch scratch(vocab);
#ifndef CHARRNN_DPBF16
    load_tile_config(std::min(streams, kTileRows));
#endif
    // every layer's recurrent part for the first step, from the states as they came in
    for (int l = 0; l < layers; ++l) {
      for (int s = first_stream; s < last_stream; ++s)
        for (int j = 0; j < units; ++j)
          inputs[l][static_cast<size_t>(s) * k + j] = to_bf16(hidden[l * state + static_cast<long>(s) * units + j]);
    }
    if (!own_rows) {
#pragma omp barrier
    }
    for (int l = 0; l < layers; ++l) multiply(l, own_rows);
    if (!own_rows) {
#pragma omp barrier
    }
    for (int t = 0; t < steps; ++t) {
      for (int s = first_stream; s < last_stream; ++s) {
        const float* row = logits + static_cast<long>(s) * vocab;
        current[s] = forced ? forced[static_cast<long>(s) * steps + t]
                            : draw(row, vocab, mode, temperature[s], top_k[s], top_p[s],
                                   uniform(keys[s], positions[s] + t), scratch);
        ids[static_cast<long>(s) * steps + t] = current[s];
      }
      for (int l = 0; l < layers; ++l) {
        const int width = model->widths[l];
        for (int s = first_stream; s < last_stream; ++s) {
          const float* input_part = l == 0 ? model->table + static_cast<long>(current[s]) * gates
                                           : products[l - 1].data() + static_cast<long>(s) * model->widths[l - 1] + gates;
          lstm_cell(input_part, products[l].data() + static_cast<long>(s) * width, l == 0 ? nullptr : model->biases[l],
                    units, hidden + l * state + static_cast<long>(s) * units, carry + l * state + static_cast<long>(s) * units,
                    inputs[l].data() + static_cast<size_t>(s) * k);
        }
        if (!own_rows) {
#pragma omp barrier
        }
        multiply(l, own_rows);
        if (!own_rows) {
#pragma omp barrier
        }
      }
      const int last_layer = layers - 1;
      for (int s = first_stream; s < last_stream; ++s) {
        const float* head = products[last_layer].data() + static_cast<long>(s) * model->widths[last_layer] + gates;
        float* row = logits + static_cast<long>(s) * vocab;
        for (int v = 0; v < vocab; ++v) row[v] = head[v] + model->head_bias[v];
      }
    }
#ifndef CHARRNN_DPBF16
    _tile_release();
#endif
  }
  return 0;
}

}  // extern "C"
