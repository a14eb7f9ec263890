//! The `crossmatch` module on the real alerts of `tests/data`, checked against astropy
//! (`scripts/crossmatch_reference.py`, fixture `tests/fixtures/modules/crossmatch.json`), and
//! the engine on generated catalogues against a brute-force search.

mod common;

use std::collections::BTreeMap;

use nightjar_modules::crossmatch::{
    Catalogue, CatalogueConfig, CatalogueFormat, Coordinates, Crossmatch, CrossmatchConfig,
};
use nightjar_modules::{ModuleRunner, ModulesConfig, ScienceModule, Value};

#[test]
fn real_alerts_match_astropy_for_every_default_catalogue() {
    let alerts = common::all_alerts();
    let module = Crossmatch::build(&CrossmatchConfig::default()).expect("load the bundled catalogues");
    let mut runner = ModuleRunner::new(vec![Box::new(module)]).expect("runner");
    let outputs = runner.run(&alerts);
    assert!(outputs.failures().is_empty(), "{:?}", outputs.failures());

    let fixture = common::fixture("crossmatch.json");
    let expected = fixture["alerts"].as_array().expect("alerts");
    let mut by_source: BTreeMap<i64, &serde_json::Value> = BTreeMap::new();
    for entry in expected {
        by_source.insert(entry["source_id"].as_i64().expect("source id"), entry);
    }
    let mut checked = 0;
    let mut matched: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, alert) in alerts.iter().enumerate() {
        let Some(reference) = by_source.get(&alert.source_id()) else {
            continue;
        };
        checked += 1;
        for name in ["hipparcos", "gcvs", "spicy", "x3hsp"] {
            let id = outputs.get(index, &format!("xm_{name}.id")).and_then(Value::as_str);
            let distance = outputs
                .get(index, &format!("xm_{name}.distance_arcsec"))
                .and_then(Value::as_f64);
            match reference[name].as_object() {
                None => {
                    assert_eq!(id, None, "{name} of {}", alert.object_id);
                    assert_eq!(distance, None);
                }
                Some(found) => {
                    *matched.entry(name).or_default() += 1;
                    assert_eq!(id, found["id"].as_str(), "{name} of {}", alert.object_id);
                    let want = found["distance_arcsec"].as_f64().expect("distance");
                    let got = distance.expect("a distance with the id");
                    assert!(
                        (got - want).abs() < 1e-6,
                        "{name} of {}: {got} vs astropy {want}",
                        alert.object_id
                    );
                }
            }
        }
    }
    assert_eq!(checked, alerts.len(), "every alert is in the fixture");
    // The Hipparcos star: ZTF18aaacpxm lies 597 arcsec from HIP 44892 (Hp 6.09).
    let star = alerts
        .iter()
        .position(|alert| alert.object_id == "ZTF18aaacpxm")
        .expect("ZTF18aaacpxm");
    assert_eq!(
        outputs.get(star, "xm_hipparcos.id").and_then(Value::as_str),
        Some("44892")
    );
    let hpmag = outputs
        .get(star, "xm_hipparcos.hpmag")
        .and_then(Value::as_f64)
        .expect("hpmag");
    assert!((hpmag - 6.0909).abs() < 1e-9, "hpmag {hpmag}");
    assert_eq!(matched.get("hipparcos"), Some(&1), "{matched:?}");
    assert!(matched.get("gcvs").is_some_and(|&n| n >= 5), "{matched:?}");
    // GCVS types are reported, trimmed.
    let gcvs = (0..alerts.len())
        .find_map(|index| outputs.get(index, "xm_gcvs.type").and_then(Value::as_str))
        .expect("a GCVS type");
    assert!(!gcvs.is_empty() && gcvs.trim() == gcvs, "{gcvs:?}");
}

