"""Generates a survey crate's wire types (src/wire.rs) from the survey's Avro schemas.

Every schema version of a survey decodes into one set of structs: for each record type (by its
short name, e.g. `candidate` or `diaSource`) the generator takes the union of the fields over all
versions, in first-seen order, with the widest type seen (int -> i64 when any version says long,
float -> f64 when any says double). Every field is optional in the generated struct, so older
versions and Spark-rewritten records with missing fields decode too.

Usage:
    python3 scripts/gen_wire_types.py ztf   # crates/nightjar-ztf/src/wire.rs
    python3 scripts/gen_wire_types.py rubin # crates/nightjar-rubin/src/wire.rs
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SURVEYS = {
    "ztf": {
        "schemas": sorted((ROOT / "crates/nightjar-ztf/schemas").glob("v*/alert.avsc")),
        "out": ROOT / "crates/nightjar-ztf/src/wire.rs",
        "rename": {"alert": "ZtfAlert"},
        "title": "ZTF alert packets, schema versions",
    },
    "rubin": {
        "schemas": sorted((ROOT / "crates/nightjar-rubin/schemas").glob("*/lsst.v*.alert.avsc")),
        "out": ROOT / "crates/nightjar-rubin/src/wire.rs",
        "rename": {"alert": "RubinAlert", "MPCORB": "Mpcorb", "mpc_orbits": "MpcOrbits"},
        "title": "Rubin alert packets, schema versions",
    },
}

PRIMITIVES = {
    "int": "i32",
    "long": "i64",
    "float": "f32",
    "double": "f64",
    "string": "String",
    "boolean": "bool",
    "bytes": "RawBytes",
}

# Scalar types that can meet in one field across versions; a clash no widening covers becomes
# nightjar_core::Scalar, which holds whichever the writer used.
SCALARS = {"i32", "i64", "f32", "f64", "String", "bool", "Scalar"}

# When two versions disagree, the wider type wins.
WIDER = {("i32", "i64"): "i64", ("f32", "f64"): "f64", ("i32", "f64"): "f64", ("i64", "f64"): "f64",
         ("f32", "i64"): "f64", ("i32", "f32"): "f64"}


def short(name):
    return name.rsplit(".", 1)[-1]


def camel(name):
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def load_alert_schema(path):
    """Loads a top-level schema, inlining named sub-schemas found in sibling files."""
    folder = path.parent
    named = {}
    for sibling in folder.glob("*.avsc"):
        if sibling == path:
            continue
        schema = json.loads(sibling.read_text())
        if isinstance(schema, dict) and "name" in schema:
            named[short(schema["name"])] = schema
    return json.loads(path.read_text()), named


class Generator:
    def __init__(self, rename):
        self.rename = rename
        self.records = {}  # short name -> {"fields": {name: rust type}, "docs": {name: doc}, "order": [...]}
        self.versions = []

    def struct_name(self, record_name):
        name = short(record_name)
        return self.rename.get(name, camel(name))

    def rust_type(self, avro_type, named):
        if isinstance(avro_type, list):
            branches = [branch for branch in avro_type if branch != "null"]
            if len(branches) != 1:
                raise ValueError(f"unsupported union {avro_type}")
            return self.rust_type(branches[0], named)
        if isinstance(avro_type, str):
            if avro_type in PRIMITIVES:
                return PRIMITIVES[avro_type]
            name = short(avro_type)
            if name in named:
                return self.add_record(named[name], named)
            if name in self.records:
                return self.struct_name(name)
            raise ValueError(f"unknown type {avro_type}")
        kind = avro_type.get("type")
        if kind == "record":
            return self.add_record(avro_type, named)
        if kind == "array":
            return f"Vec<{self.rust_type(avro_type['items'], named)}>"
        if kind == "map":
            values = self.rust_type(avro_type["values"], named)
            if values != "String":
                raise ValueError(f"unsupported map of {values}")
            return "std::collections::BTreeMap<String, String>"
        if kind == "enum":
            return "String"
        if kind == "fixed":
            return "RawBytes"
        if kind in PRIMITIVES:
            return PRIMITIVES[kind]
        raise ValueError(f"unsupported type {avro_type}")

    def add_record(self, schema, named):
        name = short(schema["name"])
        record = self.records.setdefault(name, {"fields": {}, "docs": {}, "order": []})
        for field in schema["fields"]:
            rust = self.rust_type(field["type"], named)
            field_name = field["name"]
            if field_name not in record["fields"]:
                record["order"].append(field_name)
                record["fields"][field_name] = rust
            elif record["fields"][field_name] != rust:
                old = record["fields"][field_name]
                wider = WIDER.get((old, rust)) or WIDER.get((rust, old))
                if wider is None and {old, rust} <= SCALARS:
                    # e.g. ZTF isdiffpos: int in the 2016 prototypes, string since.
                    wider = "Scalar"
                if wider is None:
                    raise ValueError(f"{name}.{field_name}: {old} vs {rust}")
                record["fields"][field_name] = wider
            if field.get("doc"):
                record["docs"][field_name] = " ".join(field["doc"].split())
        return self.struct_name(name)

    def uses(self, rust_type):
        return any(rust_type in field for record in self.records.values() for field in record["fields"].values())

    def render(self, title, top_name):
        lines = [
            f"//! Wire types of {title} {', '.join(self.versions)}: generated by",
            "//! `scripts/gen_wire_types.py` from the bundled schemas; do not edit by hand.",
            "//!",
            "//! Each struct is the union of a record's fields over every version; every field is",
            "//! optional, so each version (and Spark-rewritten records with fields missing) decodes.",
            "#![allow(clippy::doc_markdown)]",
            "",
            "use nightjar_core::{RawBytes, Scalar};" if self.uses("Scalar") else "use nightjar_core::RawBytes;",
            "",
        ]
        # Nested records first, top level last.
        names = [name for name in self.records if name != top_name] + [top_name]
        for name in names:
            record = self.records[name]
            lines.append("nightjar_core::avro_record! {")
            lines.append(f"    /// The `{name}` record.")
            lines.append(f"    pub struct {self.struct_name(name)} {{")
            for field_name in record["order"]:
                doc = record["docs"].get(field_name)
                if doc:
                    doc = doc.replace("*/", "* /")
                    lines.append(f"        /// {doc}")
                lines.append(f"        {field_name}: {record['fields'][field_name]},")
            lines.append("    }")
            lines.append("}")
            lines.append("")
        return "\n".join(lines)


def main():
    survey = sys.argv[1] if len(sys.argv) > 1 else ""
    if survey not in SURVEYS:
        sys.exit(f"usage: gen_wire_types.py {'|'.join(SURVEYS)}")
    config = SURVEYS[survey]
    if not config["schemas"]:
        sys.exit(f"no schemas found for {survey}")
    generator = Generator(config["rename"])
    # Oldest version first, so fields keep the order they first appeared in.
    def version_key(path):
        match = re.search(r"(\d+)[._](\d+)", str(path.relative_to(ROOT)))
        return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    for path in sorted(config["schemas"], key=version_key):
        schema, named = load_alert_schema(path)
        generator.versions.append(path.parent.name.lstrip("v"))
        generator.add_record(schema, named)
    top_name = short(json.loads(sorted(config["schemas"], key=version_key)[-1].read_text())["name"])
    config["out"].write_text(generator.render(config["title"], top_name))
    print(f"wrote {config['out'].relative_to(ROOT)}: {len(generator.records)} records")


if __name__ == "__main__":
    main()
