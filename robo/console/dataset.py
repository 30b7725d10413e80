"""`robo console --dataset <dir>`: browse a recorded dataset's episodes in the console page.

Routes (all behind the server's token rule):

    GET /api/episodes                      {root, fps, cameras, episodes: [{index, length, success, segments, ...}]}
    GET /api/episode/<i>                   per-frame labels: action_source, segment, intervention_id (lists)
    GET /api/episode/<i>/frame/<cam>/<k>   frame k of camera cam as JPEG (decoded from the episode's mp4)

The page plays an episode frame by frame at the dataset's fps, with the per-frame `action_source` and
`segment` timeline under the picture (robo's columns; a dataset without them shows one "-" segment).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from pathlib import Path
from typing import Any

import numpy as np

from robo.spec import IMAGE_PREFIX

LABELS = ("action_source", "segment", "intervention_id")


def runs(values: Any) -> list[list[Any]]:
    """Run-length pairs [[value, count], ...] of a sequence."""
    out: list[list[Any]] = []
    for v in values:
        v = v.item() if isinstance(v, np.generic) else v
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


class DatasetBrowser:
    """A dataset's episodes for the page: labels from the low-dim columns, frames decoded on demand
    (the last few episodes kept decoded)."""

    def __init__(self, root: str | Path, *, keep_episodes: int = 2) -> None:
        from robo.data import Dataset

        self.root = Path(root)
        self.ds = Dataset(self.root)
        self.cameras = [k.removeprefix(IMAGE_PREFIX) for k in self.ds.spec.features if k.startswith(IMAGE_PREFIX)]
        lengths = self.ds.episode_lengths
        self._starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int) if len(lengths) else np.zeros(0, int)
        self._lengths = lengths.astype(int)
        cols = set(self.ds.columns)
        self._labels = {name: self.ds.column(name) for name in LABELS if name in cols}
        self._decoded: collections.OrderedDict[int, dict[str, np.ndarray]] = collections.OrderedDict()
        self._keep = int(keep_episodes)
        self._lock = threading.Lock()

    def labels(self, i: int) -> dict[str, list[Any]]:
        """Episode i's per-frame labels (each a list of its length; "-" where the dataset has none)."""
        s, n = int(self._starts[i]), int(self._lengths[i])
        out: dict[str, list[Any]] = {}
        for name in LABELS:
            col = self._labels.get(name)
            out[name] = ["-"] * n if col is None else [v.item() if isinstance(v, np.generic) else v
                                                       for v in col[s:s + n]]
        return out

    def summary(self) -> dict[str, Any]:
        eps = []
        for i, row in enumerate(self.ds.episodes):
            lab = self.labels(i)
            ids = {v for v in lab["intervention_id"] if isinstance(v, int) and v >= 0}
            eps.append({"index": i, "episode_index": int(row["episode_index"]), "length": int(self._lengths[i]),
                        "success": row.get("success"), "segments": runs(lab["segment"]),
                        "sources": runs(lab["action_source"]), "interventions": len(ids)})
        return {"root": str(self.root), "fps": float(self.ds.fps), "cameras": self.cameras, "episodes": eps}

    def frame(self, i: int, cam: str, k: int) -> bytes:
        """Frame k of episode i's camera `cam` as JPEG."""
        from robo.console.server import encode_jpeg

        if cam not in self.cameras:
            raise KeyError(cam)
        with self._lock:
            ep = self._decoded.get(i)
            if ep is None:
                full = self.ds.episode(i)
                ep = {c: full[IMAGE_PREFIX + c] for c in self.cameras}
                self._decoded[i] = ep
                while len(self._decoded) > self._keep:
                    self._decoded.popitem(last=False)
            self._decoded.move_to_end(i)
        frames = ep[cam]
        return encode_jpeg(frames[min(max(k, 0), len(frames) - 1)], quality=85)

    def add_routes(self, app: Any) -> None:
        from aiohttp import web

        def episode_arg(request: Any) -> int:
            i = int(request.match_info["i"])
            if not 0 <= i < self.ds.num_episodes:
                raise web.HTTPNotFound(text=f"episode {i}: the dataset has {self.ds.num_episodes}")
            return i

        async def episodes(request: Any) -> Any:
            return web.json_response(self.summary())

        async def episode(request: Any) -> Any:
            i = episode_arg(request)
            return web.json_response({"index": i, "length": int(self._lengths[i]), "fps": float(self.ds.fps),
                                      "success": self.ds.episodes[i].get("success"), **self.labels(i)})

        async def frame(request: Any) -> Any:
            i = episode_arg(request)
            cam, k = request.match_info["cam"], int(request.match_info["k"])
            if cam not in self.cameras:
                raise web.HTTPNotFound(text=f"camera {cam!r}: the dataset has {self.cameras}")
            jpeg = await asyncio.get_running_loop().run_in_executor(None, self.frame, i, cam, k)
            return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

        app.router.add_get("/api/episodes", episodes)
        app.router.add_get(r"/api/episode/{i:\d+}", episode)
        app.router.add_get(r"/api/episode/{i:\d+}/frame/{cam}/{k:\d+}", frame)
