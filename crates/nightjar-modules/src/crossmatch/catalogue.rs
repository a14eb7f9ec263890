//! [`Catalogue`]: a position catalogue read from CSV or Parquet, rows sorted by HEALPix cell,
//! with its ids and reported columns stored compactly (one string buffer per text column).

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, StringArray};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::config::{CatalogueConfig, CatalogueFormat, Coordinates};
use crate::error::ModuleError;
use crate::module::ColumnType;

const ARCSEC_PER_RADIAN: f64 = 180.0 * 3600.0 / std::f64::consts::PI;

/// Text values of one column, in one buffer.
#[derive(Debug, Clone, Default)]
struct TextColumn {
    data: String,
    /// End offset of each value in `data`; a null is an empty value marked in `null`.
    ends: Vec<u32>,
    null: Vec<bool>,
}

impl TextColumn {
    fn push(&mut self, value: Option<&str>) -> Result<(), String> {
        if let Some(value) = value {
            self.data.push_str(value);
        }
        let end = u32::try_from(self.data.len()).map_err(|_| "a text column exceeds 4 GiB".to_owned())?;
        self.ends.push(end);
        self.null.push(value.is_none());
        Ok(())
    }

    fn get(&self, row: usize) -> Option<&str> {
        if *self.null.get(row)? {
            return None;
        }
        let start = if row == 0 { 0 } else { self.ends[row - 1] as usize };
        self.data.get(start..self.ends[row] as usize)
    }

    fn permuted(&self, order: &[u32]) -> Result<TextColumn, String> {
        let mut out = TextColumn {
            data: String::with_capacity(self.data.len()),
            ends: Vec::with_capacity(order.len()),
            null: Vec::with_capacity(order.len()),
        };
        for &row in order {
            out.push(self.get(row as usize))?;
        }
        Ok(out)
    }

    fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.ends.capacity() * 4 + self.null.capacity()
    }
}

/// One reported column: numbers when every value parses as one, else text.
#[derive(Debug, Clone)]
enum Stored {
    /// NaN is null.
    Float(Vec<f64>),
    Text(TextColumn),
}

impl Stored {
    fn from_text(text: TextColumn) -> Stored {
        let mut numbers = Vec::with_capacity(text.ends.len());
        for row in 0..text.ends.len() {
            match text.get(row) {
                None | Some("") => numbers.push(f64::NAN),
                Some(value) => match value.parse::<f64>() {
                    Ok(number) if number.is_finite() => numbers.push(number),
                    _ => return Stored::Text(text),
                },
            }
        }
        Stored::Float(numbers)
    }

    fn permuted(&self, order: &[u32]) -> Result<Stored, String> {
        Ok(match self {
            Stored::Float(values) => Stored::Float(order.iter().map(|&row| values[row as usize]).collect()),
            Stored::Text(text) => Stored::Text(text.permuted(order)?),
        })
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Stored::Float(values) => values.capacity() * 8,
            Stored::Text(text) => text.heap_bytes(),
        }
    }
}

/// A value of a reported column for one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnValue<'a> {
    Float(f64),
    Text(&'a str),
}

/// The nearest source found for a position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatalogueMatch {
    /// Its row in the catalogue's storage order (for [`Catalogue::id`], [`Catalogue::value`]).
    pub row: usize,
    /// Great-circle distance, arcseconds.
    pub distance_arcsec: f64,
}

/// A catalogue loaded in memory and indexed by HEALPix cell.
#[derive(Debug, Clone)]
pub struct Catalogue {
    name: String,
    radius_arcsec: f64,
    radius_rad: f64,
    depth: u8,
    /// HEALPix cell (nested, at `depth`) of each row, ascending.
    cells: Vec<u64>,
    /// Right ascension and declination of each row, radians.
    ra: Vec<f64>,
    dec: Vec<f64>,
    /// The id column, or none: then ids are `row_numbers`.
    ids: Option<TextColumn>,
    /// Row number in the file of each stored row.
    row_numbers: Vec<u32>,
    fields: Vec<(String, ColumnType)>,
    columns: Vec<Stored>,
    skipped_rows: usize,
}

/// The columns read from a file, in file order, before indexing.
struct RawTable {
    ra: Vec<f64>,
    dec: Vec<f64>,
    ids: Option<TextColumn>,
    columns: Vec<TextColumn>,
    float_columns: Vec<Option<Vec<f64>>>,
    skipped_rows: usize,
}

