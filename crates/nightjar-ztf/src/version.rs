//! Which ZTF schema version wrote a packet: its `schemavsn` field, or, where the packet has none
//! (schema 1.8), the bundled version whose field sets match the writer schema's.

use std::sync::LazyLock;

use nightjar_avro::WriterSchema;

use crate::wire::ZtfAlert;

/// Field names of one bundled ZTF schema version, record by record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledSchema {
    /// The version as ZTF writes it in `schemavsn` (`"1.8"`, `"3.3"`, `"4.02"`).
    pub version: &'static str,
    /// Top-level fields of the `alert` record.
    pub alert: Vec<String>,
    /// Fields of `candidate`.
    pub candidate: Vec<String>,
    /// Fields of one `prv_candidates` entry.
    pub prv_candidate: Vec<String>,
    /// Fields of one `fp_hists` entry; empty before 4.01.
    pub fp_hist: Vec<String>,
}

impl BundledSchema {
    /// True when this version's `candidate` record has the field.
    pub fn candidate_has(&self, field: &str) -> bool {
        self.candidate.iter().any(|name| name == field)
    }
}

/// The schema files under `schemas/`, compiled in: (version, alert, candidate, prv_candidate, fp_hist).
macro_rules! bundled_sources {
    ($($version:literal => $folder:literal $(, fp_hist: $fp:literal)?;)*) => {
        [$((
            $version,
            include_str!(concat!("../schemas/", $folder, "/alert.avsc")),
            include_str!(concat!("../schemas/", $folder, "/candidate.avsc")),
            include_str!(concat!("../schemas/", $folder, "/prv_candidate.avsc")),
            bundled_sources!(@fp $folder $(, $fp)?),
        ),)*]
    };
    (@fp $folder:literal) => { "" };
    (@fp $folder:literal, $fp:literal) => { include_str!(concat!("../schemas/", $folder, "/", $fp)) };
}

const SOURCES: [(&str, &str, &str, &str, &str); 10] = bundled_sources! {
    "1.8" => "v1.8";
    "2.0" => "v2.0";
    "3.0" => "v3.0";
    "3.1" => "v3.1";
    "3.2" => "v3.2";
    "3.3" => "v3.3";
    "3.4" => "v3.4";
    "3.5" => "v3.5";
    "4.01" => "v4.01", fp_hist: "fp_hist.avsc";
    "4.02" => "v4.02", fp_hist: "fp_hist.avsc";
};

static BUNDLED: LazyLock<Vec<BundledSchema>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|&(version, alert, candidate, prv_candidate, fp_hist)| BundledSchema {
            version,
            alert: record_field_names(alert),
            candidate: record_field_names(candidate),
            prv_candidate: record_field_names(prv_candidate),
            fp_hist: record_field_names(fp_hist),
        })
        .collect()
});

/// Field names of the record a bundled `.avsc` file defines (none for an empty text).
fn record_field_names(avsc: &str) -> Vec<String> {
    if avsc.is_empty() {
        return Vec::new();
    }
    let schema: serde_json::Value = serde_json::from_str(avsc).expect("the bundled ZTF schemas are valid JSON");
    schema["fields"]
        .as_array()
        .expect("each bundled ZTF schema is a record")
        .iter()
        .filter_map(|field| field["name"].as_str().map(str::to_string))
        .collect()
}

/// The bundled ZTF schema versions, oldest first.
pub fn bundled_schemas() -> &'static [BundledSchema] {
    &BUNDLED
}

/// The bundled schema of a version, if nightjar ships it.
pub fn bundled_schema(version: &str) -> Option<&'static BundledSchema> {
    BUNDLED.iter().find(|schema| schema.version == version)
}

/// The schema version of a packet: its `schemavsn` when present and not blank, else inferred
/// from the writer schema's field sets with [`infer_schema_version`] (1.8 packets have no
/// `schemavsn`; ZTF added it in 2.0).
pub fn schema_version(raw: &ZtfAlert, schema: &WriterSchema) -> String {
    declared_version(raw)
        .unwrap_or_else(|| infer_schema_version(schema))
        .to_string()
}

/// The packet's own `schemavsn`, trimmed, when present and not blank.
pub fn declared_version(raw: &ZtfAlert) -> Option<&str> {
    raw.schemavsn
        .as_deref()
        .map(str::trim)
        .filter(|version| !version.is_empty())
}

/// The bundled version whose field sets are closest to the writer schema's.
///
/// The 2016 prototype packets (named by `alertId`, with no `objectId`) are told apart first:
/// `"1.1"` when their candidate has `ndethist`, `"pre1.1"` otherwise.
pub fn infer_schema_version(schema: &WriterSchema) -> &'static str {
    if schema.has_field("alertId") && !schema.has_field("objectId") {
        let has_ndethist = schema.nested("candidate").iter().any(|field| field == "ndethist");
        return if has_ndethist { "1.1" } else { "pre1.1" };
    }
    infer_from_fields(
        &schema.fields,
        schema.nested("candidate"),
        schema.nested("prv_candidates"),
        schema.nested("fp_hists"),
    )
}

