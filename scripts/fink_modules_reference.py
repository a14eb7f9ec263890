"""Compute the reference values of the solar_system, rates and light_curve_features modules
with Fink's own Python code, on every alert in tests/data, and write them as JSON fixtures.

The expected values of nightjar's module tests come from here, not from nightjar: each ZTF
alert is read with fastavro (``scripts/fastavro_dump.py``), its history is concatenated the way
Fink's ``concat_col`` does it (``prv_candidates`` in packet order, then ``candidate``), and the
fink-science 7.4.0 functions are called on it:

* ``fink_science.ztf.asteroids.processor.roid_catcher``          -> ``roid``
* ``fink_science.ztf.fast_transient_rate.processor.fast_transient_rate`` -> ``jd_first_real_det``,
  ``jdstarthist_dt``, ``delta_time``, ``from_upper`` (and a seeded ``mag_rate`` sample, only
  for information: Fink draws it at random)
* ``fink_science.ztf.ad_features.processor.extract_features_ad_raw`` -> ``lc_features_g``,
  ``lc_features_r`` (light-curve Python package, the binding of the light-curve-feature crate)

fink-science's processors import pyspark and line_profiler at module level only to declare
Spark UDFs; the few names they use are replaced by inert stand-ins below so that the plain
Python functions can be called without a Spark installation. The functions themselves run
unchanged.

Rubin alerts have no Fink reference for these modules; for them the script evaluates the
light-curve package on the g and r diaSources (difference magnitudes from psfFlux), which is
the input nightjar documents for Rubin.

Usage (from the repository root)::

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r scripts/fink_reference_requirements.txt
    /tmp/venv/bin/pip install --no-deps fink-science==7.4.0
    /tmp/venv/bin/python scripts/fink_modules_reference.py tests/data tests/fixtures/fink_modules
"""

import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd


