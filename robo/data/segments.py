"""Persistent, crash-safe replay storage: append-only segment files plus a rebuildable index.

Layout under `root`::

    segments/seg-00000000.seg    sealed segments (immutable, renamed into place when full)
    segments/seg-00000001.open   the active segment, appended to; at most one
    index.json                   records per sealed segment; written by tmp + fsync + rename

A record is one batch of rows (e.g. the transitions of one episode) with its meta (actor, episode
uid, policy version). On disk::

    b"RSG1" | u32 header_len | u64 payload_len | u32 crc32(header + payload) | header | payload

with `header` msgpack {"n": rows, "meta": {...}, "arrays": [[name, dtype, shape, offset, nbytes]]}
and `payload` the arrays' raw bytes. `append()` writes, flushes and fsyncs before returning, so an
acknowledged record survives `kill -9` and power loss (on a disk that honours fsync). On open, the
index is trusted for sealed segments whose size matches it; everything else is scanned, checking
CRCs, and a torn tail of the active segment (a crash mid-append) is truncated. Deleting index.json
loses nothing: it is rebuilt by scanning (`rebuild_index()`).

No pickle: arrays are raw bytes with a dtype whitelist, meta is msgpack.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from robo.data.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = ["SegmentStore", "RecordInfo", "SegmentError"]

MAGIC = b"RSG1"
_PREFIX = struct.Struct("<4sIQI")  # magic, header_len, payload_len, crc32
INDEX_VERSION = 1
_SEG_RE = re.compile(r"^seg-(\d{8})\.(seg|open)$")
_DTYPES = frozenset(
    ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64"]
)


class SegmentError(ValueError):
    """A segment store problem, naming the path."""


@dataclass
class RecordInfo:
    """Where a record lives and what it holds."""

    segment: str  # file name, e.g. "seg-00000003.seg"
    offset: int  # byte offset of the record prefix
    size: int  # prefix + header + payload bytes
    n: int  # rows
    meta: dict[str, Any] = field(default_factory=dict)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentStore:
    """Append-only record store; see the module docstring.

    Args:
        root: directory (created if missing).
        segment_bytes: seal the active segment once it grows past this size.
        fsync: fsync every append (durability); turn off only for throwaway data.
    """

    def __init__(self, root: str | os.PathLike, *, segment_bytes: int = 64 << 20, fsync: bool = True) -> None:
        if segment_bytes < 1024:
            raise ValueError(f"segment_bytes must be >= 1024, got {segment_bytes}")
        self.root = Path(root)
        self.seg_dir = self.root / "segments"
        self.seg_dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.records: list[RecordInfo] = []
        self.n_rows = 0
        self._uids: set[str] = set()
        self._active: Path | None = None
        self._fh: Any = None
        self._open()

    # ----------------------------------------------------------------------------------- opening
    def _segment_files(self) -> list[Path]:
        files = sorted((p for p in self.seg_dir.iterdir() if _SEG_RE.match(p.name)), key=lambda p: p.name)
        opens = [p for p in files if p.name.endswith(".open")]
        if len(opens) > 1:  # only the newest may be active; older ones were being sealed in a crash
            for p in opens[:-1]:
                sealed = p.with_suffix(".seg")
                os.replace(p, sealed)
                log.warning("%s: sealed %s left open by a crash", self.root, sealed.name)
            _fsync_dir(self.seg_dir)
            return self._segment_files()
        return files

    def _load_index(self) -> dict[str, dict[str, Any]]:
        path = self.root / "index.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
            if data.get("version") != INDEX_VERSION:
                raise ValueError(f"index version {data.get('version')}")
            return {s["name"]: s for s in data["segments"]}
        except (ValueError, KeyError, TypeError) as e:
            log.warning("%s: index.json unreadable (%s); rebuilding by scanning segments", self.root, e)
            return {}

    def _open(self) -> None:
        index = self._load_index()
        n_scanned = 0
        for path in self._segment_files():
            entry = index.get(path.name)
            size = path.stat().st_size
            if entry is not None and path.suffix == ".seg" and entry.get("size") == size:
                recs = [RecordInfo(**r) for r in entry["records"]]
            else:
                recs = self._scan(path, repair=path.suffix == ".open")
                n_scanned += 1
            for r in recs:
                self._register(r)
            if path.suffix == ".open":
                self._active = path
        if n_scanned:
            log.info(
                "%s: scanned %d segment(s); %d records, %d rows", self.root, n_scanned, len(self.records), self.n_rows
            )

    def _register(self, rec: RecordInfo) -> None:
        self.records.append(rec)
        self.n_rows += rec.n
        uid = rec.meta.get("uid")
        if isinstance(uid, str):
            self._uids.add(uid)

    def _scan(self, path: Path, repair: bool) -> list[RecordInfo]:
        """Read every record of a segment checking CRCs; a bad tail is truncated (`repair`) or skipped."""
        recs: list[RecordInfo] = []
        size = path.stat().st_size
        with open(path, "rb") as f:
            offset = 0
            while offset < size:
                try:
                    rec, _ = self._read_at(f, path.name, offset, verify=True)
                except SegmentError as e:
                    if repair:
                        log.warning("%s: truncating torn tail at byte %d of %d (%s)", path, offset, size, e)
                        with open(path, "r+b") as w:
                            w.truncate(offset)
                            w.flush()
                            os.fsync(w.fileno())
                    else:
                        log.error("%s: corrupt record at byte %d (%s); rest of segment skipped", path, offset, e)
                    break
                recs.append(rec)
                offset += rec.size
        return recs

    @staticmethod
    def _read_at(f: Any, name: str, offset: int, verify: bool) -> tuple[RecordInfo, bytes]:
        f.seek(offset)
        prefix = f.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise SegmentError(f"{name}@{offset}: truncated record prefix")
        magic, hlen, plen, crc = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise SegmentError(f"{name}@{offset}: bad magic {magic!r}")
        body = f.read(hlen + plen) if verify else f.read(hlen)
        if len(body) < (hlen + plen if verify else hlen):
            raise SegmentError(f"{name}@{offset}: truncated record body")
        if verify and zlib.crc32(body) != crc:
            raise SegmentError(f"{name}@{offset}: CRC mismatch")
        try:
            header = msgpack.unpackb(body[:hlen], raw=False)
            rec = RecordInfo(name, offset, _PREFIX.size + hlen + plen, int(header["n"]), dict(header["meta"]))
        except Exception as e:
            raise SegmentError(f"{name}@{offset}: bad record header ({type(e).__name__})") from None
        return rec, body

    # ----------------------------------------------------------------------------------- writing
    def append(
        self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None, *, sync: bool = True
    ) -> RecordInfo:
        """Durably append one record; arrays share their leading dim (rows). Returns its info.

        `meta["uid"]`, when given, is remembered so `has_uid()` can drop duplicates (resent batches).
        `sync=False` defers the fsync to the next `sync()` (group commit: several appends, one fsync;
        acknowledge none of them before `sync()` returns).
        """
        if not arrays:
            raise ValueError("append: no arrays")
        arrs = {k: np.require(np.asarray(v), requirements="C") for k, v in arrays.items()}
        rows = {a.shape[0] if a.ndim else -1 for a in arrs.values()}
        if len(rows) != 1 or -1 in rows:
            shapes = {k: a.shape for k, a in arrs.items()}
            raise ValueError(f"append: arrays must share a leading dim, got {shapes}")
        descs, offset = [], 0
        for k, a in arrs.items():
            if a.dtype.name not in _DTYPES:
                raise ValueError(f"append: array '{k}' has unsupported dtype {a.dtype}")
            descs.append([k, a.dtype.name, list(a.shape), offset, a.nbytes])
            offset += a.nbytes
        header = msgpack.packb({"n": next(iter(rows)), "meta": dict(meta or {}), "arrays": descs}, use_bin_type=True)
        crc = zlib.crc32(header)
        for a in arrs.values():
            crc = zlib.crc32(memoryview(a).cast("B"), crc)
        prefix = _PREFIX.pack(MAGIC, len(header), offset, crc)
        fh = self._writer()
        start = fh.tell()
        fh.write(prefix)
        fh.write(header)
        for a in arrs.values():
            fh.write(memoryview(a).cast("B"))
        fh.flush()
        if self.fsync and sync:
            os.fsync(fh.fileno())
        assert self._active is not None
        n = next(iter(arrs.values())).shape[0]
        rec = RecordInfo(self._active.name, start, fh.tell() - start, int(n), dict(meta or {}))
        self._register(rec)
        if fh.tell() >= self.segment_bytes:
            self.seal()
        return rec

    def sync(self) -> None:
        """Make every append so far durable (fsync of the active segment)."""
        if self._fh is not None:
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())

    def _writer(self) -> Any:
        if self._fh is not None:
            return self._fh
        if self._active is None:
            numbers = [int(p.name[4:12]) for p in self._segment_files()]
            last = max(numbers, default=-1)
            self._active = self.seg_dir / f"seg-{last + 1:08d}.open"
            self._active.touch()
            _fsync_dir(self.seg_dir)
        self._fh = open(self._active, "ab")
        return self._fh

    def seal(self) -> None:
        """Close the active segment, rename it to `.seg` and write the index (all durable)."""
        if self._active is None:
            return
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        sealed = self._active.with_suffix(".seg")
        os.replace(self._active, sealed)
        _fsync_dir(self.seg_dir)
        old = self._active.name
        for r in self.records:
            if r.segment == old:
                r.segment = sealed.name
        self._active = None
        self.write_index()

    def write_index(self) -> None:
        """Write index.json for the sealed segments (tmp + fsync + rename)."""
        by_seg: dict[str, list[dict[str, Any]]] = {}
        for r in self.records:
            if r.segment.endswith(".seg"):
                by_seg.setdefault(r.segment, []).append(asdict(r))
        segments = [
            {"name": name, "size": (self.seg_dir / name).stat().st_size, "records": recs}
            for name, recs in sorted(by_seg.items())
        ]
        data = {"version": INDEX_VERSION, "n_rows": self.n_rows, "segments": segments}
        atomic_write_bytes(self.root / "index.json", json.dumps(data).encode())

    def rebuild_index(self) -> None:
        """Forget the index and rebuild it by scanning every segment."""
        self.close()
        (self.root / "index.json").unlink(missing_ok=True)
        self.records, self.n_rows, self._uids = [], 0, set()
        self._open()
        self.write_index()

    # ----------------------------------------------------------------------------------- reading
    def __len__(self) -> int:
        """Total rows over all records."""
        return self.n_rows

    def has_uid(self, uid: str) -> bool:
        return uid in self._uids

    def read(self, rec: RecordInfo) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The arrays (owned copies) and meta of one record (CRC checked)."""
        if self._fh is not None:
            self._fh.flush()
        path = self.seg_dir / rec.segment
        with open(path, "rb") as f:
            _, body = self._read_at(f, rec.segment, rec.offset, verify=True)
        return self._decode(body)

    @staticmethod
    def _decode(body: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(body)
        header = next(unpacker)
        hlen = unpacker.tell()
        out = {}
        for name, dtype, shape, off, nbytes in header["arrays"]:
            if dtype not in _DTYPES:
                raise SegmentError(f"record array '{name}' has dtype {dtype}")
            out[name] = (
                np.frombuffer(body, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=hlen + off)
                .reshape(shape)
                .copy()
            )
        return out, dict(header["meta"])

    def __iter__(self) -> Iterator[tuple[dict[str, np.ndarray], dict[str, Any]]]:
        """Every record in append order: (arrays, meta)."""
        if self._fh is not None:
            self._fh.flush()
        handles: dict[str, Any] = {}
        try:
            for rec in list(self.records):
                f = handles.get(rec.segment)
                if f is None:
                    f = handles[rec.segment] = open(self.seg_dir / rec.segment, "rb")
                _, body = self._read_at(f, rec.segment, rec.offset, verify=True)
                yield self._decode(body)
        finally:
            for f in handles.values():
                f.close()

    def close(self) -> None:
        """Flush and close the active segment (it stays `.open` and is appended to on reopen)."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
        self.write_index()

    def __enter__(self) -> SegmentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
