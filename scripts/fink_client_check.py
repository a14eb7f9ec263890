#!/usr/bin/env python3
"""Reads nightjar's output topics with fink-client (Fink's own Python consumer,
``fink_client.consumer.AlertConsumer``) and checks every alert it gets against a reference of
what nightjar decoded, stored and published.

fink-client decodes each message as Fink's livestream does: the key is the Avro schema as JSON
(parsed with fastavro), the value one schemaless Avro datum. For every alert this checks:

* the ids: ``candid`` / ``diaSource.diaSourceId`` and ``objectId`` / ``diaObjectId``;
* the brightness: ``candidate.magpsf`` (ZTF) or ``diaSource.psfFlux`` (Rubin) against the
  stored detection;
* every field of the survey's alert record, recursively, against nightjar's own decoding of
  the input (``raw``): the history (``prv_candidates``, ``prvDiaSources``,
  ``prvDiaForcedSources``, ...) entry by entry, cutouts by length and SHA-256;
* the science modules' columns (every field the survey's record does not have, nested records
  flattened to dotted names) against the module values nightjar stored (nulls absent);
* that the key names the modules that computed them (``nightjar.modules``).

With ``--parquet FILE`` it also reads the Parquet files ``nightjar consume --out FILE.parquet``
wrote (with pyarrow, another independent reader) and checks every row the same way.

Reference: one JSON object per line, ``{"survey", "source_id", "object_id", "magnitude",
"flux", "raw", "modules"}``, with bytes as ``{"$bytes": {"len", "sha256"}}`` and non-finite
floats as the strings "NaN", "Infinity", "-Infinity" (written by the Rust test
``fink_client_and_parquet_files_hold_every_published_alert_as_nightjar_stored_it``
in crates/nightjar/tests/kafka.rs).

Prints one JSON line: ``{"checked": N, "by_survey": {...}, "duplicates": D, ...}``; exits 1 with
the mismatches (first 20) on stderr when an alert differs, is missing or is not expected.

Usage: fink_client_check.py --brokers HOST:PORT --reference FILE
           [--ztf-topic TOPIC] [--lsst-topic TOPIC] [--idle SECONDS] [--parquet FILE]...
"""

import argparse
import datetime
import hashlib
import json
import math
import sys
import time
import uuid

from fink_client.consumer import AlertConsumer

# Relative tolerance for module outputs: the store keeps them as JSON numbers, the output as
# Avro float or double.
MODULE_REL_TOL = 1e-6
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def source_id_of(survey, alert):
    if survey == "ztf":
        return alert["candid"]
    return alert["diaSource"]["diaSourceId"]


def object_id_of(survey, alert):
    if survey == "ztf":
        return alert["objectId"]
    # fink-client's own rule for Rubin alerts (fink_client.consumer.extract_id_from_lsst),
    # with nightjar's id text: the diaObjectId, or "ss:<ssObjectId>" for a solar-system source.
    source = alert["diaSource"]
    dia_object = alert.get("diaObject") or {}
    for candidate in (source.get("diaObjectId"), dia_object.get("diaObjectId")):
        if candidate:
            return str(candidate)
    for candidate in (source.get("ssObjectId"), (alert.get("ssSource") or {}).get("ssObjectId")):
        if candidate:
            return "ss:{}".format(candidate)
    return None


def brightness_of(survey, alert):
    if survey == "ztf":
        return "magnitude", alert["candidate"].get("magpsf")
    return "flux", alert["diaSource"].get("psfFlux")


def history_of(survey, alert):
    key = "prv_candidates" if survey == "ztf" else "prvDiaSources"
    return key, alert.get(key)


def same_float(got, expected, rel_tol):
    if isinstance(expected, str):
        return {"NaN": math.isnan(got), "Infinity": got == math.inf, "-Infinity": got == -math.inf}.get(
            expected, False
        )
    if not isinstance(expected, (int, float)) or isinstance(expected, bool):
        return False
    if rel_tol == 0:
        return got == expected
    return math.isclose(got, expected, rel_tol=rel_tol, abs_tol=1e-12)


