#!/usr/bin/env python3
"""Reference `rf_snia_vs_nonia` for nightjar's `early_snia` module, from Fink's Python.

For every real ZTF alert in tests/fixtures/fastavro (fastavro decodings of tests/data), this
follows fink-science 7.4.0 `ztf/random_forest_snia/processor.py::rfscore_sigmoid_full` with
its default arguments: the selection cuts (`apply_selection_cuts_ztf`; the SIMBAD label is
"Unknown", nightjar having no SIMBAD match), `fink_utils.data.utils.format_data_as_snana`,
`actsnfink.classifier_sigmoid.get_sigmoid_features_dev` (min_rising_points=2,
min_data_points=4, rising_criteria="ewma"), and the random forest, here its ONNX conversion
(data/models/early_snia) run by onnxruntime instead of the pickled scikit-learn model.

The light curve is Fink's `c*` columns: prv_candidates then the candidate (jd, fid, magpsf,
sigmapsf), upper limits included (their magpsf is null).

Writes tests/fixtures/modules/early_snia.json. Run from the repository root, in an
environment with pandas 1.5 (actsnfink averages with `groupby().mean()` over a text column,
which pandas 2 rejects), numpy < 2, scipy, scikit-learn, onnxruntime, fink-utils and actsnfink
(github.com/emilleishida/fink_sn_activelearning; not on PyPI):
    python3 scripts/early_snia_reference.py
"""

import glob
import json

import numpy as np
import onnxruntime as rt
import pandas as pd
import scipy
from actsnfink.classifier_sigmoid import RF_FEATURE_NAMES, get_sigmoid_features_dev
from fink_utils.data.utils import format_data_as_snana

rt.set_default_logger_severity(3)
MODEL = "data/models/early_snia/fink_early_snia_rf.onnx"


def main():
    rows = []
    for path in sorted(glob.glob("tests/fixtures/fastavro/ztf/**/*.json", recursive=True)):
        decoded = json.load(open(path))
        for record in decoded.get("records") or []:
            candidate = record.get("candidate")
            if not candidate:
                continue
            history = list(record.get("prv_candidates") or []) + [candidate]
            rows.append({
                "file": decoded["file"],
                "candid": record.get("candid") or candidate["candid"],
                "cjd": [h.get("jd") for h in history],
                "cfid": [h.get("fid") for h in history],
                "cmagpsf": [np.nan if h.get("magpsf") is None else h["magpsf"] for h in history],
                "csigmapsf": [np.nan if h.get("sigmapsf") is None else h["sigmapsf"] for h in history],
                "ndethist": candidate.get("ndethist"),
            })
    df = pd.DataFrame(rows)
    jd, fid, magpsf, sigmapsf = df["cjd"], df["cfid"], df["cmagpsf"], df["csigmapsf"]
    ndethist = df["ndethist"]

    # apply_selection_cuts_ztf(magpsf, ndethist, cdsxmatch="Unknown")
    mask = magpsf.apply(lambda x: np.sum(np.array(x) == np.array(x))) >= 4
    # (A null ndethist, as in the 2016 prototype packets, fails the cut; Fink's astype(int)
    # would raise on it.)
    mask *= ndethist.fillna(10**9).astype(int) <= 20

    session = rt.InferenceSession(MODEL)
    candid = pd.Series(range(len(jd)))
    pdf = format_data_as_snana(jd, magpsf, sigmapsf, fid, candid, mask)
    features_by_row = {}
    probability = np.zeros(len(jd), dtype=float)
    for snid in np.unique(pdf["SNID"]):
        pdf_sub = pdf[pdf["SNID"] == snid]
        features = get_sigmoid_features_dev(
            pdf_sub, min_rising_points=2, min_data_points=4, rising_criteria="ewma")
        features_by_row[int(snid)] = [float(v) for v in features]
        if features[0] == 0 or features[6] == 0:
            continue
        x = np.array([features], dtype=np.float32)
        probabilities = session.run(["probabilities"], {"X": x})[0]
        probability[int(snid)] = float(probabilities[0][1])

    # The same feature extraction and forest on every alert, cuts aside: more light curves
    # for the fit, and the forest's raw probability (no a_g/a_r flag) on each.
    everyone = pd.Series([True] * len(jd))
    pdf_all = format_data_as_snana(jd, magpsf, sigmapsf, fid, candid, everyone)
    all_features = {}
    raw_probability = {}
    for snid in np.unique(pdf_all["SNID"]):
        pdf_sub = pdf_all[pdf_all["SNID"] == snid]
        features = get_sigmoid_features_dev(
            pdf_sub, min_rising_points=2, min_data_points=4, rising_criteria="ewma")
        all_features[int(snid)] = [float(v) for v in features]
        x = np.array([features], dtype=np.float32)
        raw_probability[int(snid)] = float(session.run(["probabilities"], {"X": x})[0][0][1])

    out = []
    for index, row in df.iterrows():
        out.append({
            "file": row["file"],
            "candid": int(row["candid"]),
            "passes_cuts": bool(mask[index]),
            "features": features_by_row.get(index),
            "rf_snia_vs_nonia": float(probability[index]),
            "features_without_cuts": all_features.get(index),
            "forest_probability_without_cuts": raw_probability.get(index),
        })
    result = {
        "generated_by": "scripts/early_snia_reference.py",
        "versions": {"pandas": pd.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                     "onnxruntime": rt.__version__},
        "feature_names": RF_FEATURE_NAMES,
        "alerts": out,
    }
    with open("tests/fixtures/modules/early_snia.json", "w") as handle:
        json.dump(result, handle, indent=1)
    fitted = sum(1 for a in out if a["features"] and a["features"][0] != 0 and a["features"][6] != 0)
    fitted_any = sum(1 for a in out if a["features_without_cuts"]
                     and (a["features_without_cuts"][0] != 0 or a["features_without_cuts"][6] != 0))
    print(f"{len(out)} alerts, {int(mask.sum())} pass the cuts, {fitted} fitted in both bands; "
          f"without cuts {fitted_any} fitted in a band")


if __name__ == "__main__":
    main()
