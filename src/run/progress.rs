//! Progress of a training run as its reader sees it: a bar on a terminal; plain lines at a
//! steady pace when the output goes to a file or a pipe (`nohup`, `> log`, CI), where a bar
//! would print nothing. Either way every message (an SWD line, a warning) is printed, and after
//! the first steps the run says how long the rest will take.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Steps timed for the estimate, after a first step that also pays for warm-up (allocations,
/// the GPU's shader compilation).
const TIMED_STEPS: u64 = 3;

pub struct Progress {
    /// The step this process started from (a resumed run starts after 0) and the last one.
    first: u64,
    total: u64,
    batch: usize,
    started: Instant,
    /// When the warm-up step ended, and whether the estimate was given.
    warm: Option<Instant>,
    estimated: bool,
    output: Output,
}

enum Output {
    Bar(ProgressBar),
    /// Plain lines: one at the first step, then one per `every`, and one at the last step.
    Lines {
        every: Duration,
        last: Option<Instant>,
    },
}

/// How long the rest of a run takes at the measured pace.
#[derive(Clone, Copy, Debug)]
pub struct Estimate {
    pub per_step: Duration,
    pub steps_left: u64,
    pub left: Duration,
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} a step: the {} steps left take about {}",
            human(self.per_step),
            self.steps_left,
            human(self.left)
        )
    }
}

impl Progress {
    /// A bar when both standard output and standard error are terminals, lines every 10 s
    /// otherwise.
    pub fn new(first: u64, total: u64, batch: usize) -> Progress {
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        if terminal {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}] {msg}",
                )
                .expect("valid template"),
            );
            bar.set_position(first);
            Progress::with_output(first, total, batch, Output::Bar(bar))
        } else {
            Progress::lines(first, total, batch, Duration::from_secs(10))
        }
    }

    /// Plain lines, one per `every` (and at the first and last steps).
    pub fn lines(first: u64, total: u64, batch: usize, every: Duration) -> Progress {
        let output = Output::Lines { every, last: None };
        Progress::with_output(first, total, batch, output)
    }

    fn with_output(first: u64, total: u64, batch: usize, output: Output) -> Progress {
        Progress {
            first,
            total,
            batch,
            started: Instant::now(),
            warm: None,
            estimated: false,
            output,
        }
    }

    /// Step `step` is done; `losses` describes it. Returns the plain line when one is due.
    pub fn update(&mut self, step: u64, losses: &str) -> Option<String> {
        let now = Instant::now();
        if step == self.first + 1 {
            self.warm = Some(now);
        }
        match &mut self.output {
            Output::Bar(bar) => {
                bar.set_position(step);
                bar.set_message(losses.to_string());
                None
            }
            Output::Lines { every, last } => {
                let due = last.is_none_or(|t| now - t >= *every) || step == self.total;
                if !due {
                    return None;
                }
                *last = Some(now);
                let line = self.line(step, losses, now);
                say(&line);
                Some(line)
            }
        }
    }

    /// `step 120/10000  D 1.234 G 0.567 bCR 0.012  38.2 img/s  elapsed 1 min 02 s  ETA 1 h 02 min`
    fn line(&self, step: u64, losses: &str, now: Instant) -> String {
        let elapsed = now - self.started;
        let done = step.saturating_sub(self.first);
        let per_second = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let eta = Duration::from_secs_f64(self.total.saturating_sub(step) as f64 / per_second);
        format!(
            "step {step}/{}  {losses}  {:.1} img/s  elapsed {}  ETA {}",
            self.total,
            per_second * self.batch as f64,
            human(elapsed),
            human(eta)
        )
    }

    /// Once, after the warm-up step and `TIMED_STEPS` (3) more: the measured pace and how long
    /// the rest of the run takes at it. None before then, after it, or when the run is too
    /// short to time.
    pub fn estimate(&mut self, step: u64) -> Option<Estimate> {
        let warm = self.warm?;
        if self.estimated || step < self.first + 1 + TIMED_STEPS {
            return None;
        }
        self.estimated = true;
        let per_step = warm.elapsed() / (step - self.first - 1) as u32;
        let steps_left = self.total.saturating_sub(step);
        Some(Estimate {
            per_step,
            steps_left,
            left: per_step * steps_left.min(u32::MAX as u64) as u32,
        })
    }

    /// Prints a message without breaking the bar.
    pub fn println(&self, message: &str) {
        match &self.output {
            Output::Bar(bar) => bar.println(message),
            Output::Lines { .. } => say(message),
        }
    }

    /// Leaves the bar (if any) where it stands, so the lines printed after it follow it.
    pub fn finish(&self) {
        if let Output::Bar(bar) = &self.output {
            bar.abandon();
        }
    }
}

/// Prints a line on standard output, ignoring a closed pipe (`| head`, or a `tee` stopped by the
/// same Ctrl-C that asked the run to save): a lost line must not lose the run.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// `850 ms`, `42 s`, `14 min 05 s`, `3 h 07 min`, `2 d 06 h`.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0 => format!("{} ms", duration.as_millis()),
        1..60 => format!("{:.1} s", duration.as_secs_f64()),
        60..3600 => format!("{} min {:02} s", seconds / 60, seconds % 60),
        3600..86400 => format!("{} h {:02} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {:02} h", seconds / 86400, seconds % 86400 / 3600),
    }
}
