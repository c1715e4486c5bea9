//! What a training run writes: PNG grids and single samples that decode to the expected pixels,
//! a loss plot of the documented size, a CSV log with one header, and errors that name the file.

mod common;

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use vitgan::images::{
    append_csv_row, save_grid, save_image, save_loss_plot, GAP, GAP_VALUE, PLOT_HEIGHT, PLOT_WIDTH,
};
use vitgan::run::{read_log, LogRow, LOG_HEADER};
use vitgan::Tensor;

/// A fresh folder for one test, removed when the test is done.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("vitgan-images-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Decoded {
    width: usize,
    height: usize,
    channels: usize,
    pixels: Vec<u8>,
}

impl Decoded {
    fn at(&self, x: usize, y: usize) -> &[u8] {
        let at = (y * self.width + x) * self.channels;
        &self.pixels[at..at + self.channels]
    }
}

fn decode(path: &Path) -> Decoded {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(BufReader::new(file)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected colour type {other:?}"),
    };
    pixels.truncate(info.buffer_size());
    Decoded {
        width: info.width as usize,
        height: info.height as usize,
        channels,
        pixels,
    }
}

/// `n` images `[3, h, w]`, each constant per channel, `colours[i]` giving image i's channels.
fn constant_images(colours: &[[f32; 3]], h: usize, w: usize) -> Tensor {
    let values = colours
        .iter()
        .flat_map(|colour| colour.iter().flat_map(|&v| std::iter::repeat_n(v, h * w)))
        .collect();
    Tensor::from_vec(values, &[colours.len(), 3, h, w])
}

#[test]
fn a_grid_decodes_to_its_tiles_gaps_and_clamped_values() {
    let scratch = Scratch::new("grid");
    let (h, w) = (4, 6);
    let colours = [
        [-1.0, -1.0, -1.0],
        [1.0, 0.0, -1.0],
        [3.0, -7.0, 0.5],
        [-1.0, 1.0, -1.0],
        [-0.5, -0.5, -0.5],
    ];
    let path = scratch.path("grid.png");
    save_grid(&path, &constant_images(&colours, h, w), 3).unwrap();
    let png = decode(&path);
    assert_eq!(png.channels, 3);
    assert_eq!((png.width, png.height), (3 * w + 2 * GAP, 2 * h + GAP));
    // Tile i's top-left pixel and its bottom-right one.
    let corner = |i: usize| ((i % 3) * (w + GAP), (i / 3) * (h + GAP));
    let expected: [[u8; 3]; 5] = [
        [0, 0, 0],
        [255, 128, 0],
        [255, 0, 191],
        [0, 255, 0],
        [64, 64, 64],
    ];
    for (i, colour) in expected.iter().enumerate() {
        let (x, y) = corner(i);
        assert_eq!(png.at(x, y), colour, "tile {i}");
        assert_eq!(png.at(x + w - 1, y + h - 1), colour, "tile {i}");
    }
    let gap = [GAP_VALUE; 3];
    assert_eq!(png.at(w, 0), gap, "between tiles 0 and 1");
    assert_eq!(png.at(w + GAP - 1, h - 1), gap, "between tiles 0 and 1");
    assert_eq!(png.at(0, h), gap, "between the rows");
    let (x, y) = corner(5);
    assert_eq!(
        png.at(x + 1, y + 1),
        gap,
        "the empty tile after the last image"
    );
    assert_eq!(
        scratch.files(),
        ["grid.png"],
        "no temporary file is left behind"
    );
}

#[test]
fn grey_images_give_a_grey_png_and_few_images_a_narrow_grid() {
    let scratch = Scratch::new("grey");
    let path = scratch.path("grey.png");
    let images = Tensor::from_vec(
        vec![-1.0, 0.0, 1.0, 0.2, 0.0, -1.0, 1.0, 1.0],
        &[2, 1, 2, 2],
    );
    save_grid(&path, &images, 8).unwrap();
    let png = decode(&path);
    assert_eq!((png.width, png.height, png.channels), (2 + GAP + 2, 2, 1));
    assert_eq!(png.pixels[..4], [0, 128, GAP_VALUE, GAP_VALUE]);
    assert_eq!(png.at(0, 1), [255]);
    assert_eq!(png.at(1, 1), [153]);
    assert_eq!(png.at(2 + GAP, 0), [128]);
}

#[test]
fn a_single_image_is_saved_at_its_own_size_and_overwrites() {
    let scratch = Scratch::new("single");
    let path = scratch.path("sample.png");
    let image = Tensor::from_vec(
        (0..3 * 5 * 7).map(|i| i as f32 / 52.0 - 1.0).collect(),
        &[3, 5, 7],
    );
    save_image(&path, &image).unwrap();
    save_image(&path, &image).unwrap();
    let png = decode(&path);
    assert_eq!((png.width, png.height, png.channels), (7, 5, 3));
    // Channel c of pixel (x, y) holds element c * 35 + y * 7 + x.
    assert_eq!(png.at(0, 0), [0, 86, 172]);
    assert_eq!(png.at(6, 4), [83, 169, 255]);
    assert_eq!(scratch.files(), ["sample.png"]);
}

