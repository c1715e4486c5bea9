//! The training example as a user runs it (book chapter "Training"): bad flags, folders and
//! checkpoints get a message and a non-zero exit, and a short run writes what it promises.
//! `cargo test` builds the examples next to the test binaries, so the test runs the real one.

mod common;

use common::example::{example, scratch, short_run, text};

#[test]
fn unknown_flags_and_bad_values_are_refused() {
    let output = example().arg("--bogus").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("unexpected argument '--bogus' found"),
        "{}",
        text(&output)
    );
    let output = example().args(["--steps", "many"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("invalid value 'many' for '--steps <STEPS>'"),
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
        "swd.png",
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
        text(&output).contains("not a valid safetensors file"),
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

#[test]
fn help_lists_every_config_field_and_set_changes_the_model() {
    let help = example().arg("--help").output().unwrap();
    assert!(help.status.success());
    for field in vitgan::model::Config::FIELDS {
        assert!(text(&help).contains(field), "--help does not list {field}");
    }
    let out = scratch("set");
    let output = short_run(
        &out,
        &["--steps", "1", "--set", "d_depth=1", "--set", "g_mlp=32"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let checkpoint = out.join("checkpoint.safetensors");
    let (tensors, _) = vitgan::checkpoint::load_checkpoint(&checkpoint).unwrap();
    assert!(tensors.keys().any(|k| k.starts_with("D.blocks.0.")));
    assert!(
        !tensors.keys().any(|k| k.starts_with("D.blocks.1.")),
        "d_depth=1 was ignored"
    );
    let widths: Vec<usize> = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("G.blocks.0.mlp") && k.ends_with("bias"))
        .map(|(_, t)| t.shape()[0])
        .collect();
    assert!(widths.contains(&32), "g_mlp=32 was ignored: {widths:?}");
    std::fs::remove_dir_all(&out).unwrap();
}
