"""Minimal safetensors reader/writer in numpy (standard library + numpy only).

File layout: an 8-byte little-endian uint64 N, then N bytes of JSON header, then the
data section. The header maps each tensor name to
    {"dtype": "F32" | "I32" | ..., "shape": [...], "data_offsets": [begin, end]}
with offsets relative to the start of the data section, plus an optional
"__metadata__" object of string -> string. Tensor data is little-endian, row-major.

The writer sorts tensors by name, packs them back to back and pads the header with
spaces to a multiple of 8 bytes (so the data section is 8-byte aligned).
"""

import json
import struct

import numpy as np

# safetensors dtype name -> little-endian numpy dtype.
DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {(dt.kind, dt.itemsize): name for name, dt in DTYPES.items()}
# Read only: numpy has no bfloat16, so BF16 tensors come back widened to float32 (exactly:
# a bfloat16 is the top half of a float32's bits).
BF16 = np.dtype("<u2")

METADATA_KEY = "__metadata__"


class SafetensorsError(ValueError):
    """A malformed safetensors file or an unsupported tensor."""


def _dtype_name(dt):
    dt = np.dtype(dt)
    name = _NAMES.get((dt.kind, dt.itemsize))
    if name is None:
        raise SafetensorsError("unsupported numpy dtype %s" % dt)
    return name


def serialize(tensors, metadata=None):
    """Return the bytes of a safetensors file holding `tensors` (name -> array-like)."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if name == METADATA_KEY:
            raise SafetensorsError("%r is reserved" % METADATA_KEY)
        arr = np.asarray(tensors[name])
        dtype_name = _dtype_name(arr.dtype)
        data = np.ascontiguousarray(arr, dtype=DTYPES[dtype_name]).tobytes(order="C")
        header[name] = {
            "dtype": dtype_name,
            "shape": [int(d) for d in arr.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata is not None:
        meta = {}
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError("__metadata__ must map str to str (got %r: %r)" % (k, v))
            meta[k] = v
        header = dict([(METADATA_KEY, meta)] + list(header.items()))
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write(path, tensors, metadata=None):
    """Write `tensors` (name -> numpy array) and optional metadata (str -> str) to `path`."""
    blob = serialize(tensors, metadata)
    with open(path, "wb") as f:
        f.write(blob)


def deserialize(blob):
    """Parse safetensors bytes; returns (tensors: name -> numpy array, metadata dict)."""
    if len(blob) < 8:
        raise SafetensorsError("file too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise SafetensorsError("header length %d runs past the end of the file (%d bytes)"
                               % (n, len(blob)))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError("header is not valid JSON: %s" % e)
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    data = memoryview(blob)[8 + n:]
    metadata = header.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata, dict):
        raise SafetensorsError("__metadata__ is not an object")
    tensors = {}
    for name, info in header.items():
        try:
            dtype_name, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError("tensor %r: malformed header entry %r" % (name, info))
        if dtype_name not in DTYPES and dtype_name != "BF16":
            raise SafetensorsError("tensor %r: unsupported dtype %r" % (name, dtype_name))
        dt = BF16 if dtype_name == "BF16" else DTYPES[dtype_name]
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError("tensor %r: bad shape %r" % (name, shape))
        count = 1
        for d in shape:
            count *= d
        if not (0 <= begin <= end <= len(data)) or end - begin != count * dt.itemsize:
            raise SafetensorsError("tensor %r: data_offsets [%d, %d] do not fit %s %r in a %d-byte "
                                   "data section" % (name, begin, end, dtype_name, shape, len(data)))
        arr = np.frombuffer(data[begin:end], dtype=dt, count=count).reshape(shape)
        arr = arr.astype(dt.newbyteorder("="), copy=True)
        if dtype_name == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = arr
    return tensors, metadata


def read(path):
    """Read a safetensors file; returns (tensors: name -> numpy array, metadata dict)."""
    with open(path, "rb") as f:
        return deserialize(f.read())
