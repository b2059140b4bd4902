"""MNIST's IDX format: reading MNIST's files, and writing exported datasets that load wherever MNIST does.

An IDX file is a four-byte magic number (two zero bytes, a type code, the number of dimensions),
each dimension's size as a big-endian 32-bit integer, then the values in C order. MNIST uses the
unsigned-byte type for both files: images are ``(count, rows, columns)`` and labels ``(count,)``.
"""

import struct

import numpy as np

UNSIGNED_BYTE = 0x08
# The dimension sizes are 32-bit and the dimension count is one byte.
MAX_DIMENSION = 2**32 - 1
MAX_DIMENSIONS = 255


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an unsigned-byte array: header, sizes, then the values."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX export expects uint8 values (as MNIST's files hold), got dtype {array.dtype}.")
    if not 1 <= array.ndim <= MAX_DIMENSIONS:
        raise ValueError(f"An IDX file holds 1 to {MAX_DIMENSIONS} dimensions, got {array.ndim}.")
    if max(array.shape) > MAX_DIMENSION:
        raise ValueError(f"An IDX dimension holds at most {MAX_DIMENSION} entries, got shape {array.shape}.")
    header = struct.pack(">BBBB", 0, 0, UNSIGNED_BYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def read_idx(content: bytes) -> np.ndarray:
    """The unsigned-byte array an IDX encoding holds; ``ValueError`` when the bytes are not one."""
    if len(content) < 4 or content[:3] != bytes([0, 0, UNSIGNED_BYTE]):
        raise ValueError("it does not start with the unsigned-byte IDX magic number")
    dimensions = content[3]
    header_size = 4 + 4 * dimensions
    if len(content) < header_size:
        raise ValueError("its header is cut short")
    shape = struct.unpack(f">{dimensions}I", content[4:header_size])
    if len(content) - header_size < int(np.prod(shape)):
        raise ValueError(f"it holds fewer values than its shape {shape} needs")
    return np.frombuffer(content, dtype=np.uint8, offset=header_size, count=int(np.prod(shape))).reshape(shape).copy()
