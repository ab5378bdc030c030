"""Hostile mp4s for the media tests (issue 21 item 12): files a relay could send.

``tiny_clip`` encodes a small real H.264 clip (baseline profile, moov after mdat, so the
index can be rewritten without moving any chunk). ``claiming`` rewrites that clip's
sequence parameter set (the SPS in ``avcC``) and its sample entry so the file says it is
``width`` x ``height``, while its frames stay 64x64: what a decoder would believe and
allocate for.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import av

MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
#: Boxes that hold boxes (the path down to avcC), with the bytes before their children.
_CONTAINERS = {b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"stsd": 8,
               b"avc1": 78}


def tiny_clip(path: Path, *, frames: int = 24, fps: int = 12, size: int = 64) -> Path:
    """A real H.264 mp4 of ``frames`` frames at ``fps`` (grey ramps: cheap to encode)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "profile": "baseline"}
        for i in range(frames):
            frame = av.VideoFrame(size, size, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 5) % 256]) * plane.buffer_size)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def random_mp4(path: Path, size: int = 2 * 1024 * 1024) -> Path:
    """An mp4 signature followed by random bytes."""
    path.write_bytes(MP4_HEAD + os.urandom(size))
    return path


def truncated(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


# -- an SPS that claims another size ----------------------------------------------------------


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> str:
        part = self.bits[self.pos: self.pos + n]
        self.pos += n
        return part

    def ue(self) -> tuple[int, str]:
        zeros = 0
        while self.bits[self.pos + zeros] == "0":
            zeros += 1
        code = self.u(2 * zeros + 1)
        return int(code, 2) - 1, code


def _ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def claiming_sps(sps: bytes, width: int, height: int) -> bytes:
    """A baseline-profile SPS NAL unit with its picture size replaced."""
    bits = _Bits(_unescape(sps))
    out = [bits.u(8), bits.u(8), bits.u(8), bits.u(8)]       # NAL header, profile, flags, level
    assert int(out[1], 2) == 66, "tiny_clip makes baseline SPSs only"
    out.append(bits.ue()[1])                                # seq_parameter_set_id
    out.append(bits.ue()[1])                                # log2_max_frame_num_minus4
    poc_type, code = bits.ue()
    out.append(code)
    if poc_type == 0:
        out.append(bits.ue()[1])
    assert poc_type in (0, 2), poc_type
    out.append(bits.ue()[1])                                # max_num_ref_frames
    out.append(bits.u(1))                                   # gaps_in_frame_num_allowed
    bits.ue()
    bits.ue()
    out += [_ue(width // 16 - 1), _ue(height // 16 - 1)]
    rest = bits.bits[bits.pos:].rstrip("0")                 # up to the rbsp stop bit
    text = "".join(out) + rest
    text += "0" * (-len(text) % 8)
    return _escape(bytes(int(text[i: i + 8], 2) for i in range(0, len(text), 8)))


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    found, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i: i + 8])
        found.append((kind, data[i + 8: i + size]))
        i += size
    return found


def _rewrite(kind: bytes, payload: bytes, width: int, height: int) -> bytes:
    if kind == b"avcC":
        (sps_len,) = struct.unpack(">H", payload[6:8])
        sps = claiming_sps(payload[8: 8 + sps_len], width, height)
        payload = payload[:6] + struct.pack(">H", len(sps)) + sps + payload[8 + sps_len:]
    elif kind in _CONTAINERS:
        skip = _CONTAINERS[kind]
        head = bytearray(payload[:skip])
        if kind == b"avc1":
            head[24:28] = struct.pack(">HH", min(width, 65535), min(height, 65535))
        payload = bytes(head) + b"".join(_rewrite(k, p, width, height)
                                         for k, p in _boxes(payload[skip:]))
    return struct.pack(">I4s", len(payload) + 8, kind) + payload


def claiming(src: Path, dst: Path, width: int, height: int) -> Path:
    """``src`` (a ``tiny_clip``) whose headers claim a ``width`` x ``height`` picture."""
    boxes = _boxes(src.read_bytes())
    kinds = [k for k, _ in boxes]
    assert kinds.index(b"mdat") < kinds.index(b"moov"), "the index must come last"
    dst.write_bytes(b"".join(_rewrite(k, p, width, height) for k, p in boxes))
    return dst
