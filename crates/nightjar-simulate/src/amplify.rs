//! The amplifier: turns a few templates into any number of unique, reproducible alert messages.

use std::ops::Range;
use std::sync::Arc;

use nightjar_core::Survey;
use serde::{Deserialize, Serialize};
use serde_avro_fast::object_container_file_encoding::WriterBuilder;
use serde_avro_fast::ser::SerializerConfig;

use crate::binary::{MAX_VARINT_LEN, write_long};
use crate::error::SimulateError;
use crate::layout::{Axis, Point, SiteKind, Width};
use crate::sky::{Rotation, ZTF_NAME_SPACE, hash3, mix64, uniform_sky_position, ztf_object_name};
use crate::template::{Framing, Template, TemplateData};

/// Seconds per day.
const SECONDS_PER_DAY: f64 = 86_400.0;

/// Purposes of the per-copy hash, so that each random choice is independent.
const PURPOSE_RA: u64 = 1;
const PURPOSE_DEC: u64 = 2;
const PURPOSE_SYNC_LOW: u64 = 3;
const PURPOSE_SYNC_HIGH: u64 = 4;

/// How copies are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmplifyConfig {
    /// Seed of every choice: the same templates, seed and copy index give the same bytes.
    pub seed: u64,
    /// Time (MJD) of copy 0's triggering detection; copy `i` is observed at
    /// `start_mjd + i * cadence_s`. When unset, copy `i` keeps its template's time plus
    /// `i * cadence_s`.
    pub start_mjd: Option<f64>,
    /// Seconds between consecutive copies (10,000 alerts/s is a cadence of 0.0001 s).
    pub cadence_s: f64,
    /// First id given out. When unset, derived from the seed (between 2^60 and 2^61), so runs
    /// with different seeds give different ids (their id ranges overlap with a probability of
    /// about `2 * n_copies * ids_per_copy / 2^60`, 7e-6 for 10^9 copies).
    pub id_base: Option<i64>,
    /// Ids reserved per copy: copy `i` uses ids `id_base + i * ids_per_copy + j`, `j` = 0 for
    /// the alert, 1.. for its history entries, and `ids_per_copy - 1` for a Rubin
    /// `diaObjectId`. Every template must fit (its history ids + 2).
    pub ids_per_copy: u64,
}

impl Default for AmplifyConfig {
    fn default() -> Self {
        AmplifyConfig {
            seed: 0,
            start_mjd: None,
            cadence_s: 0.1,
            id_base: None,
            ids_per_copy: 4096,
        }
    }
}

impl AmplifyConfig {
    /// Checks the values: a finite, non-negative cadence, a plausible start, a positive id base
    /// and at least 2 ids per copy.
    pub fn validate(&self) -> Result<(), SimulateError> {
        if !(self.cadence_s.is_finite() && self.cadence_s >= 0.0) {
            return Err(SimulateError::Config(format!(
                "cadence_s = {} must be finite and >= 0",
                self.cadence_s
            )));
        }
        if let Some(start_mjd) = self.start_mjd
            && !(0.0..=200_000.0).contains(&start_mjd)
        {
            return Err(SimulateError::Config(format!(
                "start_mjd = {start_mjd} is not a plausible MJD (0 to 200000; 60000 is 2023-02-25)"
            )));
        }
        if let Some(id_base) = self.id_base
            && id_base <= 0
        {
            return Err(SimulateError::Config(format!("id_base = {id_base} must be positive")));
        }
        if self.ids_per_copy < 2 || self.ids_per_copy > 1 << 32 {
            return Err(SimulateError::Config(format!(
                "ids_per_copy = {} must be between 2 and 2^32",
                self.ids_per_copy
            )));
        }
        Ok(())
    }
}

/// What one copy is: which template, its ids, position and time.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyInfo {
    /// The copy's index.
    pub index: u64,
    /// Index of its template in [`Amplifier::templates`].
    pub template: usize,
    /// Its alert id (ZTF `candid`, Rubin `diaSourceId`).
    pub alert_id: i64,
    /// Its object id as the core model names it: the ZTF `objectId`, the Rubin `diaObjectId` in
    /// decimal, or `ss:<ssObjectId>` for a Rubin solar-system source without a `diaObject`.
    pub object_id: Option<String>,
    /// Position of its triggering detection (degrees).
    pub ra: f64,
    pub dec: f64,
    /// Time of its triggering detection (MJD).
    pub mjd: f64,
}

