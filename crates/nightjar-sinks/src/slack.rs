//! The Slack form of an alert: one short plain-text line (filter, object, position, brightness,
//! class) from whichever of the survey's or nightjar's field names the row carries.

use serde_json::Value;

/// Field names tried in order for each part of the line; a dotted name is looked up both as a
/// flat key (`"candidate.magpsf"`, as a filter's SELECT names it) and as a nested path.
const OBJECT_ID: &[&str] = &[
    "object_id",
    "objectId",
    "diaObjectId",
    "diaObject.diaObjectId",
    "diaSource.diaObjectId",
];
const RA: &[&str] = &["ra", "candidate.ra", "diaSource.ra"];
const DEC: &[&str] = &["dec", "candidate.dec", "diaSource.dec"];
const MAGNITUDE: &[&str] = &["magnitude", "candidate.magpsf", "magpsf"];
const FLUX: &[&str] = &["flux", "diaSource.psfFlux", "psfFlux"];
const BAND: &[&str] = &["band", "diaSource.band"];
const CLASS: &[&str] = &["class", "classification"];

/// Longest text posted, in characters.
const MAX_TEXT_CHARS: usize = 500;

/// `bright_risers (ztf): ZTF24aaaaaaa at RA 123.45678 Dec -12.34567, mag 18.12 (r), class SN candidate`
pub(crate) fn slack_text(filter: &str, survey: &str, row: &Value) -> String {
    let mut text = format!("{filter} ({survey}): ");
    text.push_str(&lookup_text(row, OBJECT_ID).unwrap_or_else(|| "alert".to_string()));
    if let (Some(ra), Some(dec)) = (lookup_number(row, RA), lookup_number(row, DEC)) {
        text.push_str(&format!(" at RA {ra:.5} Dec {dec:.5}"));
    }
    let band = lookup_text(row, BAND);
    let band_suffix = band.map(|band| format!(" ({band})")).unwrap_or_default();
    if let Some(magnitude) = lookup_number(row, MAGNITUDE) {
        text.push_str(&format!(", mag {magnitude:.2}{band_suffix}"));
    } else if let Some(flux) = lookup_number(row, FLUX) {
        text.push_str(&format!(", flux {flux:.1} nJy{band_suffix}"));
    }
    if let Some(class) = lookup_text(row, CLASS) {
        text.push_str(&format!(", class {class}"));
    }
    plain(&text)
}

fn lookup<'a>(row: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| {
        let flat = row.get(*name).filter(|value| !value.is_null());
        flat.or_else(|| {
            name.split('.')
                .try_fold(row, |value, part| value.get(part))
                .filter(|value| !value.is_null())
        })
    })
}

fn lookup_number(row: &Value, names: &[&str]) -> Option<f64> {
    lookup(row, names)
        .and_then(Value::as_f64)
        .filter(|number| number.is_finite())
}

fn lookup_text(row: &Value, names: &[&str]) -> Option<String> {
    match lookup(row, names)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// One line of plain text: control characters become spaces, and `&`, `<`, `>` are escaped as
/// Slack asks, so nothing from an alert turns into a link, a mention or markup.
fn plain(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for character in text.chars().take(MAX_TEXT_CHARS) {
        match character {
            '&' => line.push_str("&amp;"),
            '<' => line.push_str("&lt;"),
            '>' => line.push_str("&gt;"),
            c if c.is_control() => line.push(' '),
            c => line.push(c),
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::slack_text;

    fn check(row: serde_json::Value, expected: &str) {
        assert_eq!(slack_text("bright_risers", "ztf", &row), expected);
    }

    #[test]
    fn slack_lines() {
        check(
            json!({"objectId": "ZTF24aaaaaaa", "candidate": {"ra": 123.456789, "dec": -12.3456789, "magpsf": 18.123}, "band": "r", "class": "SN candidate"}),
            "bright_risers (ztf): ZTF24aaaaaaa at RA 123.45679 Dec -12.34568, mag 18.12 (r), class SN candidate",
        );
        check(
            json!({"object_id": 1234, "ra": 10.0, "dec": 20.0, "flux": 5123.46, "band": "g"}),
            "bright_risers (ztf): 1234 at RA 10.00000 Dec 20.00000, flux 5123.5 nJy (g)",
        );
        check(
            json!({"candidate.magpsf": 17.5, "objectId": "ZTF1"}),
            "bright_risers (ztf): ZTF1, mag 17.50",
        );
        check(json!({"source_id": 1}), "bright_risers (ztf): alert");
        check(
            json!({"objectId": "<https://example.org|click> & @here\nnext"}),
            "bright_risers (ztf): &lt;https://example.org|click&gt; &amp; @here next",
        );
    }
}
