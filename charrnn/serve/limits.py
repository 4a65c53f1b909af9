"""What a request to `charrnn serve` may ask for, and the checks that turn a bad request into a
4xx answer naming the field (never a 500)."""

from __future__ import annotations

import math

from charrnn.config import SampleConfig

MAX_BODY_BYTES = 16 * 1024  # a JSON body larger than this gets 413
MAX_LENGTH = 10_000  # characters generated per sample
MAX_PRIME = 4_000  # characters of prime
MAX_SAMPLES = 32  # samples per request
MAX_SCORE_TEXTS = 1_000  # texts per POST /score (each at most MAX_LENGTH characters)
MAX_STOPS = 8  # stop sequences per request
MAX_STOP_LENGTH = 100  # characters per stop sequence
SEED_LIMIT = 2 ** 63  # seeds in (-2**63, 2**63); the draws use their low 32 bits, as `charrnn sample` does

# field -> (kind, can be null)
FIELDS = {"prime": ("text", False), "length": ("integer", False), "temperature": ("number", False),
          "top_k": ("integer", True), "top_p": ("number", True), "seed": ("integer", True),
          "num_samples": ("integer", False), "argmax": ("boolean", False), "stop": ("texts", True),
          "unknown": ("text", False)}
UNKNOWN_RULES = ("auto", "skip", "error")  # how new text's characters outside the vocabulary are read


