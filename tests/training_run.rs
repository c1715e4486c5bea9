//! A training run as people really run it (book chapter "Training", section "A run that
//! survives how it is run"): stopped by `kill`, docker or a closed terminal, its output sent
//! to a file, resumed after a crash, started in a folder that already holds a run, given bad
//! numbers, or started twice on one folder.

mod common;

use common::example::{checkpoint_step, example, log_steps, scratch, send, short_run};
use common::example::{spawn_long, text, tiny_flags, wait_for_rows};
use std::path::Path;

/// Starts a long tiny run, sends `signal` once it has logged `rows` steps, and returns the
/// output once it exits.
#[cfg(unix)]
fn stopped_by(out: &Path, signal: &str, rows: usize) -> std::process::Output {
    let child = spawn_long(tiny_flags(out), &[]);
    wait_for_rows(&out.join("log.csv"), rows);
    send(&child, signal);
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn ctrl_c_sigterm_and_sighup_save_the_step_they_stop_at_and_exit_130_143_and_129() {
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let out = scratch(&format!("signal-{signal}"));
        let output = stopped_by(&out, signal, 3);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(code), "{said}");
        assert!(said.contains(&format!("SIG{signal} received")), "{said}");
        let steps = log_steps(&out.join("log.csv"));
        let saved = checkpoint_step(&out.join("checkpoint.safetensors"));
        assert!(saved >= 3, "saved step {saved}");
        assert_eq!(Some(&saved), steps.last(), "{said}");
        assert!(
            said.contains(&format!("stopped by SIG{signal}: saved step {saved}")),
            "{said}"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_second_signal_exits_at_once_without_saving() {
    // The paper-sized model on the CPU: a step takes long enough to signal twice within one.
    let out = scratch("twice");
    let mut flags = tiny_flags(&out);
    flags[3] = "cifar".into();
    let child = spawn_long(flags, &[]);
    // Steps 1 and 4 to 5 give the time estimate, and on a CPU the hint for a shorter run.
    wait_for_rows(&out.join("log.csv"), 5);
    send(&child, "TERM");
    std::thread::sleep(std::time::Duration::from_millis(100));
    send(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(143), "{said}");
    assert!(
        said.contains("SIGTERM again: exiting without saving"),
        "{said}"
    );
    assert!(!out.join("checkpoint.safetensors").exists(), "{said}");
    assert!(said.contains("time: "), "{said}");
    assert!(
        said.contains("--preset tiny trains a smaller model"),
        "{said}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn redirected_output_gets_progress_lines_and_every_swd_line() {
    let out = scratch("redirected");
    let output = short_run(&out, &["--steps", "6"]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    let floor = "SWD x1e3 between two draws of 256 real images: ";
    for line in [
        "step 1/6  D ",
        "step 6/6  D ",
        "img/s",
        "ETA",
        "time: ",
        floor,
    ] {
        assert!(said.contains(line), "{line:?} missing:\n{said}");
    }
    for step in [2, 4, 6] {
        assert!(said.contains(&format!("step {step}: SWD x1e3")), "{said}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_closed_output_pipe_does_not_stop_the_run() {
    // `| head -1`, or a `tee` that the same Ctrl-C stopped: nobody reads the output any more.
    let out = scratch("closed-pipe");
    let mut child = example()
        .args(tiny_flags(&out))
        .args(["--steps", "30", "--sample-every", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(log_steps(&out.join("log.csv")).len(), 30);
    assert_eq!(checkpoint_step(&out.join("checkpoint.safetensors")), 30);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_resumed_run_cuts_the_log_back_to_its_checkpoint() {
    let out = scratch("cut-log");
    let checkpoint = out.join("checkpoint.safetensors");
    assert!(short_run(&out, &["--steps", "3"]).status.success());
    let at_step_3 = std::fs::read(&checkpoint).unwrap();
    assert!(short_run(&out, &["--steps", "6", "--resume"])
        .status
        .success());
    // A crash after step 6 was logged but before it was saved: the checkpoint is step 3's.
    std::fs::write(&checkpoint, at_step_3).unwrap();
    let resumed = short_run(&out, &["--steps", "6", "--resume", "--seed", "7"]);
    let said = text(&resumed);
    assert!(resumed.status.success(), "{said}");
    assert!(said.contains("removed 3 rows after step 3"), "{said}");
    assert!(said.contains("seed: 0 (the checkpoint's"), "{said}");
    assert_eq!(log_steps(&out.join("log.csv")), [1, 2, 3, 4, 5, 6]);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_fresh_run_refuses_an_earlier_runs_folder_unless_told_to_overwrite() {
    let out = scratch("earlier");
    assert!(short_run(&out, &["--steps", "2"]).status.success());
    // Without its checkpoint the folder still holds the old run's log and samples.
    std::fs::remove_file(out.join("checkpoint.safetensors")).unwrap();
    let refused = short_run(&out, &["--steps", "3"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("holds an earlier run (log.csv"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        log_steps(&out.join("log.csv")),
        [1, 2],
        "the old log is left as it was"
    );
    let replaced = short_run(&out, &["--steps", "3", "--overwrite"]);
    assert!(replaced.status.success(), "{}", text(&replaced));
    assert_eq!(log_steps(&out.join("log.csv")), [1, 2, 3]);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_numbers_and_folders_are_refused_before_any_work() {
    let out = scratch("bad-numbers");
    let cases: [(&[&str], &str); 8] = [
        (
            &["--lr", "nan"],
            "'--lr <LR>': expected a finite number above 0, found NaN",
        ),
        (
            &["--lr", "-1"],
            "'--lr <LR>': expected a finite number above 0, found -1",
        ),
        (
            &["--lr", "0"],
            "'--lr <LR>': expected a finite number above 0, found 0",
        ),
        (
            &["--bcr", "-0.5"],
            "'--bcr <BCR>': expected a finite number of at least 0, found -0.5",
        ),
        (
            &["--bcr", "inf"],
            "'--bcr <BCR>': expected a finite number of at least 0, found inf",
        ),
        (
            &["--out", ""],
            "'--out <DIR>': expected a folder, found an empty string",
        ),
        (
            &["--resume", "--overwrite"],
            "'--resume' cannot be used with '--overwrite'",
        ),
        (
            &["--set", "lr_g=-1"],
            "the tiny preset with these flags: lr_g must be a finite number above 0, found -1",
        ),
    ];
    for (flags, message) in cases {
        let output = short_run(&out, &[&["--steps", "1"], flags].concat());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flags:?}: {}",
            text(&output)
        );
        assert!(
            text(&output).contains(message),
            "{flags:?}: {}",
            text(&output)
        );
        assert!(!out.exists(), "{flags:?} wrote into the folder");
    }
}

#[test]
fn a_diverged_run_does_not_cite_a_checkpoint_it_never_wrote() {
    let out = scratch("diverged");
    let output = short_run(&out, &["--steps", "200", "--lr", "1e30"]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("training stopped at step"), "{said}");
    assert!(said.contains("no checkpoint was saved"), "{said}");
    assert!(!out.join("checkpoint.safetensors").exists());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_checkpoint_of_another_preset_or_with_nan_weights_is_refused() {
    use vitgan::checkpoint::{load_checkpoint, save_checkpoint};
    let out = scratch("bad-checkpoint");
    let checkpoint = out.join("checkpoint.safetensors");
    assert!(short_run(&out, &["--steps", "1"]).status.success());
    let mut flags = vec!["--steps", "2", "--resume", "--preset", "cifar"];
    let other = example()
        .args(tiny_flags(&out))
        .args(&flags)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(
        text(&other).contains("written by a run of the \"tiny\" preset, this run's is \"cifar\""),
        "{}",
        text(&other)
    );
    let (tensors, metadata) = load_checkpoint(&checkpoint).unwrap();
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let (name, weight) = &mut tensors[0];
    let mut values = weight.to_vec();
    values[0] = f32::NAN;
    *weight = vitgan::Tensor::from_vec(values, weight.shape());
    let name = name.clone();
    save_checkpoint(&checkpoint, &tensors, &metadata).unwrap();
    flags.truncate(3);
    let output = short_run(&out, &flags);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let expected = format!("tensor {name} holds values that are not finite");
    assert!(text(&output).contains(&expected), "{}", text(&output));
    std::fs::remove_dir_all(&out).unwrap();
}

#[cfg(unix)]
#[test]
fn two_runs_cannot_share_an_output_folder_and_a_killed_writers_temporary_is_removed() {
    let out = scratch("shared");
    std::fs::create_dir_all(&out).unwrap();
    // What a run killed while saving leaves behind.
    let stale = out.join("checkpoint.safetensors.4242-0.tmp");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let first = spawn_long(tiny_flags(&out), &[]);
    wait_for_rows(&out.join("log.csv"), 1);
    assert!(!stale.exists(), "the stale temporary is still there");
    let second = short_run(&out, &["--steps", "5", "--resume"]);
    let said = text(&second);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!("is in use by process {}", first.id())),
        "{said}"
    );
    send(&first, "TERM");
    let output = first.wait_with_output().unwrap();
    assert!(text(&output).contains("removed "), "{}", text(&output));
    assert!(text(&output).contains("4242-0.tmp, left by a run that was killed while saving"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_first_run_on_the_cpu_picks_the_tiny_preset() {
    let folder = scratch("first-run");
    std::fs::create_dir_all(&folder).unwrap();
    let output = example()
        .current_dir(&folder)
        .args([
            "--device",
            "cpu",
            "--dataset",
            "synthetic",
            "--batch",
            "2",
            "--steps",
            "1",
        ])
        .output()
        .unwrap();
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("preset: tiny (training on the CPU"), "{said}");
    assert!(
        folder.join("runs/tiny/checkpoint.safetensors").exists(),
        "{said}"
    );
    std::fs::remove_dir_all(&folder).unwrap();
}

#[cfg(feature = "gpu")]
#[test]
fn device_gpu_names_the_adapter() {
    if !common::gpu_available() {
        return;
    }
    let out = scratch("gpu-name");
    let mut flags = tiny_flags(&out);
    flags[1] = "gpu".into();
    let output = example()
        .args(flags)
        .args(["--steps", "0"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let name = vitgan::backend::inspect::gpu::context()
        .unwrap()
        .adapter_name();
    assert!(
        text(&output).contains(&format!("device: the GPU ({name})")),
        "{}",
        text(&output)
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn reference_check_names_a_bad_device_in_plain_words() {
    let check = common::example::binary("reference_check");
    let cases: [(&[&str], &str); 3] = [
        (
            &["x", "--device", "tpu"],
            "invalid value 'tpu' for '--device <DEVICE>'",
        ),
        (
            &["x", "--device"],
            "a value is required for '--device <DEVICE>'",
        ),
        (
            &[],
            "required arguments were not provided:\n  <GOLDEN.safetensors>",
        ),
    ];
    for (args, message) in cases {
        let output = std::process::Command::new(&check)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(text(&output).contains(message), "{}", text(&output));
        assert!(!text(&output).contains("Some("), "{}", text(&output));
    }
}