def install_spark_stand_ins():
    """Inert stand-ins for the pyspark / line_profiler names that fink-science imports."""

    def passthrough_decorator(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda function: function

    def udf(f=None, returnType=None):
        return f if f is not None else (lambda function: function)

    class AnyType:
        def __init__(self, *args, **kwargs):
            pass

    modules = {}
    for name in [
        "pyspark",
        "pyspark.sql",
        "pyspark.sql.functions",
        "pyspark.sql.types",
        "line_profiler",
    ]:
        modules[name] = types.ModuleType(name)
    functions = modules["pyspark.sql.functions"]
    functions.pandas_udf = passthrough_decorator
    functions.udf = udf
    functions.PandasUDFType = types.SimpleNamespace(SCALAR="scalar")
    sql_types = modules["pyspark.sql.types"]
    for type_name in [
        "StructType",
        "StructField",
        "DoubleType",
        "BooleanType",
        "IntegerType",
        "MapType",
        "FloatType",
        "StringType",
        "ArrayType",
        "LongType",
    ]:
        setattr(sql_types, type_name, AnyType)
    modules["pyspark.sql"].functions = functions
    modules["pyspark.sql"].types = sql_types
    modules["pyspark.sql"].DataFrame = AnyType
    modules["line_profiler"].profile = lambda function: function
    sys.modules.update(modules)
    tester = types.ModuleType("fink_science.tester")
    tester.spark_unit_tests = lambda *args, **kwargs: None
    tester.regular_unit_tests = lambda *args, **kwargs: None
    sys.modules["fink_science.tester"] = tester
    # Only the Spark helper concat_col is imported from here (and redone by concat() below).
    spark_utils = types.ModuleType("fink_utils.spark.utils")
    spark_utils.concat_col = None
    sys.modules["fink_utils.spark.utils"] = spark_utils


install_spark_stand_ins()

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastavro_dump import decode_avro  # noqa: E402

from fink_science.ztf.asteroids.processor import roid_catcher  # noqa: E402
from fink_science.ztf.fast_transient_rate.processor import (  # noqa: E402
    fast_transient_rate,
    get_last_alert,
)
from fink_science.ztf.ad_features.processor import (  # noqa: E402
    FEATURES_COLS,
    create_extractor,
    extract_features_ad_raw,
)
import light_curve  # noqa: E402

# 95 % quantile of the standard normal distribution.
Z_95 = 1.6448536269514722

# Zero point of nJy fluxes in AB magnitudes: m = -2.5 log10(f / 3631 Jy).
NJY_ZERO_POINT = 31.4


def finite_or_none(value):
    """A JSON-safe float: NaN and infinities become null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def concat(alert, name):
    """Fink's concat_col: prv_candidates values (packet order), then the candidate's."""
    history = alert.get("prv_candidates") or []
    return [entry.get(name) for entry in history] + [alert["candidate"].get(name)]


def as_float(values):
    return [np.nan if value is None else float(value) for value in values]


def analytic_rate(jd, mag, sigma, last_jd, last_mag, last_sigma, last_limit):
    """(mag - last) / dt with the propagated error; from the limit when there is no last mag."""
    nothing = {"mag_rate": None, "sigma_rate": None, "lower_rate": None, "upper_rate": None}
    values = [jd, mag, sigma, last_jd]
    if any(value is None or not math.isfinite(float(value)) for value in values):
        return nothing
    dt = float(jd) - float(last_jd)
    if not dt > 0:
        return nothing
    if last_mag is not None and math.isfinite(float(last_mag)):
        if last_sigma is None or not math.isfinite(float(last_sigma)):
            return nothing
        reference, error = float(last_mag), math.hypot(float(sigma), float(last_sigma))
    elif last_limit is not None and math.isfinite(float(last_limit)):
        reference, error = float(last_limit), float(sigma)
    else:
        return nothing
    rate, sigma_rate = (float(mag) - reference) / dt, error / dt
    return {
        "mag_rate": rate,
        "sigma_rate": sigma_rate,
        "lower_rate": rate - Z_95 * sigma_rate,
        "upper_rate": rate + Z_95 * sigma_rate,
    }


def rubin_mag(flux, flux_err):
    """AB magnitude of |psfFlux| (nJy) and its first-order error; None when unusable."""
    if flux is None or not math.isfinite(flux) or flux == 0:
        return None, None
    mag = NJY_ZERO_POINT - 2.5 * math.log10(abs(flux))
    if flux_err is None or not math.isfinite(flux_err):
        return mag, None
    return mag, 2.5 / math.log(10) * flux_err / abs(flux)


def rubin_rates(alert):
    """nightjar's Rubin rates: the newest earlier diaSource or limit in the same band."""
    source = alert["diaSource"]
    band = source.get("band")
    jd = source["midpointMjdTai"] + 2400000.5
    mag, sigma = rubin_mag(source.get("psfFlux"), source.get("psfFluxErr"))
    history = list(alert.get("prvDiaSources") or [])
    candidates = []  # (mjd, is_detection, mag, sigma, limit)
    for earlier in history:
        earlier_mag, earlier_sigma = rubin_mag(earlier.get("psfFlux"), earlier.get("psfFluxErr"))
        if earlier.get("band") == band and earlier_mag is not None:
            candidates.append((earlier["midpointMjdTai"], 1, earlier_mag, earlier_sigma, None))
    for limit in alert.get("prvDiaNondetectionLimits") or []:
        noise = limit.get("diaNoise")
        if limit.get("band") == band and noise is not None and math.isfinite(noise) and noise > 0:
            candidates.append((limit["midpointMjdTai"], 0, None, None, NJY_ZERO_POINT - 2.5 * math.log10(5 * noise)))
    out = {"jd_first_real_det": min([e["midpointMjdTai"] for e in history] + [source["midpointMjdTai"]]) + 2400000.5}
    if not candidates:
        out.update({"delta_time": None, "from_upper": False})
        out.update(analytic_rate(None, None, None, None, None, None, None))
        return out
    last_mjd, is_detection, last_mag, last_sigma, last_limit = max(candidates, key=lambda c: (c[0], c[1]))
    last_jd = last_mjd + 2400000.5
    out["delta_time"] = jd - last_jd
    out["from_upper"] = not is_detection
    out.update(analytic_rate(jd, mag, sigma, last_jd, last_mag, last_sigma, last_limit))
    return out


def ztf_reference(alert):
    candidate = alert["candidate"]
    cjd = concat(alert, "jd")
    cmagpsf = concat(alert, "magpsf")

    def series(value, dtype):
        # Spark hands Fink's UDFs the alert's own column types: float32 for these floats.
        return pd.Series([np.nan if value is None else value], dtype=dtype)

    roid = roid_catcher(
        pd.Series([np.array(cjd, dtype=float)]),
        pd.Series([np.array(as_float(cmagpsf))]),
        series(candidate.get("ndethist"), "float64"),
        series(candidate.get("sgscore1"), "float32"),
        series(candidate.get("ssdistnr"), "float32"),
        series(candidate.get("distpsnr1"), "float32"),
    )
    out = {
        "roid": int(roid.iloc[0]),
        "ssnamenr": candidate.get("ssnamenr"),
        "ssdistnr": finite_or_none(candidate.get("ssdistnr")),
    }

    rate_input = pd.DataFrame(
        {
            "magpsf": [candidate.get("magpsf")],
            "sigmapsf": [candidate.get("sigmapsf")],
            "jd": [candidate.get("jd")],
            "jdstarthist": [np.nan if candidate.get("jdstarthist") is None else candidate["jdstarthist"]],
            "fid": [candidate.get("fid")],
            "cmagpsf": [cmagpsf],
            "csigmapsf": [concat(alert, "sigmapsf")],
            "cdiffmaglim": [as_float(concat(alert, "diffmaglim"))],
            "cjd": [cjd],
            "cfid": [concat(alert, "fid")],
        }
    )
    rates = fast_transient_rate(rate_input, 10000, 2023).iloc[0]
    for name in ["jd_first_real_det", "jdstarthist_dt", "delta_time"]:
        out[name] = finite_or_none(rates[name])
    out["from_upper"] = bool(rates["from_upper"])
    # nightjar's analytic rate, on the last measurement that Fink's get_last_alert selects.
    last_mag, last_sigma, last_limit, last_jd, _ = get_last_alert(
        candidate.get("fid"),
        concat(alert, "fid"),
        cmagpsf,
        concat(alert, "sigmapsf"),
        as_float(concat(alert, "diffmaglim")),
        cjd,
    )
    out.update(
        analytic_rate(
            candidate.get("jd"), candidate.get("magpsf"), candidate.get("sigmapsf"),
            last_jd, last_mag, last_sigma, last_limit,
        )
    )
    out["fink_seeded_mag_rate"] = finite_or_none(rates["mag_rate"])
    out["fink_seeded_sigma_rate"] = finite_or_none(rates["sigma_rate"])

    features = extract_features_ad_raw(
        cmagpsf,
        cjd,
        concat(alert, "sigmapsf"),
        concat(alert, "fid"),
        alert.get("objectId"),
        as_float(concat(alert, "distnr")),
        as_float(concat(alert, "magnr")),
        as_float(concat(alert, "sigmagnr")),
        [str(value) for value in concat(alert, "isdiffpos")],
    )
    for fid, band in [(1, "g"), (2, "r")]:
        band_features = features.get(fid)
        out[f"lc_features_{band}"] = (
            None
            if band_features is None
            else {name: finite_or_none(band_features[name]) for name in FEATURES_COLS}
        )
    return out


def rubin_roid(alert):
    """nightjar's Rubin roid: 3 for a diaSource associated with a known Solar System object."""
    ss_source = alert.get("ssSource")
    # Spark rewrites carry an ssSource of nulls for diaSources without a known object.
    ids = [
        alert["diaSource"].get("ssObjectId"),
        (ss_source or {}).get("ssObjectId"),
        (alert.get("MPCORB") or {}).get("ssObjectId"),
    ]
    known = any(ss_id not in (None, 0) for ss_id in ids)
    if known:
        names = [
            (alert.get("MPCORB") or {}).get("mpcDesignation"),
            (ss_source or {}).get("designation"),
            (alert.get("mpc_orbits") or {}).get("designation"),
        ]
        name = next((name for name in names if name is not None and name.strip()), None)
        return {"roid": 3, "ssnamenr": name}
    n_dia_sources = (alert.get("diaObject") or {}).get("nDiaSources")
    first = n_dia_sources == 1 if n_dia_sources is not None else not alert.get("prvDiaSources")
    return {"roid": int(first), "ssnamenr": None}


def rubin_reference(alert):
    """light-curve features of the g and r diaSources (history, then the new one), sorted by
    time, with positive psfFlux only."""
    sources = list(alert.get("prvDiaSources") or []) + [alert["diaSource"]]
    extractor = create_extractor()
    out = rubin_rates(alert)
    out.update(rubin_roid(alert))
    for band in ["g", "r"]:
        points = []
        for source in sources:
            flux, flux_err = source.get("psfFlux"), source.get("psfFluxErr")
            if source.get("band") != band or flux is None or flux_err is None:
                continue
            if not (math.isfinite(flux) and math.isfinite(flux_err)) or flux <= 0:
                continue
            mag = NJY_ZERO_POINT - 2.5 * math.log10(flux)
            mag_err = 2.5 / math.log(10) * flux_err / flux
            points.append((source["midpointMjdTai"] + 2400000.5, mag, mag_err))
        if not points:
            out[f"lc_features_{band}"] = None
            continue
        # Stable sort by time; of points sharing a time (deblended sources of one visit) the
        # first listed is kept: the light-curve package refuses equal times.
        points.sort(key=lambda point: point[0])
        points = [point for index, point in enumerate(points) if index == 0 or point[0] != points[index - 1][0]]
        t, m, sigma = (np.array(column, dtype=np.float64) for column in zip(*points))
        values = extractor(t, m, sigma, fill_value=np.nan)
        out[f"lc_features_{band}"] = {
            name: finite_or_none(value) for name, value in zip(FEATURES_COLS, values)
        }
        out[f"n_points_{band}"] = len(points)
    return out


def main():
    data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
    out_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/fink_modules")
    out_dir.mkdir(parents=True, exist_ok=True)
    ztf, rubin = [], []
    for path in sorted(data_dir.rglob("*.avro")):
        decoded = decode_avro(path.read_bytes())
        for index, record in enumerate(decoded.get("records", [])):
            rel = str(path.relative_to(data_dir))
            if "candidate" in record and record.get("candidate") is not None:
                if record["candidate"].get("jd") is None:
                    continue
                entry = {"file": rel, "record": index, "candid": record["candidate"].get("candid")}
                entry.update(ztf_reference(record))
                ztf.append(entry)
            elif record.get("diaSource") is not None:
                entry = {"file": rel, "record": index, "diaSourceId": record["diaSource"].get("diaSourceId")}
                entry.update(rubin_reference(record))
                rubin.append(entry)
    versions = {
        "fink_science": __import__("fink_science").__version__,
        "light_curve": light_curve.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    for name, alerts in [("ztf", ztf), ("rubin", rubin)]:
        document = {
            "generated_by": "scripts/fink_modules_reference.py",
            "versions": versions,
            "feature_names": list(FEATURES_COLS),
            "alerts": alerts,
        }
        (out_dir / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n")
        print(f"{name}: {len(alerts)} alerts -> {out_dir / (name + '.json')}")


if __name__ == "__main__":
    main()
