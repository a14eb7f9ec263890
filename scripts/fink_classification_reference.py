"""Compute the reference classes of the classification module with Fink's own code, on every
ZTF alert in tests/data, and write them as a JSON fixture.

The expected classes of nightjar's classification tests come from here, not from nightjar:
each ZTF alert is read with fastavro (``scripts/fastavro_dump.py``), its ``roid`` is the one
Fink's ``roid_catcher`` gave in ``tests/fixtures/fink_modules/ztf.json``, and fink-filters'
``extract_fink_classification_`` (``fink_filters/ztf/classification.py``) is called on the
alert's own ``ndethist``, ``drb``, ``classtar``, ``jd`` and ``jdstarthist`` together with the
scores of one *scenario*: the same constant module outputs for every alert (SuperNNova,
early SN Ia, kilonova and microlensing scores, a tracklet label, a catalogue label standing in
for SIMBAD's ``cdsxmatch``). nightjar's test feeds the same constants to its module and must
give the same class for every alert and scenario. A missing score is NaN, as Fink sees a
science module that produced nothing.

fink-filters imports pyspark (and, through its Telegram and Slack helpers, requests,
matplotlib and astropy) at module level; they are installed, not replaced.

Usage (from the repository root)::

    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install -r scripts/fink_classification_requirements.txt
    /tmp/venv/bin/pip install --no-deps fink-filters==7.45 fink-utils==0.79.0
    /tmp/venv/bin/python scripts/fink_classification_reference.py tests/data \\
        tests/fixtures/fink_modules/ztf.json tests/fixtures/fink_modules/classification.json
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastavro_dump import decode_avro  # noqa: E402

import fink_filters  # noqa: E402
import fink_utils  # noqa: E402
from fink_filters.ztf.classification import extract_fink_classification_  # noqa: E402

NAN = float("nan")

# name -> constant module outputs given to every alert. Keys are Fink's column names;
# "cdsxmatch" is the catalogue label ("Unknown": no match).
SCENARIOS = {
    "no_scores": {},
    "supernnova": {"snn_snia_vs_nonia": 0.9, "snn_sn_vs_all": 0.9},
    "all_scores": {
        "snn_snia_vs_nonia": 0.9,
        "snn_sn_vs_all": 0.9,
        "rf_snia_vs_nonia": 0.9,
        "rf_kn_vs_nonkn": 0.9,
    },
    "early_snia_only": {"snn_snia_vs_nonia": 0.2, "snn_sn_vs_all": 0.7, "rf_snia_vs_nonia": 0.6},
    "microlensing_and_supernnova": {"mulens": 0.5, "snn_sn_vs_all": 0.9},
    "tracklet": {"tracklet": "TRCK_20191027_090120_00"},
    "galaxy_host": {"cdsxmatch": "Galaxy", "snn_snia_vs_nonia": 0.9, "rf_snia_vs_nonia": 0.9},
    "catalogued_star": {"cdsxmatch": "RRAB", "snn_snia_vs_nonia": 0.9, "rf_kn_vs_nonkn": 0.9},
}


def column(values, dtype=float):
    return pd.Series(values, dtype=dtype)


def classify(alerts, scenario):
    n = len(alerts)

    def constant(name, default=NAN, dtype=float):
        return column([scenario.get(name, default)] * n, dtype)

    def field(name):
        return column([np.nan if a[name] is None else a[name] for a in alerts])

    classes = extract_fink_classification_(
        constant("cdsxmatch", "Unknown", object),
        column([a["roid"] for a in alerts], int),
        constant("mulens", 0.0),
        constant("snn_snia_vs_nonia"),
        constant("snn_sn_vs_all"),
        constant("rf_snia_vs_nonia"),
        column([a["ndethist"] for a in alerts], int),
        field("drb"),
        field("classtar"),
        field("jd"),
        field("jdstarthist"),
        constant("rf_kn_vs_nonkn"),
        constant("tracklet", "", object),
    )
    return [str(value) for value in classes]


def main():
    data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
    roid_fixture = Path(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/fink_modules/ztf.json")
    out_path = Path(sys.argv[3] if len(sys.argv) > 3 else "tests/fixtures/fink_modules/classification.json")
    roids = {
        (entry["file"], entry["record"]): entry["roid"]
        for entry in json.loads(roid_fixture.read_text())["alerts"]
    }
    alerts = []
    for path in sorted(data_dir.rglob("*.avro")):
        decoded = decode_avro(path.read_bytes())
        for index, record in enumerate(decoded.get("records", [])):
            rel = str(path.relative_to(data_dir))
            candidate = record.get("candidate") if "candidate" in record else None
            if candidate is None or candidate.get("jd") is None:
                continue
            if candidate.get("ndethist") is None:
                # A 2016 prototype packet: Fink's ndethist.astype(int) cannot take it.
                continue
            alerts.append(
                {
                    "file": rel,
                    "record": index,
                    "candid": candidate.get("candid"),
                    "roid": roids[(rel, index)],
                    "ndethist": candidate.get("ndethist"),
                    # Schema versions before 3.3 have no drb: NaN, as in Fink's columns.
                    "drb": candidate.get("drb"),
                    "classtar": candidate.get("classtar"),
                    "jd": candidate.get("jd"),
                    "jdstarthist": candidate.get("jdstarthist"),
                }
            )
    for name, scenario in SCENARIOS.items():
        for alert, value in zip(alerts, classify(alerts, scenario)):
            alert.setdefault("class", {})[name] = value
    document = {
        "generated_by": "scripts/fink_classification_reference.py",
        "versions": {
            "fink_filters": fink_filters.__version__,
            "fink_utils": fink_utils.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "scenarios": SCENARIOS,
        "alerts": [
            {key: alert[key] for key in ["file", "record", "candid", "roid", "class"]} for alert in alerts
        ],
    }
    out_path.write_text(json.dumps(document, indent=1) + "\n")
    counts = {}
    for alert in alerts:
        for name, value in alert["class"].items():
            counts.setdefault(name, {}).setdefault(value, 0)
            counts[name][value] += 1
    for name, values in counts.items():
        print(name, values)
    print(f"{len(alerts)} ZTF alerts -> {out_path}")


if __name__ == "__main__":
    main()