def compare(got, expected, path, problems, rel_tol=0.0):
    """Appends to `problems` every difference between a fink-client value and the reference.
    Returns the number of leaf values compared."""
    if isinstance(got, dict):
        if not isinstance(expected, dict):
            problems.append("{}: a record, expected {!r}".format(path, expected))
            return 0
        n_compared = 0
        for key, value in got.items():
            if key not in expected:
                problems.append("{}.{}: not in nightjar's decoding".format(path, key))
                continue
            n_compared += compare(value, expected[key], "{}.{}".format(path, key), problems, rel_tol)
        # nightjar's wire types hold every schema version's fields: those this schema lacks are null.
        for key, value in expected.items():
            if key not in got and value is not None:
                problems.append("{}.{}: missing, nightjar has {!r}".format(path, key, value))
        return n_compared
    if isinstance(got, list):
        if not isinstance(expected, list) or len(got) != len(expected):
            problems.append(
                "{}: {} entries, nightjar has {}".format(
                    path, len(got), len(expected) if isinstance(expected, list) else repr(expected)
                )
            )
            return 0
        return sum(
            compare(item, other, "{}[{}]".format(path, index), problems, rel_tol)
            for index, (item, other) in enumerate(zip(got, expected))
        )
    if isinstance(got, (bytes, bytearray)):
        summary = (expected or {}).get("$bytes") if isinstance(expected, dict) else None
        if summary != {"len": len(got), "sha256": hashlib.sha256(got).hexdigest()}:
            problems.append("{}: {} bytes that differ from nightjar's {!r}".format(path, len(got), expected))
        return 1
    if isinstance(got, datetime.datetime):
        # fastavro applies the timestamp logical types; nightjar keeps the number.
        micros = round((got - EPOCH).total_seconds() * 1e6)
        if expected not in (micros, micros // 1000):
            problems.append("{}: {} ({} us), nightjar has {!r}".format(path, got, micros, expected))
        return 1
    if isinstance(got, float):
        if not same_float(got, expected, rel_tol):
            problems.append("{}: {!r}, nightjar has {!r}".format(path, got, expected))
        return 1
    if got != expected or isinstance(got, bool) != isinstance(expected, bool):
        problems.append("{}: {!r}, nightjar has {!r}".format(path, got, expected))
    return 1


def flatten(value, prefix, out):
    """Module columns as nightjar stores them: nested records become dotted names."""
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(inner, "{}.{}".format(prefix, key), out)
    else:
        out[prefix] = value


class Checker:
    def __init__(self, references):
        self.references = references
        self.seen = {}
        self.duplicates = 0
        self.problems = []
        self.module_columns = set()
        self.leaves_compared = 0
        self.history_entries = 0

    def check(self, survey, topic, alert, key):
        where = "{} {}".format(topic, survey)
        try:
            source_id = source_id_of(survey, alert)
        except (KeyError, TypeError) as error:
            self.problems.append("{}: no source id ({})".format(where, error))
            return
        where = "{} {} {}".format(topic, survey, source_id)
        reference = self.references.get((survey, source_id))
        if reference is None:
            self.problems.append("{}: not an alert nightjar stored".format(where))
            return
        if (survey, source_id) in self.seen:
            # At least once: a repeat must be the same alert.
            self.duplicates += 1
        self.seen[(survey, source_id)] = topic
        problems = []

        object_id = object_id_of(survey, alert)
        if object_id != reference["object_id"]:
            problems.append("object id {!r}, nightjar stored {!r}".format(object_id, reference["object_id"]))
        name, value = brightness_of(survey, alert)
        expected = reference[name]
        if value is None or expected is None:
            if value is not None or expected is not None:
                problems.append("{} {!r}, nightjar stored {!r}".format(name, value, expected))
        elif not math.isclose(value, expected, rel_tol=1e-6):
            problems.append("{} {!r}, nightjar stored {!r}".format(name, value, expected))
        history_key, history = history_of(survey, alert)
        expected_history = reference["raw"].get(history_key)
        if len(history or []) != len(expected_history or []):
            problems.append(
                "{}: {} entries, nightjar decoded {}".format(
                    history_key, len(history or []), len(expected_history or [])
                )
            )
        self.history_entries += len(history or [])

        # Every field of the survey's record; the others are module columns.
        raw = reference["raw"]
        record = {field: value for field, value in alert.items() if field in raw}
        self.leaves_compared += compare(record, raw, "alert", problems)
        published = {}
        for field, value in alert.items():
            if field not in raw:
                flatten(value, field, published)
        if not published:
            problems.append("no module column in the published record")
        self.module_columns.update(published)
        stored = reference["modules"]
        for column, value in published.items():
            if value is None:
                if stored.get(column) is not None:
                    problems.append("module {}: null, nightjar stored {!r}".format(column, stored[column]))
            elif column not in stored:
                problems.append("module {}: {!r}, nightjar stored nothing".format(column, value))
            else:
                self.leaves_compared += compare(value, stored[column], "module " + column, problems, MODULE_REL_TOL)
        for column in stored:
            if column not in published:
                problems.append("module {}: stored but not published".format(column))

        if key is not None:
            try:
                schema = json.loads(key)
            except (TypeError, ValueError) as error:
                problems.append("the key is not JSON: {}".format(error))
            else:
                if not isinstance(schema.get("nightjar.modules"), dict):
                    problems.append("the key's schema does not name the modules (nightjar.modules)")
        self.problems.extend("{}: {}".format(where, problem) for problem in problems)


def by_survey(checker):
    counts = {}
    for survey, _ in checker.seen:
        counts[survey] = counts.get(survey, 0) + 1
    return counts


def check_parquet(paths, references):
    """Checks every row of nightjar's Parquet files against the reference, as the Kafka
    records are; every referenced alert of the files' surveys must be there once."""
    import pyarrow.parquet

    checker = Checker(references)
    checker.seen_count = {}
    surveys = set()
    for path in paths:
        for row in pyarrow.parquet.read_table(path).to_pylist():
            survey = "ztf" if "candid" in row else "lsst"
            surveys.add(survey)
            checker.check(survey, path, row, None)
            key = (survey, source_id_of(survey, row))
            checker.seen_count[key] = checker.seen_count.get(key, 0) + 1
    if checker.duplicates:
        checker.problems.append("parquet: {} rows twice".format(checker.duplicates))
    for key in sorted(key for key in references if key[0] in surveys and key not in checker.seen):
        checker.problems.append("parquet: {} {} missing".format(*key))
    return checker


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--reference", required=True, help="JSON lines written by the Rust test")
    parser.add_argument("--ztf-topic", action="append", default=[])
    parser.add_argument("--lsst-topic", action="append", default=[])
    parser.add_argument("--idle", type=float, default=20.0, help="give up after this long without a message")
    parser.add_argument("--parquet", action="append", default=[], help="a file of nightjar consume --out")
    args = parser.parse_args()

    references = {}
    with open(args.reference) as lines:
        for line in lines:
            reference = json.loads(line)
            survey = "ztf" if reference["survey"] == "ztf" else "lsst"
            references[(survey, reference["source_id"])] = reference
    checker = Checker(references)

    group = "fink-client-check-{}".format(uuid.uuid4())
    # No username or password: fink-client then connects without authentication.
    config = {"bootstrap.servers": args.brokers, "group.id": group}
    consumers = [(survey, AlertConsumer([topic], config, survey=survey)) for survey, topic in
                 [("ztf", topic) for topic in args.ztf_topic] + [("lsst", topic) for topic in args.lsst_topic]]
    surveys = {survey for survey, _ in consumers}
    expected = {key for key in references if key[0] in surveys}
    last_message = time.monotonic()
    try:
        while not expected.issubset(checker.seen) and time.monotonic() - last_message < args.idle:
            for survey, consumer in consumers:
                for topic, alert, key in consumer.consume(num_alerts=100, timeout=0.5):
                    if topic is None:
                        continue
                    last_message = time.monotonic()
                    checker.check(survey, topic, alert, key)
    finally:
        for _, consumer in consumers:
            consumer.close()

    missing = sorted(expected - set(checker.seen))
    problems = checker.problems + ["{} {}: stored but never received".format(*key) for key in missing]
    report = {
        "checked": len(checker.seen),
        "by_survey": by_survey(checker),
        "duplicates": checker.duplicates,
        "values_compared": checker.leaves_compared,
        "history_entries": checker.history_entries,
        "module_columns": len(checker.module_columns),
    }
    if args.parquet:
        parquet = check_parquet(args.parquet, references)
        problems += parquet.problems
        report["parquet"] = {
            "rows": sum(parquet.seen_count.values()),
            "by_survey": by_survey(parquet),
            "values_compared": parquet.leaves_compared,
            "module_columns": len(parquet.module_columns),
        }
    report["problems"] = len(problems)
    print(json.dumps(report))
    for problem in problems[:20]:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