#[test]
fn module_declares_its_columns_and_default_config_round_trips() {
    let module = Crossmatch::build(&CrossmatchConfig::default()).expect("build");
    let names: Vec<&str> = module.outputs().iter().map(|column| column.name).collect();
    assert_eq!(
        names,
        [
            "xm_hipparcos.id",
            "xm_hipparcos.distance_arcsec",
            "xm_hipparcos.b_v",
            "xm_hipparcos.hpmag",
            "xm_gcvs.id",
            "xm_gcvs.distance_arcsec",
            "xm_gcvs.type",
            "xm_spicy.id",
            "xm_spicy.distance_arcsec",
            "xm_spicy.class",
            "xm_x3hsp.id",
            "xm_x3hsp.distance_arcsec",
            "xm_x3hsp.fom",
        ]
    );
    let sizes: Vec<(&str, usize)> = module.catalogues().iter().map(|c| (c.name(), c.len())).collect();
    assert_eq!(
        sizes,
        [
            ("hipparcos", 13_940),
            ("gcvs", 59_099),
            ("spicy", 117_446),
            ("x3hsp", 2_013)
        ]
    );
    assert!(
        module
            .catalogues()
            .iter()
            .all(|catalogue| catalogue.skipped_rows() == 0)
    );

    let text = serde_json::to_string(&ModulesConfig::default()).expect("serialise");
    let parsed: ModulesConfig = serde_json::from_str(&text).expect("parse");
    assert_eq!(parsed, ModulesConfig::default());
    // `nightjar config` prints the configuration as TOML: the catalogue list must survive.
    let text = toml::to_string(&ModulesConfig::default()).expect("TOML");
    assert!(text.contains("[[crossmatch.catalogues]]"), "{text}");
    let parsed: ModulesConfig = toml::from_str(&text).expect("parse TOML");
    assert_eq!(parsed, ModulesConfig::default());
    let user: ModulesConfig = toml::from_str(
        "[crossmatch]\n[[crossmatch.catalogues]]\nname = \"mine\"\npath = \"/data/mine.csv\"\n\
         ra_column = \"ra\"\ndec_column = \"dec\"\nradius_arcsec = 2.0\ncolumns = { kind = \"type\" }\n",
    )
    .expect("a user catalogue in TOML");
    assert_eq!(user.crossmatch.catalogues.len(), 1, "a list replaces the defaults");
    assert_eq!(user.crossmatch.catalogues[0].columns["kind"], "type");
    assert!(user.crossmatch.enabled);
}

fn catalogue_config(name: &str) -> CatalogueConfig {
    CatalogueConfig {
        name: name.to_owned(),
        path: None,
        bundled: Some("hipparcos2_hp_lt7.csv".to_owned()),
        format: None,
        ra_column: "ra_deg".to_owned(),
        dec_column: "dec_deg".to_owned(),
        coordinates: Coordinates::Degrees,
        id_column: Some("hip".to_owned()),
        columns: BTreeMap::new(),
        radius_arcsec: 5.0,
    }
}

#[test]
fn config_errors_name_the_field_and_the_reason() {
    let check = |catalogue: CatalogueConfig, field: &str, reason: &str| {
        let config = CrossmatchConfig {
            enabled: true,
            catalogues: vec![catalogue],
        };
        let error = Crossmatch::build(&config).expect_err("invalid config").to_string();
        assert!(error.contains(field) && error.contains(reason), "{error}");
    };
    check(catalogue_config("Bad Name"), "catalogues[0].name", "lowercase");
    check(
        CatalogueConfig {
            radius_arcsec: 0.0,
            ..catalogue_config("hip")
        },
        "radius_arcsec",
        "not within",
    );
    check(
        CatalogueConfig {
            bundled: Some("nope.csv".to_owned()),
            ..catalogue_config("hip")
        },
        "bundled",
        "not a bundled catalogue",
    );
    check(
        CatalogueConfig {
            path: Some("/nonexistent/catalogue.csv".into()),
            ..catalogue_config("hip")
        },
        "path",
        "exactly one",
    );
    check(
        CatalogueConfig {
            bundled: None,
            path: Some("/nonexistent/catalogue.csv".into()),
            ..catalogue_config("hip")
        },
        "catalogues.hip",
        "cannot read the file",
    );
    check(
        CatalogueConfig {
            ra_column: "RA".to_owned(),
            ..catalogue_config("hip")
        },
        "catalogues.hip",
        "no column \"RA\"",
    );
    let twice = CrossmatchConfig {
        enabled: true,
        catalogues: vec![catalogue_config("hip"), catalogue_config("hip")],
    };
    assert!(
        twice
            .validate()
            .expect_err("duplicate")
            .to_string()
            .contains("used twice")
    );
    let unknown = serde_json::from_str::<ModulesConfig>(r#"{"crossmatch": {"radius": 2}}"#);
    assert!(unknown.is_err());
}

/// A small deterministic generator (64-bit LCG) for positions.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn separation_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (ra1, dec1, ra2, dec2) = (ra1.to_radians(), dec1.to_radians(), ra2.to_radians(), dec2.to_radians());
    let a = ((dec2 - dec1) / 2.0).sin().powi(2) + dec1.cos() * dec2.cos() * ((ra2 - ra1) / 2.0).sin().powi(2);
    2.0 * a.sqrt().asin().to_degrees() * 3600.0
}