/// Makes copies of templates: copy `index` is made from template `index % n_templates`, with
/// new ids, a new sky position and a new time, and is a complete message in the template's
/// survey format (ZTF: a one-record object container, codec null; Rubin: Confluent wire
/// format with the bundled schema).
///
/// Copies are independent: any index can be made at any time, from any thread (`&self`).
#[derive(Debug, Clone)]
pub struct Amplifier {
    templates: Vec<Template>,
    config: AmplifyConfig,
    id_base: i64,
    name_offset: u64,
}

/// The per-copy values every site is rewritten from.
struct CopyPlan<'a> {
    template_index: usize,
    template: &'a TemplateData,
    first_id: i64,
    object_number: i64,
    object_name: String,
    target: Point,
    mjd: f64,
    offset_days: f64,
    /// True when the copy's ids take as many bytes as the template's, so that the copy can be
    /// written by overwriting the template's bytes in place.
    ids_in_place: bool,
}

impl Amplifier {
    /// An amplifier over these templates. Fails on an invalid configuration, no templates, or a
    /// template with more history ids than `ids_per_copy` holds.
    pub fn new(templates: Vec<Template>, config: AmplifyConfig) -> Result<Amplifier, SimulateError> {
        config.validate()?;
        if templates.is_empty() {
            return Err(SimulateError::NoTemplates);
        }
        for (index, template) in templates.iter().enumerate() {
            let needed = u64::from(template.n_history_ids()) + 2;
            if needed > config.ids_per_copy {
                return Err(SimulateError::TooManyIds {
                    template: index,
                    label: template.label().to_string(),
                    needed,
                    ids_per_copy: config.ids_per_copy,
                });
            }
        }
        let seed_bits = mix64(config.seed);
        let id_base = config
            .id_base
            .unwrap_or((1i64 << 60) + (seed_bits % (1u64 << 60)) as i64);
        let name_offset = mix64(seed_bits) % ZTF_NAME_SPACE;
        Ok(Amplifier {
            templates,
            config,
            id_base,
            name_offset,
        })
    }

    /// The templates, in the order copies cycle through them.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The configuration.
    pub fn config(&self) -> &AmplifyConfig {
        &self.config
    }

    /// The first id given out (copy 0's alert id).
    pub fn id_base(&self) -> i64 {
        self.id_base
    }

    /// Which template copy `index` is made from.
    pub fn template_index(&self, index: u64) -> usize {
        (index % self.templates.len() as u64) as usize
    }

