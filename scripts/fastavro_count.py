"""Count the Avro records of every .avro file under some folders, with fastavro.

Files are decoded with the same rules as fastavro_dump.py (object-container
files: all records; Confluent wire format: schemaless datum decoded with the
Rubin schema of its id, looked up in --schemas).  Prints one line per file,
"<path>\\t<record count>" or "<path>\\tERROR: <reason>", then a total line
"total files N, records M, errors E".

Usage: python3 scripts/fastavro_count.py [--schemas DIR] DIR...
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastavro_dump import DEFAULT_SCHEMAS, avro_files, decode_avro  # noqa: E402


def count_records(path, schemas_dir):
    """(record count, None) for one file, or (None, reason) if it cannot be decoded."""
    try:
        decoded = decode_avro(path.read_bytes(), schemas_dir)
    except Exception as exc:  # noqa: BLE001 - any decode failure is reported
        return None, f"{type(exc).__name__}: {exc}"
    if "error" in decoded:
        return None, decoded["error"]
    return len(decoded["records"]), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="folders searched for *.avro")
    parser.add_argument("--schemas", default=DEFAULT_SCHEMAS, help="Rubin schema folder")
    args = parser.parse_args(argv)

    files = records = errors = 0
    for root in args.dirs:
        for path in avro_files(root):
            files += 1
            count, reason = count_records(path, args.schemas)
            if reason is not None:
                errors += 1
                print(f"{path}\tERROR: {reason}")
            else:
                records += count
                print(f"{path}\t{count}")
    print(f"total files {files}, records {records}, errors {errors}")


if __name__ == "__main__":
    main()