impl Catalogue {
    /// Reads and indexes the catalogue `config` describes. Rows without a valid position are
    /// skipped (counted in [`Catalogue::skipped_rows`]).
    pub fn load(config: &CatalogueConfig) -> Result<Catalogue, ModuleError> {
        let error = |reason: String| ModuleError::InvalidConfig {
            module: super::NAME.to_owned(),
            field: format!("catalogues.{}", config.name),
            reason: format!("{}: {reason}", config.source()),
        };
        let bytes: std::borrow::Cow<'static, [u8]> = match (&config.path, config.bundled_bytes()) {
            (Some(path), _) => std::fs::read(path)
                .map_err(|io| error(format!("cannot read the file: {io}")))?
                .into(),
            (None, Some(bytes)) => bytes.into(),
            (None, None) => return Err(error("no path and no known bundled catalogue".to_owned())),
        };
        let table = match config.resolved_format() {
            Some(CatalogueFormat::Csv) => read_csv(config, &bytes),
            Some(CatalogueFormat::Parquet) => read_parquet(config, bytes.into_owned()),
            None => Err("unknown format".to_owned()),
        }
        .map_err(error)?;
        Catalogue::index(config, table).map_err(error)
    }

    fn index(config: &CatalogueConfig, table: RawTable) -> Result<Catalogue, String> {
        let radius_rad = config.radius_arcsec / ARCSEC_PER_RADIAN;
        if !cdshealpix::has_best_starting_depth(radius_rad) {
            return Err(format!("radius {} arcsec is too large", config.radius_arcsec));
        }
        let depth = cdshealpix::best_starting_depth(radius_rad);
        let layer = cdshealpix::nested::get(depth);
        let n = table.ra.len();
        let n32 = u32::try_from(n).map_err(|_| format!("{n} rows is more than 2^32"))?;
        let ra: Vec<f64> = table.ra.iter().map(|value| value.to_radians()).collect();
        let dec: Vec<f64> = table.dec.iter().map(|value| value.to_radians()).collect();
        let cells_unsorted: Vec<u64> = (0..n).map(|row| layer.hash(ra[row], dec[row])).collect();
        let mut order: Vec<u32> = (0..n32).collect();
        order.sort_by_key(|&row| (cells_unsorted[row as usize], row));
        let pick = |values: &[f64]| -> Vec<f64> { order.iter().map(|&row| values[row as usize]).collect() };
        let mut columns = Vec::with_capacity(table.columns.len());
        let mut fields = Vec::with_capacity(table.columns.len());
        for ((field, text), floats) in config.columns.keys().zip(table.columns).zip(table.float_columns) {
            let stored = match floats {
                Some(values) => Stored::Float(values),
                None => Stored::from_text(text),
            };
            let stored = stored.permuted(&order)?;
            let column_type = match stored {
                Stored::Float(_) => ColumnType::Float,
                Stored::Text(_) => ColumnType::Text,
            };
            fields.push((field.clone(), column_type));
            columns.push(stored);
        }
        let ids = table.ids.map(|ids| ids.permuted(&order)).transpose()?;
        Ok(Catalogue {
            name: config.name.clone(),
            radius_arcsec: config.radius_arcsec,
            radius_rad,
            depth,
            cells: order.iter().map(|&row| cells_unsorted[row as usize]).collect(),
            ra: pick(&ra),
            dec: pick(&dec),
            ids,
            row_numbers: order,
            fields,
            columns,
            skipped_rows: table.skipped_rows,
        })
    }

    /// The catalogue's name (output prefix `xm_<name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The match radius, arcseconds.
    pub fn radius_arcsec(&self) -> f64 {
        self.radius_arcsec
    }

    /// The HEALPix depth of the index.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// The number of sources.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the catalogue has no source.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Rows of the file skipped for want of a valid position.
    pub fn skipped_rows(&self) -> usize {
        self.skipped_rows
    }

    /// The reported columns: output field name and type.
    pub fn fields(&self) -> &[(String, ColumnType)] {
        &self.fields
    }

    /// Bytes held on the heap by the loaded catalogue (index, positions, ids, columns).
    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity() * 8
            + self.ra.capacity() * 8
            + self.dec.capacity() * 8
            + self.row_numbers.capacity() * 4
            + self.ids.as_ref().map_or(0, TextColumn::heap_bytes)
            + self.columns.iter().map(Stored::heap_bytes).sum::<usize>()
    }

    /// The nearest source within the radius of (`ra_deg`, `dec_deg`), if any; ties go to the
    /// source listed first in the file.
    pub fn nearest(&self, ra_deg: f64, dec_deg: f64) -> Option<CatalogueMatch> {
        let (ra, dec) = (ra_deg.to_radians(), dec_deg.to_radians());
        let layer = cdshealpix::nested::get(self.depth);
        let centre = layer.hash(ra, dec);
        let mut cells = layer.neighbours(centre, true).values_vec();
        cells.sort_unstable();
        cells.dedup();
        let mut best: Option<(f64, u32, usize)> = None;
        for cell in cells {
            let start = self.cells.partition_point(|&value| value < cell);
            let end = start + self.cells[start..].partition_point(|&value| value <= cell);
            for row in start..end {
                let distance = angular_distance(ra, dec, self.ra[row], self.dec[row]);
                if distance > self.radius_rad {
                    continue;
                }
                let key = (distance, self.row_numbers[row]);
                if best.is_none_or(|(best_distance, best_row, _)| key < (best_distance, best_row)) {
                    best = Some((distance, self.row_numbers[row], row));
                }
            }
        }
        best.map(|(distance, _, row)| CatalogueMatch {
            row,
            distance_arcsec: distance * ARCSEC_PER_RADIAN,
        })
    }

    /// The position of the source at `row` (storage order), degrees.
    pub fn position(&self, row: usize) -> (f64, f64) {
        (self.ra[row].to_degrees(), self.dec[row].to_degrees())
    }

    /// The id of the source at `row` (storage order): the id column's value, or the row
    /// number in the file.
    pub fn id(&self, row: usize) -> String {
        match &self.ids {
            Some(ids) => ids.get(row).unwrap_or_default().to_owned(),
            None => self.row_numbers[row].to_string(),
        }
    }

    /// The value of reported column `field` (position in [`Catalogue::fields`]) at `row`.
    pub fn value(&self, row: usize, field: usize) -> Option<ColumnValue<'_>> {
        match self.columns.get(field)? {
            Stored::Float(values) => values
                .get(row)
                .copied()
                .filter(|value| !value.is_nan())
                .map(ColumnValue::Float),
            Stored::Text(text) => text.get(row).map(ColumnValue::Text),
        }
    }
}

