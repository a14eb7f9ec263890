//! Finds, inside one encoded alert datum, every value a copy rewrites: ids, positions and times.
//!
//! The datum is walked once against its schema (when the template is built); the result is a
//! list of [`Site`]s, byte ranges with what goes there. Making a copy then only writes new
//! values at those sites and copies the bytes in between, cutouts included, unchanged.
//!
//! Which fields are rewritten is decided by the top-level field a record hangs under (ZTF
//! `candidate`, `prv_candidates`, `fp_hists`; Rubin `diaSource`, `prvDiaSources`,
//! `prvDiaForcedSources`, `prvDiaNondetectionLimits`, `diaObject`, `ssSource`) and the field's
//! name; see [`Context`] and the name lists below.

use std::collections::HashMap;

use serde_avro_fast::schema::{LogicalType, RegularType, SchemaKey, SchemaMut};

use crate::binary::{read_array, read_length_delimited, read_long};

/// Julian dates (ZTF), in days.
const JD_FIELDS: &[&str] = &["jd", "jdstarthist", "jdendhist", "jdstartref", "jdendref"];

/// Modified Julian dates (Rubin), in days.
const MJD_FIELDS: &[&str] = &[
    "midpointMjdTai",
    "timeProcessedMjdTai",
    "timeWithdrawnMjdTai",
    "radecMjdTai",
    "validityStartMjdTai",
    "validityEndMjdTai",
    "firstDiaSourceMjdTai",
    "lastDiaSourceMjdTai",
];

/// Timestamps (Rubin 8.0 `long` with logical type `timestamp-micros`).
const TIMESTAMP_FIELDS: &[&str] = &["time_processed", "validityStart", "validityEnd"];

/// Pairs of fields that hold one sky position (degrees): each pair is moved as one point.
const POSITION_PAIRS: &[(&str, &str)] = &[
    ("ra", "dec"),
    ("ranr", "decnr"),
    ("psfRa", "psfDec"),
    ("trailRa", "trailDec"),
    ("dipoleRa", "dipoleDec"),
    ("ephRa", "ephDec"),
];

/// Deepest nesting of records, arrays and unions accepted (alert schemas nest 3 deep).
const MAX_DEPTH: usize = 32;

/// Microseconds and milliseconds per day, for timestamp fields.
const MICROS_PER_DAY: i64 = 86_400_000_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// What a record is, from the top-level field it hangs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// The alert record itself.
    Top,
    /// The detection that triggered the alert (`candidate`, `diaSource`).
    MainSource,
    /// Earlier detections (`prv_candidates`, `prvDiaSources`).
    HistorySource,
    /// Forced photometry (`fp_hists`, `prvDiaForcedSources`).
    ForcedSource,
    /// Upper limits (`prvDiaNondetectionLimits`).
    Limit,
    /// The object (`diaObject`).
    Object,
    /// The solar-system association (`ssSource`).
    SolarSystemSource,
    /// Anything else (cutouts, `ssObject`, `MPCORB`, broker columns): kept as it is.
    Opaque,
}

impl Context {
    fn of_top_level_field(name: &str) -> Context {
        match name {
            "candidate" | "diaSource" => Context::MainSource,
            "prv_candidates" | "prvDiaSources" => Context::HistorySource,
            "fp_hists" | "prvDiaForcedSources" => Context::ForcedSource,
            "prvDiaNondetectionLimits" => Context::Limit,
            "diaObject" => Context::Object,
            "ssSource" => Context::SolarSystemSource,
            _ => Context::Opaque,
        }
    }

    fn moves_positions(self) -> bool {
        matches!(
            self,
            Context::MainSource
                | Context::HistorySource
                | Context::ForcedSource
                | Context::Object
                | Context::SolarSystemSource
        )
    }

    fn shifts_times(self) -> bool {
        matches!(
            self,
            Context::MainSource | Context::HistorySource | Context::ForcedSource | Context::Limit | Context::Object
        )
    }

