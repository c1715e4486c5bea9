//! The run so far, read back from `log.csv` (so that a resumed run's plots show all of it), and
//! its two plots: the losses, and SWD against the distance between two draws of real images.

use std::path::Path;
use vitgan::images::save_loss_plot;
use vitgan::run::read_log;
use vitgan::Error;

pub struct History {
    loss_d: Vec<(f64, f64)>,
    loss_g: Vec<(f64, f64)>,
    swd: Vec<(f64, f64)>,
    /// SWD between two draws of real images: what a generator that had learned the data
    /// perfectly would score.
    floor: f64,
}

impl History {
    /// The rows of `log` (step, loss_d, bcr, loss_g, d_real, d_fake, swd); SWD where logged.
    pub fn read(log: &Path, floor: f64) -> History {
        let mut history = History {
            loss_d: Vec::new(),
            loss_g: Vec::new(),
            swd: Vec::new(),
            floor,
        };
        for row in read_log(log).unwrap_or_default() {
            history.add_losses(row.step, row.loss_d, row.loss_g);
            if let Some(swd) = row.swd {
                history.add_swd(row.step, swd);
            }
        }
        history
    }

    pub fn add_losses(&mut self, step: u64, loss_d: f64, loss_g: f64) {
        self.loss_d.push((step as f64, loss_d));
        self.loss_g.push((step as f64, loss_g));
    }

    pub fn add_swd(&mut self, step: u64, swd: f64) {
        self.swd.push((step as f64, swd));
    }

    /// `losses.png` and `swd.png` in `out`.
    pub fn plot(&self, out: &Path) -> Result<(), Error> {
        let losses = [("loss D", &self.loss_d[..]), ("loss G", &self.loss_g[..])];
        save_loss_plot(&out.join("losses.png"), &losses, "losses")?;
        let (first, last) = match (self.swd.first(), self.swd.last()) {
            (Some(first), Some(last)) => (first.0, last.0),
            _ => return Ok(()),
        };
        let floor = [(first, self.floor), (last, self.floor)];
        let series = [("SWD x1e3", &self.swd[..]), ("real vs real", &floor[..])];
        save_loss_plot(&out.join("swd.png"), &series, "SWD x1e3, 256 against 256")
    }
}