#[test]
fn user_csv_catalogue_matches_a_brute_force_search() {
    // A dense field (20,000 sources in a 2 x 2 degree box around the pole and around ra = 0,
    // where HEALPix cells are awkward), written as a user CSV with sexagesimal positions.
    let dir = std::env::temp_dir().join(format!("nightjar-crossmatch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("field.csv");
    let mut rng = Lcg(42);
    let mut sources = Vec::new();
    let mut text = String::from("name,ra,dec,kind\n");
    for i in 0..20_000 {
        let (ra, dec) = if i % 2 == 0 {
            ((360.0 + 2.0 * rng.next() - 1.0) % 360.0, 2.0 * rng.next() - 1.0)
        } else {
            (360.0 * rng.next(), 88.5 + 1.5 * rng.next())
        };
        // Sexagesimal with enough digits to keep 1e-4 arcsec.
        let hours = ra / 15.0;
        let (h, m) = (hours.trunc(), (hours.fract() * 60.0).trunc());
        let s: f64 = format!("{:.6}", ((hours * 60.0).fract() * 60.0).max(0.0))
            .parse()
            .expect("number");
        let sign = if dec < 0.0 { '-' } else { '+' };
        let d_abs = dec.abs();
        let (d, dm) = (d_abs.trunc(), (d_abs.fract() * 60.0).trunc());
        let ds: f64 = format!("{:.5}", ((d_abs * 60.0).fract() * 60.0).max(0.0))
            .parse()
            .expect("number");
        let ra_text = format!("{h:02} {m:02} {s:09.6}");
        let dec_text = format!("{sign}{d:02} {dm:02} {ds:08.5}");
        let ra_back = 15.0 * (h + m / 60.0 + s / 3600.0);
        let dec_back = if dec < 0.0 { -1.0 } else { 1.0 } * (d + dm / 60.0 + ds / 3600.0);
        sources.push((ra_back, dec_back));
        text.push_str(&format!("src{i},\"{ra_text}\",\"{dec_text}\",k{}\n", i % 7));
    }
    std::fs::write(&path, text).expect("write catalogue");
    let config = CatalogueConfig {
        name: "field".to_owned(),
        path: Some(path.clone()),
        bundled: None,
        format: Some(CatalogueFormat::Csv),
        ra_column: "ra".to_owned(),
        dec_column: "dec".to_owned(),
        coordinates: Coordinates::Sexagesimal,
        id_column: Some("name".to_owned()),
        columns: BTreeMap::from([("kind".to_owned(), "kind".to_owned())]),
        radius_arcsec: 30.0,
    };
    let catalogue = Catalogue::load(&config).expect("load");
    assert_eq!(catalogue.len(), sources.len());
    let mut n_found = 0;
    for _ in 0..2_000 {
        let (ra, dec) = if rng.next() < 0.5 {
            ((360.0 + 2.0 * rng.next() - 1.0) % 360.0, 2.0 * rng.next() - 1.0)
        } else {
            (360.0 * rng.next(), 88.5 + 1.5 * rng.next())
        };
        let brute = sources
            .iter()
            .enumerate()
            .map(|(row, &(sra, sdec))| (separation_arcsec(ra, dec, sra, sdec), row))
            .filter(|&(distance, _)| distance <= 30.0)
            .min_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        let found = catalogue.nearest(ra, dec);
        match (brute, found) {
            (None, None) => {}
            (Some((distance, row)), Some(found)) => {
                n_found += 1;
                assert_eq!(catalogue.id(found.row), format!("src{row}"));
                assert!((found.distance_arcsec - distance).abs() < 1e-6);
                let kind = catalogue.value(found.row, 0);
                assert_eq!(
                    kind,
                    Some(nightjar_modules::crossmatch::ColumnValue::Text(&format!(
                        "k{}",
                        row % 7
                    )))
                );
            }
            (brute, found) => panic!("at ({ra}, {dec}): brute force {brute:?}, index {found:?}"),
        }
    }
    assert!(n_found > 200, "only {n_found} matches: the test would prove little");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn parquet_catalogue_with_float32_positions_finds_its_own_sources() {
    // The bundled ZTF DR5 quadrant: float32 objra/objdec, int64 ids, list columns not read.
    let config = CatalogueConfig {
        name: "ztf_dr5".to_owned(),
        path: None,
        bundled: Some("ztf_000250_zg_c01_q1_dr5.parquet".to_owned()),
        format: None,
        ra_column: "objra".to_owned(),
        dec_column: "objdec".to_owned(),
        coordinates: Coordinates::Degrees,
        id_column: Some("objectid".to_owned()),
        columns: BTreeMap::from([("nepochs".to_owned(), "nepochs".to_owned())]),
        radius_arcsec: 1.0,
    };
    let catalogue = Catalogue::load(&config).expect("load");
    assert_eq!(catalogue.len(), 5_449);
    let module = Crossmatch::from_catalogues(vec![catalogue]);
    let catalogue = &module.catalogues()[0];
    // Each source looked up at its own position is found, at distance 0 (or a twin at the
    // same position listed earlier).
    let mut n_numeric = 0;
    for row in (0..catalogue.len()).step_by(50) {
        let (ra, dec) = catalogue.position(row);
        let found = catalogue.nearest(ra, dec).expect("a source at its own position");
        assert!(found.distance_arcsec < 1e-9, "row {row}: {found:?}");
        assert_eq!(catalogue.position(found.row), (ra, dec));
        if let Some(nightjar_modules::crossmatch::ColumnValue::Float(nepochs)) = catalogue.value(row, 0) {
            assert!(nepochs >= 1.0);
            n_numeric += 1;
        }
        assert!(catalogue.id(row).parse::<i64>().is_ok(), "{}", catalogue.id(row));
    }
    assert!(n_numeric > 100);
}
