//! The training log, `log.csv`: one row per step, written by the training example and read
//! back by its plots, by a resumed run and by the ablation figures.

use crate::Error;
use std::path::Path;

/// The log's header: its columns, in order.
pub const LOG_HEADER: &str = "step,loss_d,bcr,loss_g,d_real,d_fake,swd";

/// One row of the log. SWD is logged only at sample steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogRow {
    pub step: u64,
    pub loss_d: f64,
    pub loss_g: f64,
    pub bcr: Option<f64>,
    /// D's mean logit on (augmented) real images in the D step.
    pub d_real: Option<f64>,
    /// D's mean logit on (augmented) generated images in the D step.
    pub d_fake: Option<f64>,
    pub swd: Option<f64>,
}

/// The rows of the log at `path` that hold at least a step and both losses.
pub fn read_log(path: &Path) -> Result<Vec<LogRow>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let rows = text.lines().skip(1).filter_map(|line| {
        let fields: Vec<Option<f64>> = line.split(',').map(|v| v.parse().ok()).collect();
        let field = |i: usize| fields.get(i).copied().flatten();
        Some(LogRow {
            step: field(0)? as u64,
            loss_d: field(1)?,
            bcr: field(2),
            loss_g: field(3)?,
            d_real: field(4),
            d_fake: field(5),
            swd: field(6),
        })
    });
    Ok(rows.collect())
}
