//! `nightjar filter`: the project's own filters pass their fixtures on real alerts, pending
//! filters are valid but no real alert passes them yet, filters/README.md lists them all, and
//! bad or broad filters are refused.

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use common::{nightjar, repo, stderr, stdout};
use std::path::PathBuf;

fn filter_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .expect("read the filters directory")
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "toml") && !path.to_string_lossy().ends_with(".fixture.toml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_builtin_filter_passes_its_fixture_on_real_alerts() {
    let files = filter_files("filters");
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let fixture = file.with_file_name(format!("{}.fixture.toml", file.file_stem().unwrap().to_string_lossy()));
        assert!(fixture.is_file(), "{} has no fixture", file.display());
        let output = nightjar(&["filter", "test", file.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}: {}\n{}",
            file.display(),
            stdout(&output),
            stderr(&output)
        );
        assert!(stdout(&output).contains("as expected"), "{}", stdout(&output));
    }
}

#[test]
fn pending_filters_are_valid_and_wait_for_a_real_alert_that_passes() {
    // Their columns exist (early_snia, anomaly, crossmatch), but no real alert in tests/data
    // passes them yet, and a filter's fixture needs one that does.
    let files = filter_files("filters/pending");
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        let output = nightjar(&["filter", "check", file.to_str().unwrap()]);
        assert!(output.status.success(), "{}: {}", file.display(), stderr(&output));
        assert!(
            stdout(&output).contains("pass rate: 0 of "),
            "{}: {}",
            file.display(),
            stdout(&output)
        );
    }
}

#[test]
fn readme_tables_list_every_builtin_and_pending_filter() {
    let readme = std::fs::read_to_string(repo().join("filters/README.md")).expect("read filters/README.md");
    let section = |heading: &str, next: &str| -> String {
        let start = readme
            .find(heading)
            .unwrap_or_else(|| panic!("no {heading:?} in the README"));
        let end = readme[start..].find(next).map_or(readme.len(), |offset| start + offset);
        readme[start..end].to_string()
    };
    let builtin = section("## Built-in filters", "Written and valid, waiting");
    let pending = section("Written and valid, waiting", "Not provided");
    for (dir, table) in [("filters", &builtin), ("filters/pending", &pending)] {
        for file in filter_files(dir) {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                table.contains(&format!("| `{name}` |")),
                "{} is not in the README's table for {dir}",
                file.display()
            );
        }
    }
}

fn write_filter(dir: &std::path::Path, sql: &str) -> PathBuf {
    let path = dir.join("probe.toml");
    std::fs::write(
        &path,
        format!("name = \"probe\"\ndescription = \"a probe\"\nsql = {sql:?}\n"),
    )
    .expect("write the filter file");
    path
}

#[test]
fn check_refuses_a_broad_filter_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_filter(dir.path(), "ra >= 0");
    let output = nightjar(&["filter", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("more than the 5.0% allowed"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("(100.0%)"), "{}", stdout(&output));
    let output = nightjar(&["filter", "check", "--allow-broad", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let narrow = write_filter(dir.path(), "candidate.ssdistnr >= 0 AND candidate.ssdistnr < 5");
    let output = nightjar(&["filter", "check", narrow.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("reads candidate.ssdistnr"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn check_points_at_a_misspelt_column_and_suggests_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_filter(dir.path(), "candidate.drb > 0.5 AND\n  candidate.magpfs < 18");
    let output = nightjar(&["filter", "check", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown column candidate.magpfs at line 2, column 3 (did you mean candidate.magpsf"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn test_shows_the_values_of_the_fields_read() {
    let file = repo().join("filters/known_solar_system_ztf.toml");
    let output = nightjar(&[
        "filter",
        "test",
        file.to_str().unwrap(),
        "--alerts",
        "tests/data/ztf/alerts/kowalski_20231012_v4.01",
        "--only-passing",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("PASS\tZTF23abjjnhq\t2475433850415015017\tcandidate.ssdistnr=0.0"),
        "{out}"
    );
    assert!(out.contains("candidate.ssnamenr=113410"), "{out}");
    assert!(out.contains("1 of 6 alerts pass"), "{out}");
}

#[test]
fn check_takes_the_whole_filter_directory() {
    let output = nightjar(&["filter", "check", "filters"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    for name in [
        "known_solar_system_ztf",
        "known_solar_system_rubin",
        "rate_based_fast_transients",
        "new_transients_rubin",
        "fast_transients_rubin",
        "fainter_than_template_rubin",
    ] {
        assert!(out.contains(&format!("filter {name}: valid")), "{out}");
    }
}
