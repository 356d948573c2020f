"""The map's table: one row per poster, in Arrow IPC files cut along the image pyramid (``data.json`` format 3).

Stage 3 writes it, ``--update`` reads and rewrites it, the page reads it (``web/loader.js``), and so can
anyone with pyarrow, pandas, polars or DuckDB, without our code::

    import pyarrow.dataset as ds
    table = ds.dataset("web/assets/maps/data/run-.../table/rows", format="arrow").to_table().sort_by("index")
    for part in ("titles", "near"):  # the same posters, in the same order, in files of their own
        extra = ds.dataset(f"web/assets/maps/data/run-.../table/{part}", format="arrow").to_table().sort_by("index")
        for name in extra.column_names[1:]:
            table = table.append_column(name, extra[name])

or, from ``data.json`` itself and joined, :func:`read_table`. ``data.json`` keeps what is not per poster
(``meta``: the pyramids, the clusters, the settings); ``meta.table`` says where the rows are:

* ``path``: the template of the rows' files, ``.../table/rows/{z}/{x}-{y}.arrow``, relative to
  ``data.json``; ``near``: that of the files of the similar posters (``neighbors``, ``similarity``), one per
  tile beside each rows' file, with the same posters in the same order: the page reads a tile's when it
  shows the similar posters of one of its posters (absent when the map has no neighbours); ``titles``: that
  of the files of the titles (``index``, ``title``), one per tile in the same way, which the page reads for
  the posters whose titles it shows (absent in maps written before it: their rows' files hold ``title``);
* ``search``: the template of the search index's shards, ``.../table/search/{k}.txt``, and ``search_rows``:
  the posters in each. Shard ``k`` holds, for posters ``k * search_rows`` on (in ``index`` order), each
  poster's :func:`search_key` and a newline: ASCII text the page searches without normalising a title
  itself, and fetches only when its search box is first used (the pointer over it, or the focus);
* ``tiles``: ``[z, x, y, rows]`` for each tile;
* ``rows``: the number of posters; ``capacity``: the most rows a tile holds before it is split.

**Which tile holds a poster.** Tiles are those of the t-SNE image pyramid (``meta.tiles.tsne``: its
``origin`` and ``span``). A poster belongs to the tile of each level that holds its centre (the point
``x, y``; the tile's square is half-open, and a centre past the pyramid's edge counts in the edge tile).
Starting from the one tile of level 0, a tile holding more than ``capacity`` posters is split into its four
children, down to :data:`geometry.MAX_LEVEL`; the tiles that are not split are written, and empty ones are
not. Every poster is in exactly one file, so the files together are the whole table.

**Columns** (every file of a set has the same schema; a column the map has no use for is left out, as in
format 2; ``neighbors`` and ``similarity`` are in the near files, ``title`` in the titles files, each with
``index``):

* ``index`` int32: the poster's row in the map, what ``neighbors`` counts in;
* ``id`` string, ``title`` string (nullable);
* ``year``, ``version`` int32 (nullable);
* ``x``, ``y`` float64: the t-SNE position, data frame [-1, 1], y up; ``gx``, ``gy`` float64: the grid's,
  when the map has a grid layout;
* ``aspect`` float32: width / height;
* ``neighbors`` fixed_size_list<int32>[K]: the most similar posters' ``index``, most similar first, and
  ``similarity`` fixed_size_list<float32>[K]: their cosines (K is ``meta.neighbors``);
* ``cluster``, ``region`` int32, -1 for none (when the map has clusters);
* ``thumb``, ``image``, ``page`` string (nullable): a path or page where ``meta.paths``' template does not
  hold; ``original`` string (nullable): the file a ``--from-dir`` image came from;
* ``height`` int32 (nullable): the full image's height in pixels;
* ``categories`` fixed_size_list<int16>[M]: a value code per entry of ``meta.categories``, -1 for none.

The values are those of format 2's ``columns`` (rounded as there: positions to 5 decimals, aspect to 4,
similarity to 3), so :func:`read_columns` gives format 2's ``columns`` back, equal value for value.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np

from posters_cnn.contracts import geometry
from posters_cnn.fsutil import UnsafePath, check_relative, write_bytes_atomic

FORMAT = 3
CAPACITY = 8192  # rows a data tile holds before it is split: at most about 0.8 MB of rows (100 bytes a poster)
FOLDER = "table"
TEMPLATE = "rows/{z}/{x}-{y}.arrow"  # in FOLDER: every column but NEAR
NEAR_TEMPLATE = "near/{z}/{x}-{y}.arrow"  # in FOLDER: index and NEAR, for the same tiles
NEAR = ("neighbors", "similarity")  # what the page reads only for the posters it shows the similar posters of
TITLES_TEMPLATE = "titles/{z}/{x}-{y}.arrow"  # in FOLDER: index and title, for the same tiles
SEARCH_TEMPLATE = "search/{k}.txt"  # in FOLDER: the search index's shards, SEARCH_ROWS posters each
SEARCH_ROWS = 65536  # at 1,000,000 posters, 16 shards of about 1.3 MB
TEMPLATES = ("path", "near", "titles", "search")  # meta.table's paths, relative to data.json's folder

# name: (Arrow type, nullable); a list column's length is set when the table is made.
_SCALARS = {
    "index": ("int32", False), "id": ("string", False), "title": ("string", True), "year": ("int32", True),
    "version": ("int32", True), "x": ("float64", False), "y": ("float64", False), "gx": ("float64", False),
    "gy": ("float64", False), "aspect": ("float32", False), "cluster": ("int32", False),
    "region": ("int32", False), "thumb": ("string", True), "image": ("string", True), "page": ("string", True),
    "original": ("string", True), "height": ("int32", True),
}
_LISTS = {"neighbors": "int32", "similarity": "float32", "categories": "int16"}
_DECIMALS = {"aspect": 4, "similarity": 3}  # format 2's rounding, which float32 keeps
ORDER = ["index", "id", "title", "year", "version", "x", "y", "gx", "gy", "aspect", "neighbors", "similarity",
         "cluster", "region", "thumb", "image", "page", "original", "height", "categories"]


class BadTable(ValueError):
    """A map's table that is missing, unreadable, or does not agree with its ``data.json``."""


