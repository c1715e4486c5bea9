//! The training example as a user runs it (book chapter "Training"): bad flags, folders and
//! checkpoints get a message and a non-zero exit, and a short run writes what it promises.
//! `cargo test` builds the examples next to the test binaries, so the test runs the real one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example() -> Command {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/cifar10
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let binary = deps.parent().unwrap().join("examples").join("cifar10");
    assert!(
        binary.exists(),
        "the example was not built at {}",
        binary.display()
    );
    let mut command = Command::new(binary);
    command.env("VITGAN_NO_DOWNLOAD", "1");
    command
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vitgan-example-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A few steps of a tiny model on the procedural set.
fn short_run(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--device",
        "cpu",
        "--preset",
        "tiny",
        "--dataset",
        "synthetic",
        "--batch",
        "2",
    ];
    args.extend_from_slice(&["--sample-every", "2", "--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    example().args(&args).output().unwrap()
}

#[test]
fn unknown_flags_and_bad_values_are_refused() {
    let output = example().arg("--bogus").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("unknown flag \"--bogus\""),
        "{}",
        text(&output)
    );
    let output = example().args(["--steps", "many"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("--steps expects a number, found \"many\""),
        "{}",
        text(&output)
    );
    let output = example().args(["--dataset", "mnist"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("mnist"), "{}", text(&output));
}

#[test]
fn an_unwritable_output_folder_is_refused() {
    // A regular file where the folder should be.
    let file = scratch("file");
    std::fs::write(&file, b"not a folder").unwrap();
    let output = short_run(&file.join("run"), &["--steps", "1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("cannot create the output folder"),
        "{}",
        text(&output)
    );
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_short_run_writes_samples_logs_and_a_checkpoint_and_resumes() {
    let out = scratch("run");
    let output = short_run(&out, &["--steps", "2", "--export-samples", "3"]);
    assert!(output.status.success(), "{}", text(&output));
    for file in [
        "checkpoint.safetensors",
        "log.csv",
        "losses.png",
        "samples_000002.png",
        "samples/000002.png",
    ] {
        assert!(
            out.join(file).exists(),
            "{file} missing:\n{}",
            text(&output)
        );
    }
    assert!(
        text(&output).contains("dataset: the procedural set"),
        "{}",
        text(&output)
    );
    // Running again without --resume must not overwrite the checkpoint.
    let again = short_run(&out, &["--steps", "4"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("pass --resume"), "{}", text(&again));
    // With --resume it continues from step 2.
    let resumed = short_run(&out, &["--steps", "3", "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("at step 2"), "{}", text(&resumed));
    let log = std::fs::read_to_string(out.join("log.csv")).unwrap();
    assert_eq!(
        log.lines().count(),
        1 + 3,
        "a header and steps 1, 2, 3:\n{log}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_corrupt_checkpoint_is_refused_and_kept() {
    let out = scratch("corrupt");
    std::fs::create_dir_all(&out).unwrap();
    let checkpoint = out.join("checkpoint.safetensors");
    std::fs::write(&checkpoint, b"broken").unwrap();
    let output = short_run(&out, &["--steps", "1", "--resume"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("is not a valid safetensors file"),
        "{}",
        text(&output)
    );
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        b"broken",
        "the file is left as it was"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_and_exits_cleanly() {
    let out = scratch("interrupt");
    let child = example()
        .args([
            "--device",
            "cpu",
            "--preset",
            "tiny",
            "--dataset",
            "synthetic",
            "--batch",
            "2",
        ])
        .args(["--steps", "100000", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training is under way (the log has a step), then press Ctrl-C.
    let log = out.join("log.csv");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |l| l.lines().count()) < 2 {
        assert!(started.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("interrupted: saved step"),
        "{}",
        text(&output)
    );
    assert!(out.join("checkpoint.safetensors").exists());
    std::fs::remove_dir_all(&out).unwrap();
}