class RequestError(Exception):
    """A request the server refuses: `status` (4xx), the `field` at fault (or None) and a message."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status

    def body(self) -> dict:
        return {"error": str(self), "field": self.field}


def _typed(field: str, value):
    kind, nullable = FIELDS[field]
    if value is None and nullable:
        return None
    ok = {"text": isinstance(value, str),
          "integer": isinstance(value, int) and not isinstance(value, bool),
          "number": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
          "boolean": isinstance(value, bool),
          "texts": isinstance(value, str) or (isinstance(value, list)
                                              and all(isinstance(item, str) for item in value))}[kind]
    if not ok:
        wanted = {"text": "a string", "integer": "an integer", "number": "a finite number", "boolean": "true or false",
                  "texts": "a string or a list of strings"}
        raise RequestError(f"Expected {field} to be {wanted[kind]}{' or null' if nullable else ''}. "
                           f"Received: {field}={value!r}", field)
    return value


def sample_config(fields: dict, vocabulary: set, max_streams: int) -> SampleConfig:
    """A checked `SampleConfig` from a request's fields (JSON values).

    Raises:
        RequestError: an unknown field, a value of the wrong type or out of range, or a prime
            with characters outside the vocabulary.
    """
    if not isinstance(fields, dict):
        raise RequestError(f"Expected a JSON object. Received: {type(fields).__name__}")
    fields = {name: value for name, value in fields.items() if name != "label"}  # see `sample_label`
    for name in fields:
        if name not in FIELDS:
            raise RequestError(f"Unknown field {name!r}; expected some of: {', '.join(FIELDS)}, label", name)
    values = {name: _typed(name, value) for name, value in fields.items()}
    checks = {
        "length": lambda value: 0 <= value <= MAX_LENGTH, "temperature": lambda value: value > 0,
        "top_k": lambda value: value is None or value >= 1, "top_p": lambda value: value is None or 0 < value <= 1,
        "num_samples": lambda value: 1 <= value <= min(MAX_SAMPLES, max_streams),
        "seed": lambda value: value is None or -SEED_LIMIT < value < SEED_LIMIT,
        "prime": lambda value: len(value) <= MAX_PRIME, "unknown": lambda value: value in UNKNOWN_RULES}
    ranges = {"length": f"0 <= length <= {MAX_LENGTH}", "temperature": "temperature > 0", "top_k": "top_k >= 1",
              "top_p": "0 < top_p <= 1", "num_samples": f"1 <= num_samples <= {min(MAX_SAMPLES, max_streams)}",
              "seed": "-2**63 < seed < 2**63", "prime": f"a prime of at most {MAX_PRIME} characters",
              "unknown": "unknown in ('auto', 'skip', 'error')"}
    for name, value in values.items():
        if name in checks and not checks[name](value):
            shown = f"{len(value)} characters" if name == "prime" else repr(value)
            raise RequestError(f"Expected {ranges[name]}. Received: {name}={shown}", name)
    if values.get("argmax"):  # as `charrnn sample --argmax`: the drawing options are refused, not ignored
        for name in ("temperature", "top_k", "top_p"):
            if values.get(name) is not None:
                raise RequestError(f"argmax takes the most likely character and does not use {name}", name)
    missing = sorted({symbol for symbol in values.get("prime", "") if symbol not in vocabulary})
    if missing and values.get("unknown") == "error":  # else the one rule reads them (Vocabulary.read)
        raise RequestError(f"the prime has characters not in the vocabulary: {', '.join(map(repr, missing))}", "prime")
    if values.get("stop") is not None:
        values["stop"] = _stops(values["stop"], vocabulary)
    else:
        values.pop("stop", None)
    return SampleConfig(**values)


def _stops(stop, vocabulary: set) -> tuple[str, ...]:
    """A request's stop sequences (one string or a list of them), checked.

    Raises:
        RequestError: too many stops, an empty or too long one, or one with characters outside
            the vocabulary (it could never be generated).
    """
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if len(stops) > MAX_STOPS:
        raise RequestError(f"Expected at most {MAX_STOPS} stop sequences. Received: {len(stops)}", "stop")
    for text in stops:
        if not 1 <= len(text) <= MAX_STOP_LENGTH:
            raise RequestError(f"Expected each stop to have 1 to {MAX_STOP_LENGTH} characters. "
                               f"Received: stop={text[:MAX_STOP_LENGTH + 1]!r}", "stop")
        missing = sorted({symbol for symbol in text if symbol not in vocabulary})
        if missing:
            raise RequestError(f"the stop {text!r} has characters not in the vocabulary: "
                               f"{', '.join(map(repr, missing))}, so it can never be generated", "stop")
    return stops


def sample_label(fields: dict, label_names, num_samples: int):
    """The label of a request for a labelled run: one name for every stream, or a list of one
    per stream; None for an unlabelled run.

    Raises:
        RequestError: (field "label") a label for an unlabelled run, none for a labelled one, an
            unknown one (the message lists the labels), or a list of the wrong length or type.
    """
    given = fields.get("label") if isinstance(fields, dict) else None
    names = ", ".join(label_names)
    if not label_names:
        if given is not None:
            raise RequestError("this run was trained without labels, so it takes no label", "label")
        return None
    if given is None:
        raise RequestError(f"this run is labelled: give \"label\", one of: {names}", "label")
    labels = [given] if isinstance(given, str) else given
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise RequestError(f"Expected label to be a string or a list of strings (one per sample). "
                           f"Received: label={given!r}", "label")
    if not isinstance(given, str) and len(labels) != num_samples:
        raise RequestError(f"{len(labels)} labels for {num_samples} samples: give one label, or one per sample", "label")
    unknown = next((label for label in labels if label not in label_names), None)
    if unknown is not None:
        raise RequestError(f"this run has no label {unknown!r}; its labels are: {names}", "label")
    return given if isinstance(given, str) else tuple(labels)


def from_query(params) -> dict:
    """Typed fields from a query string (`GET /stream?prime=...&length=...`); `stop` and `label`
    may be given more than once (each one stop sequence; one label per sample)."""
    fields = {}
    labels = [text for name, text in params.multi_items() if name == "label"]
    if labels:
        fields["label"] = labels[0] if len(labels) == 1 else labels
    for name, text in params.multi_items():
        if name == "label":
            continue
        if name not in FIELDS:
            raise RequestError(f"Unknown field {name!r}; expected some of: {', '.join(FIELDS)}, label", name)
        kind, nullable = FIELDS[name]
        if kind == "texts":  # repeatable: ?stop=a&stop=b
            fields.setdefault(name, []).append(text)
            continue
        if name in fields:
            raise RequestError(f"{name} is given more than once", name)
        fields[name] = _parse(name, kind, text)
    return fields


def _parse(name: str, kind: str, text: str):
    if kind == "text":
        return text
    if kind == "boolean":
        if text.lower() not in ("true", "false", "1", "0"):
            raise RequestError(f"Expected {name} to be true or false. Received: {name}={text!r}", name)
        return text.lower() in ("true", "1")
    try:
        return int(text) if kind == "integer" else float(text)
    except ValueError:
        raise RequestError(f"Expected {name} to be a{'n integer' if kind == 'integer' else ' number'}. "
                           f"Received: {name}={text!r}", name) from None


def score_texts(fields) -> list:
    """The texts of a POST /score body: {"texts": [strings], "unknown"?, "label"?}, within the limits.

    Raises:
        RequestError: not an object, unknown fields, a missing or mistyped list, too many or too
            long texts, an "unknown" rule that is not one of `UNKNOWN_RULES`.
    """
    if not isinstance(fields, dict):
        raise RequestError("the body must be a JSON object", field=None)
    stray = sorted(set(fields) - {"texts", "label", "unknown"})
    if stray:
        raise RequestError(f"unknown field {stray[0]!r}; POST /score takes 'texts', 'unknown' (and a labelled "
                           "run's 'label')", field=stray[0])
    if fields.get("unknown", "auto") not in UNKNOWN_RULES:
        raise RequestError(f"Expected unknown in ('auto', 'skip', 'error'). Received: unknown={fields['unknown']!r}",
                           field="unknown")
    texts = fields.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise RequestError("texts must be a non-empty list of strings", field="texts")
    if len(texts) > MAX_SCORE_TEXTS:
        raise RequestError(f"at most {MAX_SCORE_TEXTS} texts per request; got {len(texts)}", field="texts")
    if max(map(len, texts)) > MAX_LENGTH:
        raise RequestError(f"each text may have at most {MAX_LENGTH} characters", field="texts")
    return texts
