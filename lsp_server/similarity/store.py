"""Save and load a SimilarityIndex under the cache folder, so a restart costs a stat per file.

Layout: ``<cache_dir>/similarity-v<FORMAT>/<sha1 of the workspace root>/`` holds ``index.json``
(format version, root, the encoder's identity, and per file: stamp, chunk metadata and
whether its vectors are in) and ``index.npz`` (feature bags as flat arrays with offsets,
and the dense vectors).  A file whose vectors are still pending is not saved (nor loaded
back from an older save): the next refresh re-reads it (lexical features in milliseconds)
and the background encoder embeds it again, since its chunk texts are not cached.  So the
save that ends a cold refresh, before any vector is in, writes next to nothing.  Plain
JSON and ``allow_pickle=False`` arrays only.  Anything that does not match -- another
format, another embedder, a truncated file -- is treated as no cache: the index is rebuilt
from the files, which is always correct, only slower.  Writes go to a temporary file and
are renamed into place, so a crash never leaves half an index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Collection
from pathlib import Path

import numpy as np

from lsp_server.similarity.fingerprint import BAGS, Bag, Fingerprint
from lsp_server.similarity.index import Entry, SimilarityIndex

FORMAT = 4  # 3: interface and structure bags, transformer encoder vectors, per-file "embedded" flag;
#           4: a JavaScript method's tree bags come from its file's tree (one parse per file)
log = logging.getLogger("lsp_server.similarity")


def cache_folder(cache_dir: Path, root: Path) -> Path:
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_dir / f"similarity-v{FORMAT}" / digest


def _flat(bags: list[Bag]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    offsets = np.zeros(len(bags) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b.ids) for b in bags])
    ids = np.concatenate([b.ids for b in bags]) if bags else np.zeros(0, np.uint32)
    weights = np.concatenate([b.weights for b in bags]) if bags else np.zeros(0, np.float32)
    return ids.astype(np.uint32), weights.astype(np.float32), offsets


def save_index(index: SimilarityIndex, folder: Path, root: Path, embedder_id: str,
               files: set[str] | None = None) -> Path:
    """Write the chunks of ``files`` (default: all) to ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with index.lock:
        records, entries, slots = {}, [], []
        for file, record in index.files.items():
            if files is not None and file not in files:
                continue
            live = [s for s in record.slots if index.entries[s] is not None]
            embedded = bool(index.dim) and bool(index.embedded[live].all())
            if index.dim and not embedded:
                continue  # ``load_index`` would skip it (its vectors are not cached): not written
            records[file] = {"stamp": record.stamp, "chunks": len(live), "embedded": embedded}
            for s in live:
                e = index.entries[s]
                entries.append([e.kind, e.name, e.start_line, e.end_line, e.end_character, e.preview,
                                e.fingerprint.n_tokens])
                slots.append(s)
        bags = {name: _flat([index.entries[s].fingerprint.bag(name) for s in slots]) for name in BAGS}
        vectors = index.vectors[slots] if index.dim else np.zeros((len(slots), 0), np.float32)
    meta = {"format": FORMAT, "root": str(root), "embedder": embedder_id, "files": records, "entries": entries}
    tmp_npz, tmp_json = folder / "index.tmp.npz", folder / "index.tmp.json"
    arrays = {f"{name}_{part}": a for name, flat in bags.items()
              for part, a in zip(("ids", "w", "off"), flat, strict=True)}
    np.savez(tmp_npz, **arrays, vectors=vectors.astype(np.float16))
    tmp_json.write_text(json.dumps(meta))
    os.replace(tmp_npz, folder / "index.npz")
    os.replace(tmp_json, folder / "index.json")
    return folder


def load_index(index: SimilarityIndex, folder: Path, embedder_id: str, skip: Collection[str] = ()) -> int:
    """Fill ``index`` from ``folder``, but for the files in ``skip`` (held already, newer);
    the number of files loaded (0: no usable cache).

    A cache is data from disk, not trusted: whatever is wrong with it (garbage bytes, a
    truncated archive, JSON of the wrong shape, counts that disagree) means no cache, and
    the index is rebuilt from the files.  Everything is read and checked before the index
    is touched, so a bad cache never leaves half an index behind (nor stops indexing).
    """
    try:
        meta = json.loads((folder / "index.json").read_text())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        log.warning("similarity cache in %s is unreadable (%s); rebuilding", folder, exc)
        return 0
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("embedder") != embedder_id:
        log.info("similarity cache in %s is for another format or embedder; rebuilding", folder)
        return 0
    dim = index.dim or None
    try:
        files = _read_files(meta, folder, dim)
    except Exception as exc:  # noqa: BLE001 - any fault in untrusted cache data means "rebuild"
        log.warning("similarity cache in %s is unreadable (%s); rebuilding", folder, exc)
        return 0
    files = [f for f in files if f[0] not in skip]
    for file, stamp, batch, vectors in files:
        index.set_file(file, stamp, batch, vectors)
    return len(files)


def _read_files(meta: dict, folder: Path, dim: int | None) -> list[tuple[str, object, list[Entry], np.ndarray | None]]:
    """Every file's (name, stamp, entries, vectors) from the cache; raises if anything is off."""
    with np.load(folder / "index.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    entries, vectors = meta["entries"], arrays["vectors"].astype(np.float32)
    if any(len(entries) + 1 != len(arrays[f"{name}_off"]) for name in BAGS) \
            or len(vectors) != len(entries) or (dim is not None and vectors.shape[1:] != (dim,)):
        raise ValueError("inconsistent counts")
    out, i = [], 0
    for file, record in meta["files"].items():
        n = record["chunks"]
        if not isinstance(file, str) or not isinstance(n, int) or n < 0 or i + n > len(entries):
            raise ValueError(f"bad record for {file!r}")
        batch = []
        for j in range(i, i + n):
            kind, name, start, end, end_char, preview, n_tokens = entries[j]
            fp = Fingerprint(n_tokens=n_tokens, **{name: _bag(arrays, name, j) for name in BAGS})
            batch.append(Entry(file, kind, name, start, end, end_char, preview, fp))
        stamp = tuple(record["stamp"]) if isinstance(record["stamp"], list) else record["stamp"]
        if record.get("embedded", False) or dim is None:
            out.append((file, stamp, batch, vectors[i:i + n] if dim is not None else None))
        i += n
    return out


def _bag(arrays: dict[str, np.ndarray], field: str, j: int) -> Bag:
    lo, hi = arrays[f"{field}_off"][j], arrays[f"{field}_off"][j + 1]
    return Bag(arrays[f"{field}_ids"][lo:hi], arrays[f"{field}_w"][lo:hi])
