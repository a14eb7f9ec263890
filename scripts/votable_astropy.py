#!/usr/bin/env python3
"""Reads VOTable files with astropy (an independent VOTable reader) and prints, per file, what
it found as one JSON line: the fields (name, datatype, ucd), the number of rows, the first
row's values as text, and the value of an INFO named "Error" if the document holds one.

Used by the API tests (crates/nightjar-api/tests/votable.rs) to check nightjar's VOTables.
"""
import json
import re
import sys
import warnings

from astropy.io.votable import parse
from astropy.io.votable.exceptions import VOWarning


# Simple Cone Search 1.03 requires UCD1 words (ID_MAIN, POS_EQ_RA_MAIN, ...; all capitals),
# which astropy checks against the later UCD1+ vocabulary and reports as W06.
UCD1_WORD = re.compile(r"Invalid UCD '([A-Z][A-Z0-9_]*)'")


def describe(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VOWarning)
        votable = parse(path, verify="warn")
    # Any other departure from the standard that astropy notices is an error here.
    for warning in caught:
        message = str(warning.message)
        if issubclass(warning.category, VOWarning) and not (
            "W06" in message and UCD1_WORD.search(message)
        ):
            raise SystemExit(f"{path}: {message}")
    error = None
    for info in list(votable.infos) + [i for r in votable.resources for i in r.infos]:
        if info.name == "Error":
            error = info.value
    tables = list(votable.iter_tables())
    if not tables:
        return {"fields": [], "rows": 0, "first_row": [], "error": error}
    table = tables[0]
    fields = [{"name": f.name, "datatype": f.datatype, "ucd": f.ucd} for f in table.fields]
    data = table.array
    first = []
    if len(data) > 0:
        first = ["" if data.mask[0][i] else str(data[0][i]) for i in range(len(table.fields))]
    return {"fields": fields, "rows": len(data), "first_row": first, "error": error}


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps(describe(path)))