def _pa():
    import pyarrow as pa  # imported when a map is written or read: the other stages do not need it

    return pa


def search_key(title: str | None) -> str:
    """A title as the search matches it: NFKD, accents dropped, lower case, each run of characters other than
    a-z and 0-9 one space, none at either end. The page's ``normalizeTitle`` (web/logic.js) does the same to
    what is typed; both are checked against ``tests/fixtures/search_keys.json``."""
    text = re.sub("[\u0300-\u036f]", "", unicodedata.normalize("NFKD", title or ""))
    return re.sub("[^a-z0-9]+", " ", text.lower()).strip(" ")


def search_shards(titles, rows: int = SEARCH_ROWS) -> list[bytes]:
    """The search index's shards (see the module's ``search``) of ``titles``, in the map's order. Not gzipped:
    the page would have to undo it itself (a server adds no Content-Encoding to a ``.gz`` file), which took
    longer at 1,000,000 posters (about 190 ms for 20 MB in Chromium) than the bytes it saved took to fetch from
    a local server (about 140 ms); a server that compresses text on the fly does it for the page."""
    keys = [search_key(title) + "\n" for title in titles]
    return ["".join(keys[start:start + rows]).encode("ascii") for start in range(0, len(keys), rows)]


def relocate(about: dict, prefix: str) -> dict:
    """``meta.table`` as :func:`write` returned it, its paths under ``prefix`` (the table's folder, relative to
    data.json's)."""
    return {**about, **{key: f"{prefix}/{about[key]}" for key in TEMPLATES if key in about}}