    /// The id role of a field in this context, if it is an id the copy renews.
    fn id_role(self, name: &str) -> Option<IdRole> {
        match (self, name) {
            (Context::Top, "candid" | "alertId" | "diaSourceId") => Some(IdRole::Alert),
            (Context::MainSource, "candid" | "diaSourceId") => Some(IdRole::Alert),
            (Context::HistorySource, "candid" | "diaSourceId") => Some(IdRole::History),
            (Context::ForcedSource, "diaForcedSourceId") => Some(IdRole::History),
            (Context::SolarSystemSource, "diaSourceId") => Some(IdRole::Alert),
            (Context::MainSource | Context::HistorySource | Context::ForcedSource | Context::Object, "diaObjectId") => {
                Some(IdRole::Object)
            }
            // A solar-system source has no diaObject: its ssObjectId is its object, renewed
            // like a diaObjectId so copies stay distinct objects.
            (Context::MainSource | Context::HistorySource | Context::SolarSystemSource, "ssObjectId") => {
                Some(IdRole::Object)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdRole {
    Alert,
    History,
    Object,
}

/// Which coordinate of a point a site holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Ra,
    Dec,
}

/// Width of a floating-point field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    F32,
    F64,
}

/// What a copy writes at a site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SiteKind {
    /// The copy's alert id (`long`): ZTF `candid`, Rubin `diaSourceId` / `alertId`.
    AlertId,
    /// The copy's `slot`-th history id (`long`): a `prv_candidates` `candid`, a
    /// `prvDiaSources` `diaSourceId`, a `diaForcedSourceId`. Slots start at 1.
    HistoryId { slot: u32 },
    /// The copy's numeric object id (`long`): Rubin `diaObjectId`.
    ObjectId,
    /// The copy's object name (`string`): ZTF `objectId`.
    ObjectName,
    /// A time in days (JD or MJD), shifted by the copy's time offset.
    Days { value: f64, width: Width },
    /// A timestamp (`long`) in `units_per_day` units since the Unix epoch, shifted likewise.
    Timestamp { value: i64, units_per_day: i64 },
    /// One coordinate of a point, rotated with the rest of the alert.
    Coordinate { point: u32, axis: Axis, width: Width },
}

/// A byte range of the datum and what a copy writes there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Site {
    pub start: usize,
    pub end: usize,
    pub kind: SiteKind,
}

/// A sky position of the template (degrees) that copies move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub ra: f64,
    pub dec: f64,
}

/// Everything a copy rewrites in one datum.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    /// Sorted by `start`, not overlapping.
    pub sites: Vec<Site>,
    pub points: Vec<Point>,
    /// Bytes of the datum covered by sites (what a copy does not copy from the template).
    pub replaced_len: usize,
    /// Shortest and longest encoding (bytes) of the ids a copy renews; (0, 0) when none.
    pub id_lengths: (usize, usize),
    /// Number of history ids (the highest slot).
    pub n_history_ids: u32,
    /// Position of the triggering detection (`candidate` / `diaSource` `ra`, `dec`).
    pub center: Option<Point>,
    /// Time of the triggering detection as MJD.
    pub alert_mjd: Option<f64>,
    /// The template's own alert id, where it has one.
    pub alert_id: Option<i64>,
    /// The template's own object id: ZTF `objectId` or Rubin `diaObjectId` as text.
    pub object_id: Option<String>,
}

/// Offset between JD and MJD.
pub(crate) const MJD_OFFSET: f64 = 2_400_000.5;

/// Walks `datum` against `schema` and collects the sites. Fails when the datum does not match
/// the schema or has bytes left over.
pub(crate) fn find_sites(schema: &SchemaMut, datum: &[u8]) -> Result<Layout, String> {
    let mut walker = Walker {
        schema,
        datum,
        layout: Layout::default(),
        point_index: HashMap::new(),
    };
    let mut position = 0;
    walker.value(SchemaKey::root(), &mut position, Context::Top, None, 0)?;
    if position != datum.len() {
        return Err(format!("{} bytes left over after the record", datum.len() - position));
    }
    let mut layout = walker.layout;
    layout.sites.sort_by_key(|site| site.start);
    if layout.sites.windows(2).any(|pair| pair[0].end > pair[1].start) {
        return Err("overlapping fields to rewrite (a bug in the layout rules)".to_string());
    }
    layout.replaced_len = layout.sites.iter().map(|site| site.end - site.start).sum();
    let id_lengths = layout
        .sites
        .iter()
        .filter(|site| {
            matches!(
                site.kind,
                SiteKind::AlertId | SiteKind::HistoryId { .. } | SiteKind::ObjectId
            )
        })
        .map(|site| site.end - site.start);
    layout.id_lengths = (id_lengths.clone().min().unwrap_or(0), id_lengths.max().unwrap_or(0));
    Ok(layout)
}

struct Walker<'a> {
    schema: &'a SchemaMut,
    datum: &'a [u8],
    layout: Layout,
    /// Index of each distinct position in `layout.points`, by the bits of (ra, dec): forced
    /// photometry repeats the object's position, and each distinct one is rotated once.
    point_index: HashMap<(u64, u64), u32>,
}

/// A position field seen in the record being walked: where it is and its value.
#[derive(Debug, Clone, Copy)]
struct Seen {
    start: usize,
    end: usize,
    value: f64,
    width: Width,
}