/// Great-circle distance between two points (radians), by the Vincenty formula, accurate at
/// every separation.
fn angular_distance(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let delta = ra2 - ra1;
    let (sin_delta, cos_delta) = delta.sin_cos();
    let (sin1, cos1) = dec1.sin_cos();
    let (sin2, cos2) = dec2.sin_cos();
    let a = cos2 * sin_delta;
    let b = cos1 * sin2 - sin1 * cos2 * cos_delta;
    let c = sin1 * sin2 + cos1 * cos2 * cos_delta;
    a.hypot(b).atan2(c)
}

/// Parses a sexagesimal angle `D M S` (spaces or colons) into units of its first field.
fn sexagesimal(text: &str) -> Option<f64> {
    let text = text.trim();
    let negative = text.starts_with('-');
    let parts: Vec<f64> = text
        .trim_start_matches(['+', '-'])
        .split([' ', ':'])
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<f64>().ok())
        .collect::<Option<Vec<f64>>>()?;
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let value = parts
        .iter()
        .enumerate()
        .map(|(i, part)| part / 60f64.powi(i as i32))
        .sum::<f64>();
    Some(if negative { -value } else { value })
}

/// A position in degrees from the two position fields, or `None` when invalid.
fn position(coordinates: Coordinates, ra: &str, dec: &str) -> Option<(f64, f64)> {
    let (ra, dec) = match coordinates {
        Coordinates::Degrees => (ra.trim().parse::<f64>().ok()?, dec.trim().parse::<f64>().ok()?),
        Coordinates::Sexagesimal => (sexagesimal(ra)? * 15.0, sexagesimal(dec)?),
    };
    valid_position(ra, dec)
}