    /// What copy `index` is, without making it.
    pub fn copy_info(&self, index: u64) -> Result<CopyInfo, SimulateError> {
        let plan = self.plan(index)?;
        let object_id = match plan.template.survey {
            _ if plan.template.layout.object_id.is_none() => None,
            Survey::Ztf => Some(plan.object_name.clone()),
            Survey::Rubin
                if plan
                    .template
                    .layout
                    .object_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with("ss:")) =>
            {
                Some(format!("ss:{}", plan.object_number))
            }
            Survey::Rubin => Some(plan.object_number.to_string()),
        };
        Ok(CopyInfo {
            index,
            template: plan.template_index,
            alert_id: plan.first_id,
            object_id,
            ra: plan.target.ra,
            dec: plan.target.dec,
            mjd: plan.mjd,
        })
    }

    /// Copy `index` as a complete message.
    pub fn message(&self, index: u64) -> Result<Vec<u8>, SimulateError> {
        let mut message = Vec::new();
        self.write_message(index, &mut message)?;
        Ok(message)
    }

    /// Appends copy `index` as a complete message to `out` (to reuse one buffer).
    pub fn write_message(&self, index: u64, out: &mut Vec<u8>) -> Result<(), SimulateError> {
        let plan = self.plan(index)?;
        write_copy(&plan, out, true);
        Ok(())
    }

    /// Appends copy `index` as a bare Avro datum (no framing) to `out`.
    pub fn write_datum(&self, index: u64, out: &mut Vec<u8>) -> Result<(), SimulateError> {
        let plan = self.plan(index)?;
        write_copy(&plan, out, false);
        Ok(())
    }

    /// The messages of copies `range`, in order.
    pub fn messages(&self, range: Range<u64>) -> Messages<'_> {
        Messages { amplifier: self, range }
    }

    /// An object-container file holding the copies `indices` (codec null), for file-based
    /// ingestion tests. All copies must share one writer schema (one ZTF schema, or one Rubin
    /// version), since a container has one.
    pub fn write_container_file(&self, indices: impl IntoIterator<Item = u64>) -> Result<Vec<u8>, SimulateError> {
        let mut indices = indices.into_iter().peekable();
        let first_index = indices.peek().copied().unwrap_or(0);
        let schema = self.templates[self.template_index(first_index)].writer_schema().clone();
        let mut config = SerializerConfig::new(&schema.schema);
        let sync: [u8; 16] = {
            let mut marker = [0u8; 16];
            marker[..8].copy_from_slice(&hash3(self.config.seed, first_index, PURPOSE_SYNC_LOW).to_le_bytes());
            marker[8..].copy_from_slice(&hash3(self.config.seed, first_index, PURPOSE_SYNC_HIGH).to_le_bytes());
            marker
        };
        let container_error = |error: serde_avro_fast::ser::SerError| SimulateError::Container(error.to_string());
        let mut writer = WriterBuilder::new(&mut config)
            .sync_marker(sync)
            .build(Vec::new())
            .map_err(container_error)?;
        let mut datum = Vec::new();
        for index in indices {
            let template_index = self.template_index(index);
            if !Arc::ptr_eq(self.templates[template_index].writer_schema(), &schema)
                && self.templates[template_index].writer_schema().json != schema.json
            {
                return Err(SimulateError::MixedSchemas {
                    index,
                    template: template_index,
                    first_index,
                });
            }
            datum.clear();
            self.write_datum(index, &mut datum)?;
            writer.push_serialized(&datum, 1).map_err(container_error)?;
        }
        writer.into_inner().map_err(container_error)
    }

    fn plan(&self, index: u64) -> Result<CopyPlan<'_>, SimulateError> {
        let template_index = self.template_index(index);
        let template = &*self.templates[template_index].inner;
        let ids_per_copy = self.config.ids_per_copy;
        let overflow = || SimulateError::IdOverflow {
            index,
            id_base: self.id_base,
            ids_per_copy,
        };
        // The copy's whole id range must fit in an i64.
        let first_id = i128::from(self.id_base) + i128::from(index) * i128::from(ids_per_copy);
        if first_id + i128::from(ids_per_copy) - 1 > i128::from(i64::MAX) {
            return Err(overflow());
        }
        let first_id = i64::try_from(first_id).map_err(|_| overflow())?;
        let object_number = first_id + (ids_per_copy as i64 - 1);
        let target = uniform_sky_position(
            hash3(self.config.seed, index, PURPOSE_RA),
            hash3(self.config.seed, index, PURPOSE_DEC),
        );
        let elapsed_days = index as f64 * self.config.cadence_s / SECONDS_PER_DAY;
        let mjd = self.config.start_mjd.unwrap_or(template.alert_mjd) + elapsed_days;
        let object_name = match template.survey {
            Survey::Ztf => ztf_object_name(index.wrapping_add(self.name_offset)),
            Survey::Rubin => String::new(),
        };
        let (min_id_len, max_id_len) = template.layout.id_lengths;
        let last_id = first_id + (ids_per_copy as i64 - 1);
        let ids_in_place = max_id_len == 0
            || (min_id_len == max_id_len && long_len(first_id) == min_id_len && long_len(last_id) == min_id_len);
        Ok(CopyPlan {
            ids_in_place,
            template_index,
            template,
            first_id,
            object_number,
            object_name,
            target,
            mjd,
            offset_days: mjd - template.alert_mjd,
        })
    }
}

/// Writes one copy, framed as a message or as a bare datum.
fn write_copy(plan: &CopyPlan<'_>, out: &mut Vec<u8>, framed: bool) {
    let template = plan.template;
    let rotation = Rotation::taking(template.center, plan.target);
    let moved: Vec<Point> = template
        .unit_vectors
        .iter()
        .map(|vector| rotation.apply(*vector))
        .collect();
    let start = out.len();
    // Fast path: every new value takes as many bytes as the old one (always true of positions
    // and times, true of ids when they have as many varint bytes): copy the datum whole, then
    // overwrite each site in place.
    if plan.ids_in_place {
        let header_len = write_prefix(template, template.datum.len(), out, framed);
        let datum_start = start + header_len;
        out.extend_from_slice(&template.datum);
        if overwrite_sites(plan, &moved, &mut out[datum_start..]) {
            write_suffix(template, out, framed);
            return;
        }
        // A shifted timestamp changed length: start again the general way.
        out.truncate(start);
    }
    let patches = Patches::encode(plan, &moved);
    let datum_len = template.datum.len() - template.layout.replaced_len + patches.bytes.len();
    write_prefix(template, datum_len, out, framed);
    patches.write_datum(template, out);
    write_suffix(template, out, framed);
}

