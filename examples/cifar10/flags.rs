//! The training example's flags: parsed, and checked before any work starts.

use std::path::PathBuf;
use vitgan::data::DatasetKind;

pub const USAGE: &str = "\
usage: cifar10 [flags]
  --device auto|cpu|gpu     where to train (auto: the GPU when an adapter exists)   [auto]
  --preset cifar|tiny       model size                        [cifar on a GPU, tiny on a CPU]
  --dataset auto|cifar10|fashion-mnist|synthetic                                    [auto]
  --data DIR                a folder with CIFAR-10's data_batch_*.bin files
  --cache DIR               where a downloaded CIFAR-10 is kept          [~/.cache/vitgan]
  --steps N                 training steps in total (a resumed run counts on)       [10000]
  --batch N                 images per step                                         [32]
  --lr X                    Adam learning rate of G and D, above 0        [preset: 0.002]
  --bcr X                   weight of both bCR terms, 0 or more       [preset: 10; tiny 1]
  --seed N                  seed of every random draw (a resumed run keeps its own)  [0]
  --out DIR                 output folder                               [runs/<preset>]
  --resume                  continue from DIR/checkpoint.safetensors (the log is cut back
                            to its step)
  --overwrite               delete an earlier run in DIR and start afresh
  --sample-every N          sample grid, SWD and loss plot every N steps            [500]
  --checkpoint-every N      checkpoint every N steps                                [1000]
  --export-samples N        after training, write N single-image PNGs to DIR/samples/
Ctrl-C, SIGTERM or SIGHUP saves a checkpoint and exits (130, 143, 129); a second one exits
at once. Progress is a bar on a terminal, plain lines every 10 s in a file or pipe.";

pub struct Args {
    pub device: String,
    pub preset: Option<String>,
    pub dataset: DatasetKind,
    pub data: Option<PathBuf>,
    pub cache: PathBuf,
    pub steps: u64,
    pub batch: usize,
    pub lr: Option<f32>,
    pub bcr: Option<f32>,
    pub seed: Option<u64>,
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub overwrite: bool,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    pub export: usize,
}

pub fn parse_args() -> Result<Args, String> {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut a = Args {
        device: "auto".into(),
        preset: None,
        dataset: DatasetKind::Auto,
        data: None,
        cache: home.join(".cache/vitgan"),
        steps: 10_000,
        batch: 32,
        lr: None,
        bcr: None,
        seed: None,
        out: None,
        resume: false,
        overwrite: false,
        sample_every: 500,
        checkpoint_every: 1000,
        export: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} expects a value\n{USAGE}"));
        fn number<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{flag} expects a number, found {v:?}"))
        }
        match flag.as_str() {
            "--device" => a.device = value()?,
            "--preset" => a.preset = Some(value()?),
            "--dataset" => a.dataset = value()?.parse()?,
            "--data" => a.data = Some(PathBuf::from(value()?)),
            "--cache" => a.cache = PathBuf::from(value()?),
            "--steps" => a.steps = number(&flag, value()?)?,
            "--batch" => a.batch = number(&flag, value()?)?,
            "--lr" => a.lr = Some(number(&flag, value()?)?),
            "--bcr" => a.bcr = Some(number(&flag, value()?)?),
            "--seed" => a.seed = Some(number(&flag, value()?)?),
            "--out" => a.out = Some(PathBuf::from(value()?)),
            "--resume" => a.resume = true,
            "--overwrite" => a.overwrite = true,
            "--sample-every" => a.sample_every = number(&flag, value()?)?,
            "--checkpoint-every" => a.checkpoint_every = number(&flag, value()?)?,
            "--export-samples" => a.export = number(&flag, value()?)?,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    if a.batch == 0 || a.sample_every == 0 || a.checkpoint_every == 0 {
        return Err("--batch, --sample-every and --checkpoint-every must be at least 1".into());
    }
    if let Some(lr) = a.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(format!("--lr expects a finite number above 0, found {lr}"));
    }
    if let Some(bcr) = a.bcr.filter(|bcr| !(bcr.is_finite() && *bcr >= 0.0)) {
        return Err(format!(
            "--bcr expects a finite number of at least 0, found {bcr}"
        ));
    }
    if a.out.as_ref().is_some_and(|out| out.as_os_str().is_empty()) {
        return Err("--out expects a folder, found an empty string".into());
    }
    if a.resume && a.overwrite {
        return Err("--resume continues the run in --out, --overwrite deletes it: pass one".into());
    }
    Ok(a)
}