fn valid_position(ra: f64, dec: f64) -> Option<(f64, f64)> {
    (ra.is_finite() && dec.is_finite() && (-90.0..=90.0).contains(&dec)).then_some((ra.rem_euclid(360.0), dec))
}

/// Trims spaces and enclosing double quotes (as in `1 , "3HSPJ000116.4+293534" , ...`).
fn clean(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .map_or(field, str::trim)
}

fn read_csv(config: &CatalogueConfig, bytes: &[u8]) -> Result<RawTable, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|csv| format!("cannot read the CSV header: {csv}"))?
        .iter()
        .map(|name| clean(name).to_owned())
        .collect();
    let find = |name: &str| {
        header
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| format!("no column {name:?} (columns: {})", header.join(", ")))
    };
    let ra_at = find(&config.ra_column)?;
    let dec_at = find(&config.dec_column)?;
    let id_at = config.id_column.as_deref().map(find).transpose()?;
    let column_at = config
        .columns
        .values()
        .map(|column| find(column))
        .collect::<Result<Vec<_>, _>>()?;
    let mut table = RawTable {
        ra: Vec::new(),
        dec: Vec::new(),
        ids: id_at.map(|_| TextColumn::default()),
        columns: vec![TextColumn::default(); column_at.len()],
        float_columns: vec![None; column_at.len()],
        skipped_rows: 0,
    };
    let mut record = csv::StringRecord::new();
    let mut line = 1u64;
    loop {
        line += 1;
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(csv) => return Err(format!("CSV record near line {line}: {csv}")),
        }
        let field = |at: usize| record.get(at).map(clean);
        let Some((ra, dec)) = field(ra_at)
            .zip(field(dec_at))
            .and_then(|(ra, dec)| position(config.coordinates, ra, dec))
        else {
            table.skipped_rows += 1;
            continue;
        };
        table.ra.push(ra);
        table.dec.push(dec);
        if let (Some(ids), Some(at)) = (table.ids.as_mut(), id_at) {
            ids.push(field(at).filter(|value| !value.is_empty()))?;
        }
        for (column, &at) in table.columns.iter_mut().zip(&column_at) {
            column.push(field(at).filter(|value| !value.is_empty()))?;
        }
    }
    Ok(table)
}

fn read_parquet(config: &CatalogueConfig, bytes: Vec<u8>) -> Result<RawTable, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .map_err(|parquet| format!("not a readable Parquet file: {parquet}"))?;
    let schema = builder.schema().clone();
    let find = |name: &str| {
        schema.index_of(name).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|field| field.name().as_str()).collect();
            format!("no column {name:?} (columns: {})", names.join(", "))
        })
    };
    let ra_at = find(&config.ra_column)?;
    let dec_at = find(&config.dec_column)?;
    let id_at = config.id_column.as_deref().map(find).transpose()?;
    let column_at = config
        .columns
        .values()
        .map(|column| find(column))
        .collect::<Result<Vec<_>, _>>()?;
    let mut wanted: Vec<usize> = [ra_at, dec_at]
        .into_iter()
        .chain(id_at)
        .chain(column_at.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|parquet| format!("cannot read the Parquet file: {parquet}"))?;
    let numeric: Vec<bool> = column_at
        .iter()
        .map(|&at| schema.field(at).data_type().is_numeric())
        .collect();
    let mut table = RawTable {
        ra: Vec::new(),
        dec: Vec::new(),
        ids: id_at.map(|_| TextColumn::default()),
        columns: vec![TextColumn::default(); column_at.len()],
        float_columns: numeric.iter().map(|&numeric| numeric.then(Vec::new)).collect(),
        skipped_rows: 0,
    };
    for batch in reader {
        let batch = batch.map_err(|parquet| format!("cannot read a Parquet batch: {parquet}"))?;
        let column = |at: usize| -> Result<ArrayRef, String> {
            let position = batch
                .schema()
                .index_of(schema.field(at).name())
                .map_err(|_| format!("column {:?} missing from a batch", schema.field(at).name()))?;
            Ok(Arc::clone(batch.column(position)))
        };
        let ra = as_f64(&column(ra_at)?, &config.ra_column, config.coordinates)?;
        let dec_text = config.coordinates == Coordinates::Sexagesimal;
        let dec = if dec_text {
            as_sexagesimal(&column(dec_at)?, &config.dec_column, 1.0)?
        } else {
            as_f64(&column(dec_at)?, &config.dec_column, config.coordinates)?
        };
        let ids = id_at.map(|at| as_text(&column(at)?)).transpose()?;
        let mut texts = Vec::with_capacity(column_at.len());
        let mut floats = Vec::with_capacity(column_at.len());
        for (&at, &is_numeric) in column_at.iter().zip(&numeric) {
            if is_numeric {
                floats.push(Some(as_f64(
                    &column(at)?,
                    schema.field(at).name(),
                    Coordinates::Degrees,
                )?));
                texts.push(None);
            } else {
                floats.push(None);
                texts.push(Some(as_text(&column(at)?)?));
            }
        }
        for row in 0..batch.num_rows() {
            let Some((ra, dec)) = ra[row].zip(dec[row]).and_then(|(ra, dec)| valid_position(ra, dec)) else {
                table.skipped_rows += 1;
                continue;
            };
            table.ra.push(ra);
            table.dec.push(dec);
            if let (Some(out), Some(ids)) = (table.ids.as_mut(), ids.as_ref()) {
                out.push(text_at(ids, row))?;
            }
            for field in 0..column_at.len() {
                if let (Some(out), Some(values)) = (table.float_columns[field].as_mut(), floats[field].as_ref()) {
                    out.push(values[row].unwrap_or(f64::NAN));
                    table.columns[field].push(None)?;
                } else if let Some(values) = texts[field].as_ref() {
                    table.columns[field].push(text_at(values, row))?;
                }
            }
        }
    }
    Ok(table)
}

