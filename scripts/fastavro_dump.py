"""Decode every .avro test file with fastavro and write JSON reference fixtures.

The fixtures are the independent reference that nightjar's Rust decoders are
checked against.  For each ``<dir>/<rel>.avro`` this writes
``<out>/<rel>.avro.json``.

Two framings are understood:

* Avro object-container files (start with ``b"Obj\\x01"``): read with
  ``fastavro.reader``, all records.
* Confluent wire format (byte 0 is ``0x00``): bytes 1..5 are the big-endian
  schema id, ``major = id // 100``, ``minor = id % 100``; the datum after byte
  5 is decoded with ``fastavro.schemaless_reader`` and the Rubin schema
  ``<schemas>/<major>.<minor>/lsst.v<major>_<minor>.alert.avsc`` (loaded with
  ``fastavro.schema.load_schema``, which resolves the named sub-schemas in
  the same folder).  The datum must use every byte of the message.

Fixture layout::

    {"file": rel, "format": "container" | "wire", "codec": ...,
     "writer_schema_name": ..., "schema_id": <wire only>, "records": [...]}

A file that cannot be decoded gets ``"error": "<reason>"`` instead of
``"records"`` (for example ``"unknown schema id 1101"``).

Inside records: bytes become ``{"$bytes": {"len": N, "sha256": hex}}``;
float NaN / +inf / -inf become the strings "NaN" / "Infinity" / "-Infinity";
datetimes (fastavro applies the timestamp-millis / timestamp-micros logical
types) become ``{"$datetime": {"iso": ..., "epoch_us": N}}``; everything else
is written as fastavro returns it, in fastavro's key order.

Usage: python3 scripts/fastavro_dump.py [DATA_DIR] [OUT_DIR] [--schemas DIR]
"""

import argparse
import datetime
import functools
import hashlib
import io
import json
import math
import struct
import sys
from pathlib import Path

import fastavro
import fastavro.schema

CONTAINER_MAGIC = b"Obj\x01"
WIRE_MAGIC = 0x00
WIRE_HEADER_LEN = 5
DEFAULT_SCHEMAS = "crates/nightjar-rubin/schemas"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def rubin_schema_path(schemas_dir, schema_id):
    """Path of the top-level Rubin schema for a Confluent schema id."""
    major, minor = divmod(schema_id, 100)
    return Path(schemas_dir) / f"{major}.{minor}" / f"lsst.v{major}_{minor}.alert.avsc"


@functools.lru_cache(maxsize=None)
def load_rubin_schema(schemas_dir, schema_id):
    """Parsed Rubin schema for a schema id, or None when it is not shipped."""
    path = rubin_schema_path(schemas_dir, schema_id)
    if not path.is_file():
        return None
    return fastavro.schema.load_schema(str(path))


def wire_schema_id(data):
    """Schema id of a Confluent wire-format message (big-endian u32)."""
    return struct.unpack(">I", data[1:WIRE_HEADER_LEN])[0]


def decode_avro(data, schemas_dir=DEFAULT_SCHEMAS):
    """Decode one .avro file's bytes.

    Returns a dict with format, codec, writer_schema_name, schema_id (wire
    only) and either "records" (list of fastavro values) or "error".
    Malformed data raises the exception fastavro raised.
    """
    if data[:4] == CONTAINER_MAGIC:
        reader = fastavro.reader(io.BytesIO(data))
        return {
            "format": "container",
            "codec": reader.metadata.get("avro.codec", "null"),
            "writer_schema_name": reader.writer_schema.get("name"),
            "records": list(reader),
        }
    if data[:1] == bytes([WIRE_MAGIC]):
        if len(data) < WIRE_HEADER_LEN:
            raise ValueError(f"truncated wire header ({len(data)} bytes)")
        schema_id = wire_schema_id(data)
        result = {
            "format": "wire",
            "codec": None,
            "writer_schema_name": None,
            "schema_id": schema_id,
        }
        schema = load_rubin_schema(str(schemas_dir), schema_id)
        if schema is None:
            result["error"] = f"unknown schema id {schema_id}"
            return result
        result["writer_schema_name"] = schema["name"]
        body = io.BytesIO(data[WIRE_HEADER_LEN:])
        record = fastavro.schemaless_reader(body, schema)
        trailing = len(data) - WIRE_HEADER_LEN - body.tell()
        if trailing:
            result["error"] = f"{trailing} trailing bytes after the Avro datum"
            return result
        result["records"] = [record]
        return result
    raise ValueError(f"not an Avro container nor a Confluent wire message (first bytes {data[:4].hex()})")


def to_json(value):
    """Convert a fastavro value to the fixture's JSON form (see module doc)."""
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, bytes):
        return {"$bytes": {"len": len(value), "sha256": hashlib.sha256(value).hexdigest()}}
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, datetime.datetime):
        epoch = EPOCH if value.tzinfo else EPOCH.replace(tzinfo=None)  # local-timestamp-*
        epoch_us = (value - epoch) // datetime.timedelta(microseconds=1)
        return {"$datetime": {"iso": value.isoformat(), "epoch_us": epoch_us}}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}: {value!r}")


def fixture_for(path, rel, schemas_dir):
    """The fixture dict of one file; decode failures become an "error" entry."""
    fixture = {"file": rel}
    try:
        decoded = decode_avro(path.read_bytes(), schemas_dir)
    except Exception as exc:  # noqa: BLE001 - any decode failure is recorded
        fixture["error"] = f"{type(exc).__name__}: {exc}"
        return fixture
    fixture.update(decoded)
    if "records" in fixture:
        fixture["records"] = to_json(fixture["records"])
    return fixture


def avro_files(root):
    """All .avro files under root, sorted."""
    return sorted(p for p in Path(root).rglob("*.avro") if p.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default="tests/data")
    parser.add_argument("out_dir", nargs="?", default="tests/fixtures/fastavro")
    parser.add_argument("--schemas", default=DEFAULT_SCHEMAS, help="Rubin schema folder")
    args = parser.parse_args(argv)

    data_dir, out_dir = Path(args.data_dir), Path(args.out_dir)
    files = records = errors = 0
    for path in avro_files(data_dir):
        rel = path.relative_to(data_dir).as_posix()
        fixture = fixture_for(path, rel, args.schemas)
        target = out_dir / f"{rel}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            json.dump(fixture, out, indent=1, sort_keys=False, allow_nan=False)
            out.write("\n")
        files += 1
        if "error" in fixture:
            errors += 1
            print(f"{rel}: {fixture['error']}", file=sys.stderr)
        else:
            records += len(fixture["records"])
    print(f"wrote {files} fixtures to {out_dir}: {records} records, {errors} errors", file=sys.stderr)


if __name__ == "__main__":
    main()