def tiles_for(x, y, origin: float, span: float, capacity: int = CAPACITY,
              max_level: int = geometry.MAX_LEVEL) -> list[tuple[int, int, int, np.ndarray]]:
    """The data tiles of posters at data-frame positions ``x, y``: ``(z, x, y, rows)`` for each, ``rows``
    ascending, in the order of their ``z``, then ``y``, then ``x`` (see the module's rule)."""
    u, v = geometry.to_unit(np.asarray(x, float), np.asarray(y, float))
    out = []

    def cell(values, z):
        side = 1 << z
        return np.clip(np.floor((values - origin) / (span / side)), 0, side - 1).astype(np.int64)

    pending = [(0, 0, 0, np.arange(len(u)))]
    while pending:
        z, tx, ty, rows = pending.pop()
        if len(rows) > capacity and z < max_level:
            cx, cy = cell(u[rows], z + 1), cell(v[rows], z + 1)
            for dy in (1, 0):
                for dx in (1, 0):
                    inside = rows[(cx == 2 * tx + dx) & (cy == 2 * ty + dy)]
                    if inside.size:
                        pending.append((z + 1, 2 * tx + dx, 2 * ty + dy, inside))
        elif rows.size:
            out.append((z, tx, ty, rows))
    out.sort(key=lambda t: (t[0], t[2], t[1]))
    return out


def schema_of(columns: dict, k: int, m: int):
    """The Arrow schema of a map whose format-2 ``columns`` are given (K neighbours, M categories)."""
    pa = _pa()
    fields = []
    for name in ORDER:
        if name == "index":
            fields.append(pa.field("index", pa.int32(), nullable=False))
        elif name in _LISTS:
            size = m if name == "categories" else k
            if name in columns and size:
                fields.append(pa.field(name, pa.list_(getattr(pa, _LISTS[name])(), size), nullable=False))
        elif name in columns:
            kind, nullable = _SCALARS[name]
            fields.append(pa.field(name, getattr(pa, kind)(), nullable=nullable))
    return pa.schema(fields)


def write(folder: Path, columns: dict, meta: dict, capacity: int = CAPACITY, search_rows: int = SEARCH_ROWS) -> dict:
    """Write format 2's ``columns`` of the map that ``meta`` describes as the table's files in ``folder`` (a
    new folder); returns ``meta.table``, its ``path`` relative to ``folder``."""
    pa = _pa()
    n = len(columns["id"])
    k = int(meta.get("neighbors") or 0)
    m = len(meta.get("categories") or [])
    schema = schema_of(columns, k, m)
    whole = []
    for field in schema:
        name = field.name
        if name == "index":
            whole.append(pa.array(np.arange(n, dtype=np.int32)))
        elif name in _LISTS:
            values = np.asarray(columns[name], dtype=_LISTS[name])
            if name == "categories":
                values = values.T  # format 2 holds one list per category; a row holds one code per category
            flat = pa.array(values.reshape(-1), field.type.value_type)
            whole.append(pa.FixedSizeListArray.from_arrays(flat, field.type.list_size))
        else:
            whole.append(pa.array(columns[name], field.type))
    table = pa.Table.from_arrays(whole, schema=schema)
    near = [name for name in NEAR if name in schema.names]
    titled = "title" in schema.names
    sets = [(TEMPLATE, table.drop_columns(near + ["title"] * titled))]
    if near:
        sets.append((NEAR_TEMPLATE, table.select(["index", *near])))
    if titled:
        sets.append((TITLES_TEMPLATE, table.select(["index", "title"])))
    pyramid = meta["tiles"]["tsne"]
    listing = []
    for z, tx, ty, rows in tiles_for(columns["x"], columns["y"], pyramid["origin"], pyramid["span"], capacity):
        for template, part in sets:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, part.schema) as writer:  # uncompressed: the page's Arrow reads no codec
                writer.write_table(part.take(pa.array(rows)))
            write_bytes_atomic(folder / geometry.tile_url(template, z, tx, ty), sink.getvalue().to_pybytes())
        listing.append([z, tx, ty, int(rows.size)])
    about = {"path": TEMPLATE, "tiles": listing, "rows": n, "capacity": capacity}
    if near:
        about["near"] = NEAR_TEMPLATE
    if titled:
        about["titles"] = TITLES_TEMPLATE
        for k, shard in enumerate(search_shards(columns["title"], search_rows)):
            write_bytes_atomic(folder / SEARCH_TEMPLATE.format(k=k), shard)
        about.update(search=SEARCH_TEMPLATE, search_rows=search_rows)
    return about


