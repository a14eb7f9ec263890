//! A ZTF alert's measurements as Fink's modules see them: the `prv_candidates` in packet
//! order, then the `candidate` (Fink's `concat_col`), with the fields the modules read.

use nightjar_core::{Alert, Scalar};
use nightjar_ztf::ZtfAlert;
use nightjar_ztf::wire::{Candidate, PrvCandidate};

/// One entry of the concatenated history: a detection (`magpsf` set) or an upper limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ZtfPoint {
    pub jd: Option<f64>,
    pub fid: Option<i32>,
    /// `None` for an upper limit (no detection at that epoch).
    pub magpsf: Option<f64>,
    pub sigmapsf: Option<f64>,
    pub diffmaglim: Option<f64>,
    pub distnr: Option<f64>,
    pub magnr: Option<f64>,
    pub sigmagnr: Option<f64>,
    /// `isdiffpos` is `t` or `1`: a positive subtraction.
    pub positive: bool,
}

/// The raw ZTF record of an alert, or `None` for another survey.
pub(crate) fn ztf_record(alert: &Alert) -> Option<&ZtfAlert> {
    alert.raw.as_any().downcast_ref::<ZtfAlert>()
}

/// `prv_candidates` (packet order) then `candidate`; `None` for a non-ZTF alert or one
/// without a candidate.
pub(crate) fn ztf_points(alert: &Alert) -> Option<Vec<ZtfPoint>> {
    let record = ztf_record(alert)?;
    let candidate = record.candidate.as_ref()?;
    let history = record.prv_candidates.as_deref().unwrap_or_default();
    let mut points: Vec<ZtfPoint> = history.iter().map(point_of_prv_candidate).collect();
    points.push(point_of_candidate(candidate));
    Some(points)
}

fn wide(value: Option<f32>) -> Option<f64> {
    value.map(f64::from)
}

/// Fink compares the text of `isdiffpos` with `t` and `1`.
fn is_positive(isdiffpos: Option<&Scalar>) -> bool {
    match isdiffpos {
        Some(Scalar::Str(text)) => text == "t" || text == "1",
        Some(Scalar::Int(value)) => *value == 1,
        _ => false,
    }
}

fn point_of_candidate(candidate: &Candidate) -> ZtfPoint {
    ZtfPoint {
        jd: candidate.jd,
        fid: candidate.fid,
        magpsf: wide(candidate.magpsf),
        sigmapsf: wide(candidate.sigmapsf),
        diffmaglim: wide(candidate.diffmaglim),
        distnr: wide(candidate.distnr),
        magnr: wide(candidate.magnr),
        sigmagnr: wide(candidate.sigmagnr),
        positive: is_positive(candidate.isdiffpos.as_ref()),
    }
}

fn point_of_prv_candidate(candidate: &PrvCandidate) -> ZtfPoint {
    ZtfPoint {
        jd: candidate.jd,
        fid: candidate.fid,
        magpsf: wide(candidate.magpsf),
        sigmapsf: wide(candidate.sigmapsf),
        diffmaglim: wide(candidate.diffmaglim),
        distnr: wide(candidate.distnr),
        magnr: wide(candidate.magnr),
        sigmagnr: wide(candidate.sigmagnr),
        positive: is_positive(candidate.isdiffpos.as_ref()),
    }
}
