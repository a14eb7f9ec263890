#!/usr/bin/env python3
"""Sends the requests the TOM Toolkit's Fink module (tom_fink, FinkDataService) sends to a Fink
API, to nightjar, and reads the answers as tom_fink reads them.

tom_fink itself needs a whole TOM (Django, tomtoolkit), so this script does what its
`_fetch_alerts`, `query_targets` and `create_reduced_datums_from_query` do with the same
library (requests): the same routes (POST /api/v1/objects, conesearch, latests, sso), the same
JSON bodies (form text split on commas and sent as strings, the same column lists), then
`raise_for_status()`, `response.json()`, one target per `i:objectId` with the median of `i:ra`,
`i:dec` and `i:magpsf`, the range of `i:jd`, and for each alert a timestamp from `i:jd`.

Prints one JSON line per query (the query, the number of alerts, the keys of the first alert,
the targets); exits 1 with the reason if a request fails or an answer cannot be read that way.

Used by crates/nightjar/tests/api_clients.rs.
"""
import argparse
import json
import sys

import numpy as np
import requests
from astropy.time import Time

# tom_fink's column lists (tom_fink/fink.py).
COLUMNS = "i:candid,d:rf_snia_vs_nonia,i:ra,i:dec,i:jd,i:magpsf,i:objectId,d:cdsxmatch"
SSO_COLUMNS = "i:ssnamenr,i:candid,i:ra,i:dec,i:jd,i:magpsf,i:objectId,d:roid"


def fetch_alerts(api, form, now):
    """The request tom_fink builds from its query form, and the decoded answer."""
    if form["objectId"].strip():
        response = requests.post(
            api + "/api/v1/objects",
            json={"objectId": form["objectId"].strip(), "columns": COLUMNS},
        )
    elif form["conesearch"].strip():
        ra, dec, radius = form["conesearch"].split(",")
        response = requests.post(api + "/api/v1/conesearch", json={"ra": ra, "dec": dec, "radius": radius})
    elif form["classsearch"].strip():
        class_name, n_alert = form["classsearch"].split(",")
        response = requests.post(api + "/api/v1/latests", json={"class": class_name, "n": n_alert})
    elif form["classsearchdate"].strip():
        class_name, n_days_in_past = form["classsearchdate"].split(",")
        start = Time(now.jd - float(n_days_in_past), format="jd").iso
        response = requests.post(
            api + "/api/v1/latests",
            json={"class": class_name, "n": 1000, "startdate": start, "stopdate": now.iso},
        )
    else:
        response = requests.post(
            api + "/api/v1/sso",
            json={"n_or_d": form["ssosearch"].strip(), "columns": SSO_COLUMNS},
        )
    response.raise_for_status()
    return iter(response.json())


def targets_of(alerts):
    """The rows of tom_fink's target table: one per object, from its alerts."""
    by_object = {}
    for alert in alerts:
        by_object.setdefault(alert["i:objectId"], []).append(alert)
    targets = []
    for name, rows in by_object.items():
        targets.append(
            {
                "name": name,
                "ra": float(np.median([row["i:ra"] for row in rows])),
                "dec": float(np.median([row["i:dec"] for row in rows])),
                "mag": float(np.median([row["i:magpsf"] for row in rows])),
                "jd_min": float(np.min([row["i:jd"] for row in rows])),
                "jd_max": float(np.max([row["i:jd"] for row in rows])),
                "num_alerts": len(rows),
            }
        )
        # What tom_fink stores per alert (a ReducedDatum): the magnitude and a timestamp.
        for row in rows:
            Time(row["i:jd"], format="jd").to_datetime()
            float(row["i:magpsf"])
    return targets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api", help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--objectId", default="")
    parser.add_argument("--conesearch", default="", help='"RA, Dec, radius" as typed in the form')
    parser.add_argument("--classsearch", default="", help='"class, n_alert"')
    parser.add_argument("--classsearchdate", default="", help='"class, n_days_in_past"')
    parser.add_argument("--ssosearch", default="")
    parser.add_argument("--now", type=float, help="JD taken as now by classsearchdate (default: now)")
    args = parser.parse_args()
    now = Time(args.now, format="jd") if args.now is not None else Time.now()
    fields = ["objectId", "conesearch", "classsearch", "classsearchdate", "ssosearch"]
    for field in fields:
        value = getattr(args, field)
        if not value:
            continue
        # One search field filled at a time, as tom_fink requires.
        form = {name: (value if name == field else "") for name in fields}
        try:
            alerts = list(fetch_alerts(args.api, form, now))
            targets = targets_of(alerts)
        except Exception as error:  # noqa: BLE001 (the reason goes to the test's message)
            print(f"{field} {value!r}: {type(error).__name__}: {error}", file=sys.stderr)
            sys.exit(1)
        keys = sorted(alerts[0]) if alerts else []
        print(json.dumps({"query": field, "alerts": len(alerts), "keys": keys, "targets": targets}))


if __name__ == "__main__":
    main()