def read_table(data_json: Path, meta: dict | None = None):
    """The map's whole table (a ``pyarrow.Table``, in ``index`` order, its ``near`` and ``titles`` columns
    joined) from its ``data.json``, format 3; BadTable when its files are missing, unreadable, or disagree with
    ``meta.table``."""
    data_json = Path(data_json)
    if meta is None:
        meta = json.loads(data_json.read_text(encoding="utf-8"))["meta"]
    about = meta.get("table")
    if not isinstance(about, dict):
        raise BadTable("data.json names no table (meta.table)")
    try:
        templates = [check_relative(about[key]) for key in ("path", "near", "titles") if key in about]
        listing = [[int(v) for v in entry] for entry in about["tiles"]]
        n = int(about["rows"])
    except (KeyError, TypeError, ValueError, UnsafePath) as error:
        raise BadTable(f"meta.table is not a table's description ({error})") from None
    if not listing or any(len(entry) != 4 for entry in listing):
        raise BadTable("meta.table.tiles is not a list of [z, x, y, rows]")
    tables = [_read_files(data_json.parent, template, listing, n) for template in templates]
    table = tables[0]
    for extra in tables[1:]:
        if not extra.column("index").equals(table.column("index")):
            raise BadTable("the map's near or titles files do not hold the posters of its rows' files")
        for name in extra.column_names[1:]:
            table = table.append_column(extra.schema.field(name), extra.column(name))
    if "title" in table.column_names:  # in the order of ORDER, as before the titles had files of their own
        names = [name for name in ORDER if name in table.column_names]
        table = table.select(names)
    return table


def _read_files(folder: Path, template: str, listing: list[list[int]], n: int):
    """The files of one set of the table (its rows, or its near columns), concatenated, in index order."""
    pa = _pa()
    parts, schema = [], None
    for z, tx, ty, rows in listing:
        path = folder / geometry.tile_url(template, z, tx, ty)
        try:
            part = pa.ipc.open_file(pa.py_buffer(path.read_bytes())).read_all()
        except (OSError, pa.ArrowInvalid) as error:
            raise BadTable(f"cannot read the map's table file {path}: {error}") from None
        if part.num_rows != rows:
            raise BadTable(f"{path} holds {part.num_rows} rows; meta.table says {rows}")
        if schema is not None and not part.schema.equals(schema):
            raise BadTable(f"{path} does not have the other table files' columns")
        schema = part.schema
        parts.append(part)
    table = pa.concat_tables(parts)
    index = table.column("index").to_numpy() if "index" in table.column_names else None
    if index is None or table.num_rows != n or not np.array_equal(np.sort(index), np.arange(n)):
        raise BadTable(f"the map's table files do not hold each of its {n} posters once")
    return table.take(np.argsort(index, kind="stable"))


def columns_of(table, meta: dict) -> dict:
    """Format 2's ``columns`` (lists, as ``data.json`` format 2 holds them) from the map's table."""
    columns = {}
    m = len(meta.get("categories") or [])
    for name in table.column_names:
        if name == "index":
            continue
        column = table.column(name)
        if name in _LISTS:
            flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
            if name == "categories":
                columns[name] = flat.reshape(-1, m).T.astype(int).tolist()
                continue
            values = flat.astype(float).round(_DECIMALS[name]) if name in _DECIMALS else flat
            columns[name] = values.tolist()
        elif name in _DECIMALS:
            columns[name] = column.to_numpy().astype(float).round(_DECIMALS[name]).tolist()
        else:
            columns[name] = column.to_pylist()
    if m and "categories" not in columns:
        raise BadTable("meta.categories names categories that the table does not hold")
    columns.setdefault("categories", [])
    columns.setdefault("neighbors", [])
    columns.setdefault("similarity", [])
    return columns


def read_columns(data_json: Path) -> tuple[dict, dict]:
    """``(meta, columns)`` of the map at ``data_json``, format 2 or 3: ``columns`` as format 2 holds them."""
    data = json.loads(Path(data_json).read_text(encoding="utf-8"))
    meta = data["meta"]
    if "columns" in data:
        return meta, data["columns"]
    return meta, columns_of(read_table(data_json, meta), meta)
