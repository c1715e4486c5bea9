//! Running the training example as a user does (book chapter "Training"): `cargo test` builds
//! the examples next to the test binaries, so these helpers run the real one.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An example binary built beside this test: target/<profile>/examples/<name>.
pub fn binary(name: &str) -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let binary = deps.parent().unwrap().join("examples").join(name);
    assert!(
        binary.exists(),
        "the example was not built at {}",
        binary.display()
    );
    binary
}

/// The training example, with downloads switched off.
pub fn example() -> Command {
    let mut command = Command::new(binary("cifar10"));
    command.env("VITGAN_NO_DOWNLOAD", "1");
    command
}

/// A fresh folder name under the temporary directory (the folder itself does not exist).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vitgan-example-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Standard output and standard error together.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The flags of a tiny model on the procedural set, on the CPU, two images a step.
pub fn tiny_flags(out: &Path) -> Vec<String> {
    let flags = [
        "--device",
        "cpu",
        "--preset",
        "tiny",
        "--dataset",
        "synthetic",
        "--batch",
        "2",
        "--out",
    ];
    let mut flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    flags.push(out.to_str().unwrap().to_string());
    flags
}

/// A few steps of a tiny model on the procedural set, sampled every 2 steps.
pub fn short_run(out: &Path, extra: &[&str]) -> Output {
    example()
        .args(tiny_flags(out))
        .args(["--sample-every", "2"])
        .args(extra)
        .output()
        .unwrap()
}

/// A run too long to finish, its output piped; `flags` replace the tiny ones when given.
pub fn spawn_long(flags: Vec<String>, extra: &[&str]) -> Child {
    example()
        .args(flags)
        .args(["--steps", "1000000", "--checkpoint-every", "1000000"])
        .args(["--sample-every", "1000000"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The steps of the rows of a log.csv (none when it does not exist).
pub fn log_steps(log: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .skip(1)
        .map(|row| row.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// Waits until the run has logged `rows` steps (at most two minutes).
pub fn wait_for_rows(log: &Path, rows: usize) {
    let started = Instant::now();
    while log_steps(log).len() < rows {
        assert!(
            started.elapsed().as_secs() < 120,
            "training did not reach {rows} steps"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (TERM, HUP, INT) to the process.
pub fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// The `step` a checkpoint was saved at (its metadata).
pub fn checkpoint_step(path: &Path) -> u64 {
    let (_, metadata) = vitgan::checkpoint::load_checkpoint(path).unwrap();
    metadata["step"].parse().unwrap()
}