fn text_at(values: &StringArray, row: usize) -> Option<&str> {
    (!values.is_null(row))
        .then(|| values.value(row).trim())
        .filter(|value| !value.is_empty())
}

fn as_text(array: &ArrayRef) -> Result<StringArray, String> {
    let cast = arrow_cast::cast(array, &DataType::Utf8).map_err(|arrow| format!("cannot read as text: {arrow}"))?;
    cast.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| "cannot read as text".to_owned())
}

fn as_f64(array: &ArrayRef, name: &str, coordinates: Coordinates) -> Result<Vec<Option<f64>>, String> {
    if coordinates == Coordinates::Sexagesimal {
        return as_sexagesimal(array, name, 15.0);
    }
    let cast = arrow_cast::cast(array, &DataType::Float64)
        .map_err(|arrow| format!("column {name:?} is not numeric: {arrow}"))?;
    let values = cast
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| format!("column {name:?} is not numeric"))?;
    Ok((0..values.len())
        .map(|row| (!values.is_null(row)).then(|| values.value(row)))
        .collect())
}

fn as_sexagesimal(array: &ArrayRef, name: &str, scale: f64) -> Result<Vec<Option<f64>>, String> {
    let text = as_text(array).map_err(|reason| format!("column {name:?}: {reason}"))?;
    Ok((0..text.len())
        .map(|row| text_at(&text, row).and_then(sexagesimal).map(|value| value * scale))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sexagesimal_angles() {
        assert_eq!(
            sexagesimal("00 01 16.37").map(|h| (h * 15.0 * 1e6).round()),
            Some(318_208.0)
        );
        assert_eq!(
            sexagesimal("-31 50 43.0").map(|d| (d * 1e6).round()),
            Some(-31_845_278.0)
        );
        assert_eq!(sexagesimal("+29:35:34"), Some(29.0 + 35.0 / 60.0 + 34.0 / 3600.0));
        assert_eq!(sexagesimal("abc"), None);
        assert_eq!(sexagesimal(""), None);
    }

    #[test]
    fn distances() {
        let arcsec = 1.0 / ARCSEC_PER_RADIAN;
        let d = angular_distance(0.0, 0.0, 0.0, arcsec);
        assert!((d - arcsec).abs() < 1e-15);
        let pole = angular_distance(1.0, std::f64::consts::FRAC_PI_2, 2.0, std::f64::consts::FRAC_PI_2);
        assert!(pole.abs() < 1e-12);
    }

    #[test]
    fn csv_fields_are_cleaned() {
        assert_eq!(clean(r#" "3HSPJ000116.4+293534" "#), "3HSPJ000116.4+293534");
        assert_eq!(clean(" 0.05 "), "0.05");
        assert_eq!(clean(r#""""#), "");
    }
}