impl Walker<'_> {
    /// Walks one value. `field` is the name of the record field it belongs to, for leaves.
    fn value(
        &mut self,
        key: SchemaKey,
        position: &mut usize,
        context: Context,
        field: Option<&str>,
        depth: usize,
    ) -> Result<Option<Seen>, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH}"));
        }
        let node = self
            .schema
            .get(key)
            .ok_or_else(|| format!("invalid schema key {key:?}"))?;
        let start = *position;
        match &node.type_ {
            RegularType::Null => {}
            RegularType::Boolean => {
                read_array::<1>(self.datum, position)?;
            }
            RegularType::Int => {
                read_long(self.datum, position)?;
            }
            RegularType::Long => {
                let value = read_long(self.datum, position)?;
                if let Some(name) = field {
                    self.long_field(context, name, value, start, *position, node.logical_type.as_ref());
                }
            }
            RegularType::Float => {
                let value = f64::from(f32::from_le_bytes(read_array::<4>(self.datum, position)?));
                if let Some(name) = field {
                    return Ok(self.float_field(context, name, value, Width::F32, start, *position));
                }
            }
            RegularType::Double => {
                let value = f64::from_le_bytes(read_array::<8>(self.datum, position)?);
                if let Some(name) = field {
                    return Ok(self.float_field(context, name, value, Width::F64, start, *position));
                }
            }
            RegularType::Bytes => {
                read_length_delimited(self.datum, position)?;
            }
            RegularType::String => {
                let text = read_length_delimited(self.datum, position)?;
                if context == Context::Top && field == Some("objectId") {
                    self.layout.object_id = Some(String::from_utf8_lossy(text).into_owned());
                    self.push(start, *position, SiteKind::ObjectName);
                }
            }
            RegularType::Enum(_) => {
                read_long(self.datum, position)?;
            }
            RegularType::Fixed(fixed) => {
                let end = position
                    .checked_add(fixed.size)
                    .filter(|end| *end <= self.datum.len())
                    .ok_or_else(|| format!("truncated fixed at byte {start}"))?;
                *position = end;
            }
            RegularType::Union(union) => {
                let branch = read_long(self.datum, position)?;
                let variant = usize::try_from(branch)
                    .ok()
                    .and_then(|index| union.variants.get(index))
                    .ok_or_else(|| format!("invalid union branch {branch} at byte {start}"))?;
                return self.value(*variant, position, context, field, depth + 1);
            }
            RegularType::Array(array) => {
                let items = array.items;
                self.blocks(position, |walker, position| {
                    walker.value(items, position, context, None, depth + 1).map(drop)
                })?;
            }
            RegularType::Map(map) => {
                let values = map.values;
                self.blocks(position, |walker, position| {
                    read_length_delimited(walker.datum, position)?;
                    walker
                        .value(values, position, Context::Opaque, None, depth + 1)
                        .map(drop)
                })?;
            }
            RegularType::Record(record) => {
                let mut seen: [[Option<Seen>; 2]; POSITION_PAIRS.len()] = [[None; 2]; POSITION_PAIRS.len()];
                for record_field in &record.fields {
                    let name = record_field.name.as_str();
                    let field_context = match context {
                        Context::Top if self.is_record_or_array(record_field.type_) => {
                            Context::of_top_level_field(name)
                        }
                        Context::Top => Context::Top,
                        // Records nested below a survey record (none in today's schemas) are kept.
                        _ if self.is_record(record_field.type_) => Context::Opaque,
                        _ => context,
                    };
                    let value = self
                        .value(record_field.type_, position, field_context, Some(name), depth + 1)
                        .map_err(|error| format!("{name}: {error}"))?;
                    if let Some(value) = value {
                        for (pair_index, (ra_name, dec_name)) in POSITION_PAIRS.iter().enumerate() {
                            if name == *ra_name {
                                seen[pair_index][0] = Some(value);
                            } else if name == *dec_name {
                                seen[pair_index][1] = Some(value);
                            }
                        }
                    }
                }
                if context.moves_positions() {
                    for (pair_index, pair) in seen.iter().enumerate() {
                        if let [Some(ra), Some(dec)] = pair {
                            self.push_point(context, pair_index, *ra, *dec);
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Walks the blocks of an array or map.
    fn blocks(
        &mut self,
        position: &mut usize,
        mut item: impl FnMut(&mut Self, &mut usize) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut index = 0usize;
        loop {
            let count = read_long(self.datum, position)?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                // A negative count is followed by the block's size in bytes.
                read_long(self.datum, position)?;
            }
            for _ in 0..count.unsigned_abs() {
                item(self, position).map_err(|error| format!("[{index}]: {error}"))?;
                index += 1;
            }
        }
    }

    fn is_record(&self, key: SchemaKey) -> bool {
        match self.schema.get(key).map(|node| &node.type_) {
            Some(RegularType::Record(_)) => true,
            Some(RegularType::Union(union)) => union.variants.iter().any(|variant| self.is_record(*variant)),
            _ => false,
        }
    }

    fn is_record_or_array(&self, key: SchemaKey) -> bool {
        match self.schema.get(key).map(|node| &node.type_) {
            Some(RegularType::Record(_) | RegularType::Array(_)) => true,
            Some(RegularType::Union(union)) => union.variants.iter().any(|variant| self.is_record_or_array(*variant)),
            _ => false,
        }
    }

    fn push(&mut self, start: usize, end: usize, kind: SiteKind) {
        self.layout.sites.push(Site { start, end, kind });
    }

    fn long_field(
        &mut self,
        context: Context,
        name: &str,
        value: i64,
        start: usize,
        end: usize,
        logical_type: Option<&LogicalType>,
    ) {
        match context.id_role(name) {
            Some(IdRole::Alert) => {
                if matches!(context, Context::Top | Context::MainSource) {
                    self.layout.alert_id.get_or_insert(value);
                }
                self.push(start, end, SiteKind::AlertId);
            }
            Some(IdRole::History) => {
                self.layout.n_history_ids += 1;
                let slot = self.layout.n_history_ids;
                self.push(start, end, SiteKind::HistoryId { slot });
            }
            // 0 stands for "no object" in some Rubin versions: it stays 0.
            Some(IdRole::Object) if value != 0 => {
                if self.layout.object_id.is_none() {
                    // The core model names a solar-system object `ss:<ssObjectId>`.
                    self.layout.object_id = Some(if name == "ssObjectId" {
                        format!("ss:{value}")
                    } else {
                        value.to_string()
                    });
                }
                self.push(start, end, SiteKind::ObjectId);
            }
            Some(IdRole::Object) => {}
            None if context.shifts_times() && TIMESTAMP_FIELDS.contains(&name) => {
                let units_per_day = match logical_type {
                    Some(LogicalType::TimestampMillis) => MILLIS_PER_DAY,
                    _ => MICROS_PER_DAY,
                };
                self.push(start, end, SiteKind::Timestamp { value, units_per_day });
            }
            None => {}
        }
    }

    /// Handles a `float` or `double` field; returns it when it may be half of a position.
    fn float_field(
        &mut self,
        context: Context,
        name: &str,
        value: f64,
        width: Width,
        start: usize,
        end: usize,
    ) -> Option<Seen> {
        if context.shifts_times() {
            let is_jd = JD_FIELDS.contains(&name);
            if is_jd || MJD_FIELDS.contains(&name) {
                if context == Context::MainSource && (name == "jd" || name == "midpointMjdTai") {
                    self.layout.alert_mjd = Some(if is_jd { value - MJD_OFFSET } else { value });
                }
                if value.is_finite() {
                    self.push(start, end, SiteKind::Days { value, width });
                }
                return None;
            }
        }
        let is_position = POSITION_PAIRS.iter().any(|(ra, dec)| name == *ra || name == *dec);
        (context.moves_positions() && is_position).then_some(Seen {
            start,
            end,
            value,
            width,
        })
    }

    fn push_point(&mut self, context: Context, pair_index: usize, ra: Seen, dec: Seen) {
        let valid = ra.value.is_finite()
            && dec.value.is_finite()
            && (0.0..=360.0).contains(&ra.value)
            && (-90.0..=90.0).contains(&dec.value);
        if context == Context::MainSource && pair_index == 0 {
            self.layout.center = Some(Point {
                ra: ra.value,
                dec: dec.value,
            });
        }
        // Sentinels (ZTF writes -999 for a missing nearest source) and NaN stay as they are.
        if !valid {
            return;
        }
        let next_index = self.layout.points.len() as u32;
        let point = *self
            .point_index
            .entry((ra.value.to_bits(), dec.value.to_bits()))
            .or_insert(next_index);
        if point == next_index {
            self.layout.points.push(Point {
                ra: ra.value,
                dec: dec.value,
            });
        }
        self.push(
            ra.start,
            ra.end,
            SiteKind::Coordinate {
                point,
                axis: Axis::Ra,
                width: ra.width,
            },
        );
        self.push(
            dec.start,
            dec.end,
            SiteKind::Coordinate {
                point,
                axis: Axis::Dec,
                width: dec.width,
            },
        );
    }
}
