#!/usr/bin/env python3
"""Reference anomaly scores for nightjar's `anomaly` module, computed with onnxruntime.

Inputs: the fastavro decodings of the real ZTF alerts in tests/fixtures/fastavro. For each
alert, 18 light-curve features per band (fid 1, fid 2) are computed with the SNAD
`light_curve` package on the alert's magnitudes (candidate + prv_candidates with a magpsf),
in the model's column order; features that are NaN stay null. These vectors are the module's
inputs in the test; the scores follow fink-science 7.4.0 (`ztf/anomaly_detection/processor.py`):
fid-1 features go to the forest and means named "r", fid-2 ones to those named "g", NaNs are
filled with the per-band means, score = (forest_g + forest_r) / 2 in float32, and 0.0 when
a band has no features at all.

Writes tests/fixtures/modules/anomaly_scores.json. Run from the repository root:
    python3 scripts/anomaly_reference.py
Requires: numpy, pandas, onnxruntime, light_curve (versions are written in the fixture).
"""

import glob
import io
import json
import math
import zipfile

import light_curve as lc
import numpy as np
import onnxruntime as rt
import pandas as pd

MODEL_COLUMNS = [
    "amplitude", "anderson_darling_normal", "beyond_1_std", "chi2", "cusum", "kurtosis",
    "linear_fit_slope", "linear_fit_slope_sigma", "linear_trend_noise", "linear_trend_sigma",
    "magnitude_percentage_ratio_20_10", "magnitude_percentage_ratio_40_5", "maximum_slope",
    "median", "median_absolute_deviation", "median_buffer_range_percentage_10", "skew",
    "stetson_K",
]
MODELS = "data/models/anomaly_detection"
rt.set_default_logger_severity(3)

extractor = lc.Extractor(
    lc.Amplitude(), lc.AndersonDarlingNormal(), lc.BeyondNStd(nstd=1), lc.ReducedChi2(),
    lc.Cusum(), lc.Kurtosis(), lc.LinearFit(), lc.LinearTrend(),
    lc.MagnitudePercentageRatio(quantile_numerator=0.2, quantile_denominator=0.1),
    lc.MagnitudePercentageRatio(quantile_numerator=0.4, quantile_denominator=0.05),
    lc.MaximumSlope(), lc.Median(), lc.MedianAbsoluteDeviation(),
    lc.MedianBufferRangePercentage(quantile=0.1), lc.Skew(), lc.StetsonK(),
)
# light_curve names -> model column names (LinearFit and LinearTrend give 3 values each).
ORDER = {
    "amplitude": "amplitude", "anderson_darling_normal": "anderson_darling_normal",
    "beyond_1_std": "beyond_1_std", "chi2": "chi2", "cusum": "cusum", "kurtosis": "kurtosis",
    "linear_fit_slope": "linear_fit_slope", "linear_fit_slope_sigma": "linear_fit_slope_sigma",
    "linear_fit_reduced_chi2": None, "linear_trend": None,
    "linear_trend_sigma": "linear_trend_sigma", "linear_trend_noise": "linear_trend_noise",
    "magnitude_percentage_ratio_20_10": "magnitude_percentage_ratio_20_10",
    "magnitude_percentage_ratio_40_5": "magnitude_percentage_ratio_40_5",
    "maximum_slope": "maximum_slope", "median": "median",
    "median_absolute_deviation": "median_absolute_deviation",
    "median_buffer_range_percentage_10": "median_buffer_range_percentage_10",
    "skew": "skew", "stetson_K": "stetson_K",
}


def features(jd, mag, err):
    if len(jd) == 0:
        return None
    order = np.argsort(jd)
    jd, mag, err = jd[order], mag[order], err[order]
    try:
        values = extractor(jd, mag, err, fill_value=np.nan, sorted=True, check=False)
    except BaseException:  # light_curve raises a PanicException on degenerate curves
        return [None] * len(MODEL_COLUMNS)
    named = dict(zip(extractor.names, values))
    row = {}
    for name, value in named.items():
        target = ORDER.get(name)
        if target is None and name not in ORDER:
            raise KeyError(name)
        if target is not None:
            row[target] = None if not math.isfinite(value) else float(value)
    return [row[column] for column in MODEL_COLUMNS]


def load_forests(suffix):
    with zipfile.ZipFile(f"{MODELS}/anomaly_detection_forest_AAD{suffix}.zip") as archive:
        g = rt.InferenceSession(archive.read(f"forest_g_AAD{suffix}.onnx"))
        r = rt.InferenceSession(archive.read(f"forest_r_AAD{suffix}.onnx"))
    return g, r


def means(band):
    table = pd.read_csv(f"{MODELS}/{band}_means.csv", header=None, index_col=0).iloc[:, 0]
    return np.array([table[column] for column in MODEL_COLUMNS], dtype=np.float64)


def score(forests, fid1, fid2, r_means, g_means):
    if fid1 is None or fid2 is None:
        return 0.0, None, None
    data_r = np.array([r_means[i] if v is None else v for i, v in enumerate(fid1)])
    data_g = np.array([g_means[i] if v is None else v for i, v in enumerate(fid2)])
    forest_g, forest_r = forests
    s_g = forest_g.run(None, {"X": data_g.astype(np.float32)[None, :]})[-1]
    s_r = forest_r.run(None, {"X": data_r.astype(np.float32)[None, :]})[-1]
    total = (s_g + s_r) / np.float32(2)
    return float(np.ravel(total)[0]), float(np.ravel(s_g)[0]), float(np.ravel(s_r)[0])


def main():
    cases = []
    for path in sorted(glob.glob("tests/fixtures/fastavro/ztf/**/*.json", recursive=True)):
        decoded = json.load(open(path))
        for record in decoded.get("records") or []:
            candidate = record.get("candidate")
            if not candidate:
                continue
            points = [candidate] + [p for p in (record.get("prv_candidates") or [])]
            bands = {}
            for fid in (1, 2):
                rows = [p for p in points if p.get("fid") == fid and p.get("magpsf") is not None
                        and p.get("sigmapsf") is not None]
                jd = np.array([p["jd"] for p in rows], dtype=np.float64)
                mag = np.array([p["magpsf"] for p in rows], dtype=np.float64)
                err = np.array([p["sigmapsf"] for p in rows], dtype=np.float64)
                bands[fid] = features(jd, mag, err)
            cases.append({"candid": record.get("candid") or candidate["candid"], "file": decoded["file"],
                          "fid1": bands[1], "fid2": bands[2]})
    r_means, g_means = means("r"), means("g")
    models = {}
    for suffix in ["", "_beta"]:
        forests = load_forests(suffix)
        models[suffix or "default"] = [
            dict(zip(["anomaly_score", "forest_g", "forest_r"],
                     score(forests, case["fid1"], case["fid2"], r_means, g_means)))
            for case in cases
        ]
    out = {
        "generated_by": "scripts/anomaly_reference.py",
        "versions": {"onnxruntime": rt.__version__, "light_curve": lc.__version__,
                     "numpy": np.__version__},
        "columns": MODEL_COLUMNS,
        "cases": cases,
        "scores": models,
    }
    with open("tests/fixtures/modules/anomaly_scores.json", "w") as handle:
        json.dump(out, handle, indent=1)
    scored = sum(1 for s in models["default"] if s["forest_g"] is not None)
    print(f"{len(cases)} alerts, {scored} scored with both bands")


if __name__ == "__main__":
    main()
