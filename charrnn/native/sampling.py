"""charrnn's native sampling loop: an LSTM's whole generation loop in bf16, on the CPU's AMX tiles
or, on a CPU with AVX512-BF16 but no tiles (AMD Zen 4/5), on vdpbf16ps.

`sample_amx.cc` (plain C, no TensorFlow inside) runs the step, the draw and the loop for any
number of streams. It is compiled on first use with g++ into `<folder>/<hash>/<variant>.so`
(the folder as for the training op: $CHARRNN_NATIVE_CACHE, else `<cache>/native`), written
atomically, and loaded with ctypes; the variant is "sample_amx" where the CPU has AMX tiles, else
"sample_avx512_bf16" (the same source with -DCHARRNN_DPBF16) where it has AVX512-BF16. Where it
has neither, there is no g++, the compile or load fails, or CHARRNN_NATIVE=0 is set,
`loop_library` returns None with the reason and the sampler keeps its XLA loop. A loop that loads
must still prove itself on each model (`NativeLoop.check`) before a sampler uses it.

Why native: one stream is bound by reading the weights once a character (3.2 MB in float32 for
2 x LSTM(256), through a 2 MB L2); bf16 tiles read half, and XLA's CPU dot has no bf16 kernel,
so in XLA bf16 only helped one stream and slowed 64 (see the README's sampling table).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("sample_amx.cc")
MODES = {"argmax": 0, "plain": 1, "truncated": 2}
MAX_THREADS = 2  # measured on a 2-core machine only

_loaded: dict = {}  # "library": the loaded CDLL or None, "reason": why not


# variant: (the flags it needs, extra g++ flags, the library's name, the sampler's backend name)
VARIANTS = {
    "amx": (("amx_tile", "amx_bf16", "avx512_bf16", "avx512bw"), ["-mamx-tile", "-mamx-bf16"], "sample_amx",
            "native-amx-bf16"),
    "avx512_bf16": (("avx512_bf16", "avx512bw", "avx512f"), ["-DCHARRNN_DPBF16"], "sample_avx512_bf16",
                    "native-avx512-bf16"),
}


def variant() -> str | None:
    """Which native loop this CPU runs: "amx", "avx512_bf16", or None (neither set of units)."""
    from charrnn.hardware import cpu_flags

    flags = cpu_flags()
    for name, (needed, *_) in VARIANTS.items():
        if all(flag in flags for flag in needed):
            return name
    return None


def backend_name() -> str:
    """The sampler's backend name for this CPU's native loop ("native-amx-bf16" or "native-avx512-bf16")."""
    return VARIANTS[variant() or "amx"][3]


class _Model(ctypes.Structure):
    _fields_ = [("layers", ctypes.c_int32), ("units", ctypes.c_int32), ("padded_units", ctypes.c_int32),
                ("vocab", ctypes.c_int32), ("table", ctypes.c_void_p), ("biases", ctypes.c_void_p),
                ("joints", ctypes.c_void_p), ("widths", ctypes.c_void_p), ("head_bias", ctypes.c_void_p)]


def has_amx() -> bool:
    """Whether this CPU has the AMX tiles the native loop runs on."""
    from charrnn.hardware import missing_amx_flags

    return not missing_amx_flags()


def why_not_native() -> str | None:
    """Why this machine cannot run the native sampling loop (a short phrase), or None."""
    from charrnn.hardware import cpu_flags
    from charrnn.native import build_blocker

    def missing_units():
        if variant() is not None:
            return None
        flags = cpu_flags()
        missing = [flag for flag in VARIANTS["avx512_bf16"][0] if flag not in flags]
        return f"this CPU has no AMX tiles and lacks {', '.join(missing)}"

    return build_blocker(missing_units)


def _build_command(output: Path) -> list[str]:
    extra = VARIANTS[variant() or "amx"][1]
    return [os.environ.get("CXX", "g++"), "-shared", "-fPIC", "-O2", "-w", "-std=c++17", *extra,
            "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mfma", "-fopenmp",
            str(SOURCE), "-o", str(output)]


def library_path() -> Path:
    """Where the compiled loop lives: a folder named by a hash of its source and compile command."""
    from charrnn.native import cache_folder

    key = hashlib.sha256(SOURCE.read_bytes() + b"\0" + " ".join(_build_command(Path("out"))).encode())
    return cache_folder() / key.hexdigest()[:16] / f"{VARIANTS[variant() or 'amx'][2]}.so"


def loop_library():
    """The loaded native loop (a ctypes CDLL), compiling it on first use; None where it is
    unavailable (`unavailable_reason()` says why). Decided once per process."""
    from charrnn.native import build_and_load

    if "library" in _loaded:
        return _loaded["library"]

    def load(path: Path):
        library = ctypes.CDLL(str(path))
        library.charrnn_sample_run.restype = ctypes.c_int
        if variant() == "amx" and library.charrnn_amx_init() != 0:
            raise RuntimeError("Linux refused the AMX tile state (arch_prctl)")
        return library

    library, reason = build_and_load("the native loop", why_not_native, library_path, _build_command, load)
    _loaded.update(library=library, reason=reason)
    return library


def unavailable_reason() -> str | None:
    """Why `loop_library()` returned None (None when it is loaded or not yet decided)."""
    return _loaded.get("reason")


def reset() -> None:
    """Forgets the decision `loop_library` made (tests switch CHARRNN_NATIVE within one process)."""
    _loaded.clear()


def to_bf16_bits(array: np.ndarray) -> np.ndarray:
    """float32 values as bf16 bit patterns (uint16), rounded to nearest even."""
    bits = np.ascontiguousarray(array, np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pack_tiles(kernel: np.ndarray) -> tuple[np.ndarray, int]:
    """A (K, N) float32 kernel as the bf16 B tiles `sample_amx.cc`'s product reads.

    K and N are padded with zeros to multiples of 32. Tile (nb, kb) holds rows kb*32 ... +31
    and columns nb*16 ... +15, as 16 rows of 16 (k, k+1) pairs; tiles run over kb within nb.

    Returns:
        (the packed uint16 array, the padded N).
    """
    rows, columns = kernel.shape
    padded = np.zeros((_round_up(rows, 32), _round_up(columns, 32)), np.float32)
    padded[:rows, :columns] = kernel
    kblocks, nblocks = padded.shape[0] // 32, padded.shape[1] // 16
    tiles = to_bf16_bits(padded).reshape(kblocks, 16, 2, nblocks, 16).transpose(3, 0, 1, 4, 2)
    return np.ascontiguousarray(tiles).reshape(-1), padded.shape[1]


class NativeLoop:
    """A stacked LSTM's weights laid out for the native loop, and the calls that run it.

    Args:
        library: `loop_library()`.
        table: (V, 4 units) float32, layer 1's input part per symbol (embedding @ kernel + bias).
        input_biases: per layer after the first, its input bias (4 units).
        recurrent_kernels: per layer, (units, 4 units).
        input_kernels: per layer after the first, (units, 4 units).
        head_kernel, head_bias: (units, V), (V,).
    """

    def __init__(self, library, table, input_biases, recurrent_kernels, input_kernels, head_kernel, head_bias):
        self.library = library
        self.backend = backend_name()
        self._reference = (table, input_biases, recurrent_kernels, input_kernels, head_kernel, head_bias)
        self.threads = max(1, min(MAX_THREADS, len(os.sched_getaffinity(0))))
        self.layers = len(recurrent_kernels)
        self.units = recurrent_kernels[0].shape[0]
        self.vocab = head_kernel.shape[1]
        self._table = np.ascontiguousarray(table, np.float32)
        gates = 4 * self.units
        self._biases = [np.zeros(gates, np.float32)] + [np.ascontiguousarray(bias, np.float32).reshape(-1)
                                                         for bias in input_biases]
        below = list(input_kernels) + [head_kernel]
        packed = [pack_tiles(np.concatenate([recurrent, following], axis=1))
                  for recurrent, following in zip(recurrent_kernels, below)]
        self._joints = [tiles for tiles, _ in packed]
        self._widths = np.array([width for _, width in packed], np.int32)
        self._head_bias = np.ascontiguousarray(head_bias, np.float32).reshape(-1)
        pointers = lambda arrays, kind: (kind * len(arrays))(*[array.ctypes.data for array in arrays])
        self._bias_pointers = pointers(self._biases, ctypes.c_void_p)
        self._joint_pointers = pointers(self._joints, ctypes.c_void_p)
        self._model = _Model(self.layers, self.units, _round_up(self.units, 32), self.vocab,
                             self._table.ctypes.data, ctypes.addressof(self._bias_pointers),
                             ctypes.addressof(self._joint_pointers), self._widths.ctypes.data,
                             self._head_bias.ctypes.data)

    def check(self, streams: int = 9) -> str | None:
        """Proves the loop on this model's shapes: one step of `streams` streams (a block of eight
        rows and a single row on the vdpbf16ps loop) from random states and characters, every
        product included, its logits against `reference_logits` from the same states.

        Returns:
            None when every logit is within 1% of (1 + the largest logit) of the reference, else
            a phrase saying how far it was (the sampler then keeps the XLA loop).
        """
        rng = np.random.default_rng(0)
        ids = rng.integers(0, self.vocab, (streams, 1)).astype(np.int32)
        states = self.zero_states(streams)
        states["hidden"][:] = rng.uniform(-1, 1, states["hidden"].shape)
        states["carry"][:] = rng.normal(0, 1, states["carry"].shape)
        expected = self.reference_logits(ids, states["hidden"].copy(), states["carry"].copy())
        self.run(states, 1, forced=ids)
        error = float(np.max(np.abs(states["logits"] - expected)))
        allowed = 1e-2 * (1.0 + float(np.max(np.abs(expected))))
        if not error <= allowed:  # NaN fails too
            return f"its logits were {error:.3g} from the reference's (allowed {allowed:.3g})"
        return None

    def reference_logits(self, ids: np.ndarray, hidden=None, carry=None) -> np.ndarray:
        """float64 logits after feeding `ids` (streams, steps) to streams in states `hidden` and
        `carry` (layers, streams, units; zeros when None), in numpy, with every product's kernel
        and input rounded to bf16 (what the loop computes, but for the order of its sums)."""
        as_bf16 = lambda array: (to_bf16_bits(array).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        sigmoid = lambda value: 1.0 / (1.0 + np.exp(-value))
        table, input_biases, recurrent_kernels, input_kernels, head_kernel, head_bias = self._reference
        recurrent = [as_bf16(kernel) for kernel in recurrent_kernels]
        inputs = [as_bf16(kernel) for kernel in input_kernels]
        shape = (self.layers, ids.shape[0], self.units)
        hidden = list(np.zeros(shape) if hidden is None else np.asarray(hidden, np.float64))
        carry = list(np.zeros(shape) if carry is None else np.asarray(carry, np.float64))
        for step in range(ids.shape[1]):
            below = None
            for layer in range(self.layers):
                from_input = (np.asarray(table, np.float64)[ids[:, step]] if layer == 0 else
                              as_bf16(below) @ inputs[layer - 1] + np.asarray(input_biases[layer - 1]).reshape(-1))
                gates = from_input + as_bf16(hidden[layer]) @ recurrent[layer]
                gate_in, forget, candidate, out = np.split(gates, 4, axis=1)
                carry[layer] = sigmoid(forget) * carry[layer] + sigmoid(gate_in) * np.tanh(candidate)
                hidden[layer] = sigmoid(out) * np.tanh(carry[layer])
                below = hidden[layer]
        return as_bf16(below) @ as_bf16(head_kernel) + np.asarray(head_bias, np.float64).reshape(-1)

    def zero_states(self, streams: int) -> dict:
        """Fresh states for `streams` streams: hidden and carry (layers, streams, units), logits (streams, V)."""
        shape = (self.layers, streams, self.units)
        return {"hidden": np.zeros(shape, np.float32), "carry": np.zeros(shape, np.float32),
                "logits": np.zeros((streams, self.vocab), np.float32)}

    def run(self, states: dict, steps: int, forced=None, knobs=None, mode: str = "plain",
            positions=None, threads: int | None = None) -> np.ndarray:
        """Runs `steps` characters for every stream, updating `states` in place.

        Args:
            states: from `zero_states` (or an earlier run).
            steps: characters per stream.
            forced: (streams, steps) int ids to feed instead of drawing (a prime), or None.
            knobs: (seeds, samples, temperatures, top_k, top_p), one entry per stream, as
                `charrnn.generation.sampler.stream_knobs` makes them; needed when drawing.
            mode: "argmax", "plain" or "truncated" (see `sampler.draw_mode`).
            positions: (streams,) each stream's count of characters drawn so far. Defaults to 0.
            threads: OpenMP threads sharing the work (the ids are the same for any number).
                Defaults to `default_threads(streams)`.

        Returns:
            (streams, steps) int32 ids, fed or drawn.
        """
        streams = states["logits"].shape[0]
        expected = {"hidden": (self.layers, streams, self.units), "carry": (self.layers, streams, self.units),
                    "logits": (streams, self.vocab)}
        for name, shape in expected.items():  # the C loop writes into these in place
            array = states[name]
            if array.dtype != np.float32 or array.shape != shape or not array.flags.c_contiguous:
                raise ValueError(f"states[{name!r}] must be C-contiguous float32 of shape {shape}, "
                                 f"got {array.dtype} {array.shape}")
        if forced is not None and (np.shape(forced) != (streams, steps) or np.size(forced) and (
                np.min(forced) < 0 or np.max(forced) >= self.vocab)):
            raise ValueError(f"forced must be ({streams}, {steps}) ids in [0, {self.vocab}), got shape {np.shape(forced)}")
        as_array = lambda value, kind: np.ascontiguousarray(value, kind)
        if knobs is None:
            knobs = (np.zeros(streams), np.zeros(streams), np.ones(streams), np.zeros(streams), np.ones(streams))
        seeds, samples, temperature, top_k, top_p = (as_array(knobs[0], np.int32), as_array(knobs[1], np.int32),
                                                     as_array(knobs[2], np.float32), as_array(knobs[3], np.int32),
                                                     as_array(knobs[4], np.float32))
        positions = as_array(np.zeros(streams) if positions is None else positions, np.int32)
        forced = None if forced is None else as_array(forced, np.int32)
        ids = np.empty((streams, steps), np.int32)
        pointer = lambda array: None if array is None else array.ctypes.data_as(ctypes.c_void_p)
        self.library.charrnn_sample_run(
            ctypes.byref(self._model), ctypes.c_int(streams), ctypes.c_int(steps), pointer(forced),
            pointer(states["hidden"]), pointer(states["carry"]), pointer(states["logits"]), pointer(seeds),
            pointer(samples), pointer(positions), pointer(temperature), pointer(top_k), pointer(top_p),
            ctypes.c_int(MODES[mode]), pointer(ids), ctypes.c_int(threads or self.default_threads(streams)))
        return ids

    def default_threads(self, streams: int) -> int:
        """Threads for `streams` streams: `self.threads` (the CPUs this process may use, at most
        2) on the AMX loop; on the vdpbf16ps loop as many as give each thread 8 streams or more
        (each then runs its own streams with no barrier), else one. Threads that share a
        product's columns wait for each other at four barriers a character: on a loaded 2-core
        Zen 4 EPYC one stream ran at 1,800 chars/s on two threads against 14,800 on one
        (bench/native_sample_ab.py, December 2026)."""
        if self.backend == VARIANTS["amx"][3]:
            return self.threads
        return max(1, min(self.threads, streams // 8))
