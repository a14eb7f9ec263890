#!/usr/bin/env python3
"""Reference matches for nightjar's `crossmatch` module, computed with astropy.

For every alert in tests/fixtures/fastavro (fastavro decodings of tests/data; ZTF
`candidate.ra/dec`, Rubin `diaSource.ra/dec`), finds the nearest source of each default
catalogue of data/catalogs with astropy's `SkyCoord.match_to_catalog_sky` and keeps it when
it lies within the catalogue's default radius. Ids are the catalogue's id column, or the row
number in the file (from 0) where nightjar's default has none.

Writes tests/fixtures/modules/crossmatch.json. Run from the repository root:
    python3 scripts/crossmatch_reference.py
Requires: numpy, pandas, pyarrow, astropy.
"""

import glob
import json

import astropy
import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord

CATALOGS = "data/catalogs"


def hipparcos():
    pdf = pd.read_csv(f"{CATALOGS}/hipparcos2_hp_lt7.csv")
    return pdf["ra_deg"], pdf["dec_deg"], pdf["hip"].astype(str), 600.0


def gcvs():
    pdf = pd.read_parquet(f"{CATALOGS}/gcvs_variable_stars.parquet")
    return pdf["ra"], pdf["dec"], pd.Series(range(len(pdf))).astype(str), 1.5


def spicy():
    pdf = pd.read_parquet(f"{CATALOGS}/spicy_yso_candidates.parquet")
    return pdf["RAdeg"], pdf["DEdeg"], pd.Series(range(len(pdf))).astype(str), 1.5


def x3hsp():
    pdf = pd.read_csv(f"{CATALOGS}/3hsp_blazars.csv", header=0)
    pdf.columns = [c.strip() for c in pdf.columns]
    ra = pdf["R.A."].apply(lambda x: x.strip().replace('"', ""))
    dec = pdf["Dec"].apply(lambda x: x.strip().replace('"', ""))
    coord = SkyCoord(ra, dec, unit=(u.hourangle, u.deg))
    names = pdf["3HSP Source name"].apply(lambda x: x.strip().replace('"', "").strip())
    return pd.Series(coord.ra.deg), pd.Series(coord.dec.deg), names, 60.0


def main():
    alerts = []
    for path in sorted(glob.glob("tests/fixtures/fastavro/**/*.json", recursive=True)):
        decoded = json.load(open(path))
        for record in decoded.get("records") or []:
            if record.get("candidate"):
                source = record.get("candid") or record["candidate"]["candid"]
                ra, dec = record["candidate"]["ra"], record["candidate"]["dec"]
            elif record.get("diaSource"):
                source = record["diaSource"]["diaSourceId"]
                ra, dec = record["diaSource"]["ra"], record["diaSource"]["dec"]
            else:
                continue
            alerts.append({"file": decoded["file"], "source_id": source, "ra": ra, "dec": dec})
    positions = SkyCoord(ra=[a["ra"] for a in alerts] * u.deg, dec=[a["dec"] for a in alerts] * u.deg)
    for name, loader in [("hipparcos", hipparcos), ("gcvs", gcvs), ("spicy", spicy), ("x3hsp", x3hsp)]:
        ra, dec, ids, radius = loader()
        catalogue = SkyCoord(ra=np.asarray(ra, float) * u.deg, dec=np.asarray(dec, float) * u.deg)
        idx, d2d, _ = positions.match_to_catalog_sky(catalogue)
        for alert, index, distance in zip(alerts, idx, d2d.arcsec):
            alert[name] = ({"id": ids.iloc[index], "distance_arcsec": float(distance)}
                           if distance <= radius else None)
    out = {"generated_by": "scripts/crossmatch_reference.py",
           "versions": {"astropy": astropy.__version__}, "alerts": alerts}
    with open("tests/fixtures/modules/crossmatch.json", "w") as handle:
        json.dump(out, handle, indent=1)
    for name in ["hipparcos", "gcvs", "spicy", "x3hsp"]:
        print(name, [(a["source_id"], a[name]) for a in alerts if a[name]])


if __name__ == "__main__":
    main()