/// Writes what comes before the datum; returns its length.
fn write_prefix(template: &TemplateData, datum_len: usize, out: &mut Vec<u8>, framed: bool) -> usize {
    let start = out.len();
    match &template.framing {
        Framing::Container { header, sync } if framed => {
            out.reserve(header.len() + 2 * MAX_VARINT_LEN + datum_len + sync.len());
            out.extend_from_slice(header);
            write_long(out, 1);
            write_long(out, datum_len as i64);
        }
        Framing::Wire { schema_id } if framed => {
            out.reserve(5 + datum_len);
            out.push(nightjar_avro::WIRE_MAGIC);
            out.extend_from_slice(&schema_id.to_be_bytes());
        }
        _ => out.reserve(datum_len),
    }
    out.len() - start
}

/// Writes what comes after the datum: a container's closing sync marker.
fn write_suffix(template: &TemplateData, out: &mut Vec<u8>, framed: bool) {
    if let (Framing::Container { sync, .. }, true) = (&template.framing, framed) {
        out.extend_from_slice(sync);
    }
}

/// Overwrites each site of a copy of the template's datum; false (datum left half-written)
/// when a new value does not take exactly the old value's bytes.
fn overwrite_sites(plan: &CopyPlan<'_>, moved: &[Point], datum: &mut [u8]) -> bool {
    for site in &plan.template.layout.sites {
        let Some(target) = datum.get_mut(site.start..site.end) else {
            return false;
        };
        let written = match site.kind {
            // Fixed-size values, written without a length check or a call to memcpy.
            SiteKind::Days { value, width } => overwrite_float(target, value + plan.offset_days, width),
            SiteKind::Coordinate { point, axis, width } => {
                let point = moved[point as usize];
                let value = match axis {
                    Axis::Ra => point.ra,
                    Axis::Dec => point.dec,
                };
                overwrite_float(target, value, width)
            }
            kind => {
                let value = encode_site(kind, plan, moved);
                if target.len() == value.len {
                    for (byte, new_byte) in target.iter_mut().zip(&value.bytes) {
                        *byte = *new_byte;
                    }
                    true
                } else {
                    false
                }
            }
        };
        if !written {
            return false;
        }
    }
    true
}

fn overwrite_float(target: &mut [u8], value: f64, width: Width) -> bool {
    match width {
        Width::F64 => <&mut [u8; 8]>::try_from(target)
            .map(|target| *target = value.to_le_bytes())
            .is_ok(),
        Width::F32 => <&mut [u8; 4]>::try_from(target)
            .map(|target| *target = (value as f32).to_le_bytes())
            .is_ok(),
    }
}

/// The encoding of one site's new value: at most a varint or a 12-character object name.
struct SiteBytes {
    bytes: [u8; 16],
    len: usize,
}

impl SiteBytes {
    fn long(value: i64) -> SiteBytes {
        let mut site = SiteBytes { bytes: [0; 16], len: 0 };
        let mut rest = ((value << 1) ^ (value >> 63)) as u64;
        while rest >= 0x80 {
            site.bytes[site.len] = (rest as u8) | 0x80;
            site.len += 1;
            rest >>= 7;
        }
        site.bytes[site.len] = rest as u8;
        site.len += 1;
        site
    }

    fn float(value: f64, width: Width) -> SiteBytes {
        let mut site = SiteBytes { bytes: [0; 16], len: 0 };
        match width {
            Width::F64 => {
                site.bytes[..8].copy_from_slice(&value.to_le_bytes());
                site.len = 8;
            }
            Width::F32 => {
                site.bytes[..4].copy_from_slice(&(value as f32).to_le_bytes());
                site.len = 4;
            }
        }
        site
    }

    /// A short string (object names are 12 bytes): length varint, then the bytes.
    fn short_string(value: &str) -> SiteBytes {
        debug_assert!(value.len() <= 14, "object names are 12 bytes");
        let mut site = SiteBytes::long(value.len() as i64);
        let end = (site.len + value.len()).min(site.bytes.len());
        site.bytes[site.len..end].copy_from_slice(&value.as_bytes()[..end - site.len]);
        site.len = end;
        site
    }
}

/// The new value of one site.
fn encode_site(kind: SiteKind, plan: &CopyPlan<'_>, moved: &[Point]) -> SiteBytes {
    match kind {
        SiteKind::AlertId => SiteBytes::long(plan.first_id),
        SiteKind::HistoryId { slot } => SiteBytes::long(plan.first_id + i64::from(slot)),
        SiteKind::ObjectId => SiteBytes::long(plan.object_number),
        SiteKind::ObjectName => SiteBytes::short_string(&plan.object_name),
        SiteKind::Days { value, width } => SiteBytes::float(value + plan.offset_days, width),
        SiteKind::Timestamp { value, units_per_day } => {
            let shift = (plan.offset_days * units_per_day as f64).round() as i64;
            SiteBytes::long(value.saturating_add(shift))
        }
        SiteKind::Coordinate { point, axis, width } => {
            let point = moved[point as usize];
            let value = match axis {
                Axis::Ra => point.ra,
                Axis::Dec => point.dec,
            };
            SiteBytes::float(value, width)
        }
    }
}