/// The bundled version whose field names are closest to the given ones: the fewest names that
/// are in one but not the other, summed over the alert, `candidate`, `prv_candidates` entry and
/// `fp_hists` entry records. Ties go to the newer version, so 4.01 and 4.02, which have the
/// same field names, both come out as `"4.02"`.
pub fn infer_from_fields(
    alert: &[String],
    candidate: &[String],
    prv_candidate: &[String],
    fp_hist: &[String],
) -> &'static str {
    let ours = [sorted(alert), sorted(candidate), sorted(prv_candidate), sorted(fp_hist)];
    let mut best: Option<(usize, &'static str)> = None;
    for (bundled, theirs) in BUNDLED.iter().zip(BUNDLED_SORTED.iter()) {
        let distance: usize = ours
            .iter()
            .zip(theirs)
            .map(|(ours, theirs)| set_distance(ours, theirs))
            .sum();
        if best.is_none_or(|(best_distance, _)| distance <= best_distance) {
            best = Some((distance, bundled.version));
        }
    }
    best.map_or("unknown", |(_, version)| version)
}

/// Each bundled version's four name lists, sorted, for [`set_distance`].
static BUNDLED_SORTED: LazyLock<Vec<[Vec<&'static str>; 4]>> = LazyLock::new(|| {
    BUNDLED
        .iter()
        .map(|bundled| {
            [
                sorted(&bundled.alert),
                sorted(&bundled.candidate),
                sorted(&bundled.prv_candidate),
                sorted(&bundled.fp_hist),
            ]
        })
        .collect()
});

fn sorted(names: &[String]) -> Vec<&str> {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Size of the symmetric difference of two sorted, deduplicated name lists.
fn set_distance(ours: &[&str], theirs: &[&str]) -> usize {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < ours.len() && j < theirs.len() {
        match ours[i].cmp(theirs[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    ours.len() + theirs.len() - 2 * shared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(bundled: &BundledSchema) -> &'static str {
        infer_from_fields(
            &bundled.alert,
            &bundled.candidate,
            &bundled.prv_candidate,
            &bundled.fp_hist,
        )
    }

    #[test]
    fn every_bundled_version_is_recognised_from_its_own_fields() {
        let versions: Vec<&str> = bundled_schemas().iter().map(|schema| schema.version).collect();
        assert_eq!(
            versions,
            ["1.8", "2.0", "3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "4.01", "4.02"]
        );
        for bundled in bundled_schemas() {
            let expected = if bundled.version == "4.01" {
                "4.02"
            } else {
                bundled.version
            };
            assert_eq!(infer(bundled), expected, "fields of {}", bundled.version);
        }
    }

    #[test]
    fn version_1_8_is_recognised_by_its_small_field_sets() {
        let v1_8 = bundled_schema("1.8").unwrap();
        assert_eq!(
            (v1_8.alert.len(), v1_8.candidate.len(), v1_8.prv_candidate.len()),
            (7, 82, 51)
        );
        assert!(!v1_8.alert.iter().any(|field| field == "schemavsn"));
        // A writer that dropped the top-level candid (as Spark does) is still closest to 1.8.
        let alert: Vec<String> = v1_8.alert.iter().filter(|field| *field != "candid").cloned().collect();
        assert_eq!(
            infer_from_fields(&alert, &v1_8.candidate, &v1_8.prv_candidate, &[]),
            "1.8"
        );
    }

    #[test]
    fn a_near_match_picks_the_closest_version() {
        let v3_3 = bundled_schema("3.3").unwrap();
        let mut candidate = v3_3.candidate.clone();
        candidate.push("brokerScore".to_string());
        assert_eq!(
            infer_from_fields(&v3_3.alert, &candidate, &v3_3.prv_candidate, &[]),
            "3.3"
        );
        // 3.2 is 3.3 without drb and drbversion.
        let candidate: Vec<String> = v3_3
            .candidate
            .iter()
            .filter(|field| !field.starts_with("drb"))
            .cloned()
            .collect();
        assert_eq!(
            infer_from_fields(&v3_3.alert, &candidate, &v3_3.prv_candidate, &[]),
            "3.2"
        );
    }

    #[test]
    fn drb_exists_from_3_3_on() {
        for bundled in bundled_schemas() {
            let expected = !matches!(bundled.version, "1.8" | "2.0" | "3.0" | "3.1" | "3.2");
            assert_eq!(bundled.candidate_has("drb"), expected, "{}", bundled.version);
        }
    }
}