#[test]
fn the_loss_plot_decodes_at_the_documented_size_and_draws_every_series() {
    let scratch = Scratch::new("plot");
    let path = scratch.path("losses.png");
    let generator: Vec<(f64, f64)> = (0..200)
        .map(|i| (i as f64 * 50.0, 2.0 + (i as f64 * 0.1).sin()))
        .collect();
    let discriminator: Vec<(f64, f64)> = (0..200)
        .map(|i| {
            (
                i as f64 * 50.0,
                if i == 100 {
                    f64::NAN
                } else {
                    0.5 + 0.001 * i as f64
                },
            )
        })
        .collect();
    let series: [(&str, &[(f64, f64)]); 3] = [
        ("generator", &generator),
        ("discriminator", &discriminator),
        ("empty", &[]),
    ];
    save_loss_plot(&path, &series, "ViTGAN losses").unwrap();
    let png = decode(&path);
    assert_eq!(
        (png.width, png.height, png.channels),
        (PLOT_WIDTH, PLOT_HEIGHT, 3)
    );
    let count = |colour: [u8; 3]| png.pixels.chunks_exact(3).filter(|p| *p == colour).count();
    // Matplotlib's first two colours: long lines, not just the legend's swatches.
    assert!(count([31, 119, 180]) > 500, "generator line");
    assert!(count([255, 127, 14]) > 500, "discriminator line");
    assert!(count([0, 0, 0]) > 500, "axes and text");
    // Degenerate input still gives a plot: nothing, one point, a constant.
    for series in [
        &[][..],
        &[("one", &[(1.0, 1.0)][..])],
        &[("flat", &[(0.0, 3.0), (1.0, 3.0)][..])],
    ] {
        save_loss_plot(&path, series, "").unwrap();
        let png = decode(&path);
        assert_eq!((png.width, png.height), (PLOT_WIDTH, PLOT_HEIGHT));
    }
    assert_eq!(scratch.files(), ["losses.png"]);
}

#[test]
fn the_csv_header_is_written_once_and_a_different_one_is_refused() {
    let scratch = Scratch::new("csv");
    let path = scratch.path("log.csv");
    for step in 0..3 {
        append_csv_row(&path, "step,loss_d,loss_g", &format!("{step},0.5,1.5")).unwrap();
    }
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "step,loss_d,loss_g\n0,0.5,1.5\n1,0.5,1.5\n2,0.5,1.5\n"
    );
    let error = append_csv_row(&path, "step,swd", "3,1.0")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&path.display().to_string()) && error.contains("step,loss_d,loss_g"),
        "{error}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "the refused row is not written"
    );
}

#[test]
fn errors_name_the_file() {
    let scratch = Scratch::new("errors");
    let missing = scratch.path("no such folder");
    let image = constant_images(&[[0.0; 3]], 2, 2);
    let in_missing = |file: &str| missing.join(file);
    let errors = [
        save_grid(&in_missing("grid.png"), &image, 1).unwrap_err(),
        save_image(&in_missing("one.png"), &image.reshape(&[3, 2, 2])).unwrap_err(),
        save_loss_plot(&in_missing("plot.png"), &[], "t").unwrap_err(),
        append_csv_row(&in_missing("log.csv"), "a", "1").unwrap_err(),
    ]
    .map(|error| error.to_string());
    for (error, file) in errors
        .iter()
        .zip(["grid.png", "one.png", "plot.png", "log.csv"])
    {
        assert!(
            error.contains(&in_missing(file).display().to_string()),
            "{error}"
        );
    }
    let wrong = save_grid(&scratch.path("bad.png"), &Tensor::zeros(&[2, 4, 2, 2]), 1)
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("bad.png") && wrong.contains("[2, 4, 2, 2]"),
        "{wrong}"
    );
    let wrong = save_image(&scratch.path("bad.png"), &image)
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("[1, 3, 2, 2]"), "{wrong}");
    assert!(scratch.files().is_empty(), "{:?}", scratch.files());
}

#[cfg(feature = "gpu")]
#[test]
fn a_grid_of_gpu_images_is_read_back() {
    if !common::gpu_available() {
        return;
    }
    let scratch = Scratch::new("gpu");
    let images = constant_images(&[[1.0, 0.0, -1.0]], 2, 3);
    let (on_cpu, on_gpu) = (scratch.path("cpu.png"), scratch.path("gpu.png"));
    save_grid(&on_cpu, &images, 1).unwrap();
    save_grid(&on_gpu, &images.to_device(vitgan::Device::Gpu), 1).unwrap();
    assert_eq!(fs::read(on_cpu).unwrap(), fs::read(on_gpu).unwrap());
}

#[test]
fn the_training_log_reads_back_as_written_with_swd_only_where_logged() {
    let scratch = Scratch::new("log");
    let path = scratch.path("log.csv");
    append_csv_row(&path, LOG_HEADER, "1,1.25,0.5,0.75,0.25,-0.5,").unwrap();
    append_csv_row(&path, LOG_HEADER, "2,1.5,0.25,0.5,0.5,-0.25,48.5").unwrap();
    let rows = read_log(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[1],
        LogRow {
            step: 2,
            loss_d: 1.5,
            loss_g: 0.5,
            bcr: Some(0.25),
            d_real: Some(0.5),
            d_fake: Some(-0.25),
            swd: Some(48.5),
        }
    );
    assert_eq!(rows[0].swd, None);
    assert!(read_log(&scratch.path("missing.csv")).is_err());
}