/// Bytes an Avro `long` takes.
fn long_len(value: i64) -> usize {
    SiteBytes::long(value).len
}

/// The new bytes of every site of one copy, in site order (the general path, for copies whose
/// values change length).
struct Patches {
    bytes: Vec<u8>,
    /// End of each site's bytes in `bytes`.
    ends: Vec<usize>,
}

impl Patches {
    fn encode(plan: &CopyPlan<'_>, moved: &[Point]) -> Patches {
        let sites = &plan.template.layout.sites;
        let mut bytes = Vec::with_capacity(sites.len() * 9 + 16);
        let mut ends = Vec::with_capacity(sites.len());
        for site in sites {
            let value = encode_site(site.kind, plan, moved);
            bytes.extend_from_slice(&value.bytes[..value.len]);
            ends.push(bytes.len());
        }
        Patches { bytes, ends }
    }

    /// Writes the template's datum with every site replaced.
    fn write_datum(&self, template: &TemplateData, out: &mut Vec<u8>) {
        let mut datum_cursor = 0;
        let mut patch_cursor = 0;
        for (site, &end) in template.layout.sites.iter().zip(&self.ends) {
            out.extend_from_slice(&template.datum[datum_cursor..site.start]);
            out.extend_from_slice(&self.bytes[patch_cursor..end]);
            datum_cursor = site.end;
            patch_cursor = end;
        }
        out.extend_from_slice(&template.datum[datum_cursor..]);
    }
}

/// Iterator over copies' messages, from [`Amplifier::messages`].
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    amplifier: &'a Amplifier,
    range: Range<u64>,
}

impl Iterator for Messages<'_> {
    type Item = Result<Vec<u8>, SimulateError>;

    fn next(&mut self) -> Option<Self::Item> {
        let index = self.range.next()?;
        Some(self.amplifier.message(index))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl DoubleEndedIterator for Messages<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let index = self.range.next_back()?;
        Some(self.amplifier.message(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_templates() -> Vec<Template> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
        [
            "ztf/alerts/boom_20240715_v4.02/2752190653015010019.avro",
            "lsst/multi/fink_lsst_v10.0_7alerts_20260306.avro",
        ]
        .iter()
        .flat_map(|name| {
            let bytes = std::fs::read(root.join(name)).expect("read the sample");
            Template::from_named_message(name, &bytes).expect("templates")
        })
        .collect()
    }

    #[test]
    fn amplifiers_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Amplifier>();
        assert_send_sync::<Template>();
    }

    #[test]
    fn in_place_and_piecewise_copies_are_the_same_bytes() {
        let amplifier = Amplifier::new(
            sample_templates(),
            AmplifyConfig {
                seed: 2,
                ..AmplifyConfig::default()
            },
        )
        .expect("an amplifier");
        let mut n_in_place = 0;
        for index in 0..16 {
            let plan = amplifier.plan(index).expect("a plan");
            // Ids of the samples take 9 bytes, as the copies' do, except the shorter ssObjectId
            // of the solar-system alerts, which must be written piecewise.
            if !plan.ids_in_place {
                continue;
            }
            n_in_place += 1;
            let mut in_place = Vec::new();
            write_copy(&plan, &mut in_place, true);
            let piecewise_plan = CopyPlan {
                ids_in_place: false,
                ..amplifier.plan(index).expect("a plan")
            };
            let mut piecewise = Vec::new();
            write_copy(&piecewise_plan, &mut piecewise, true);
            assert_eq!(in_place, piecewise, "copy {index}");
        }
        assert!(n_in_place >= 10, "only {n_in_place} of 16 copies were written in place");
    }

    #[test]
    fn small_ids_are_written_piecewise() {
        let templates = sample_templates();
        let small = AmplifyConfig {
            id_base: Some(5),
            ..AmplifyConfig::default()
        };
        let small_ids = Amplifier::new(templates.clone(), small).expect("an amplifier");
        let large_ids = Amplifier::new(templates, AmplifyConfig::default()).expect("an amplifier");
        for index in 0..4 {
            assert!(!small_ids.plan(index).expect("a plan").ids_in_place);
            let shorter = small_ids.message(index).expect("a copy").len();
            assert!(
                shorter < large_ids.message(index).expect("a copy").len(),
                "copy {index}"
            );
        }
    }
}
