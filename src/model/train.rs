//! The training step (vitgan-spec section 7): a D step on augmented real and generated images
//! with balanced consistency regularization, then a G step through D, then the generator EMA.
//! Everything a run needs to continue after a stop is in [`Trainer`] and its checkpoint.

use super::bcr::bcr_loss;
use super::diffaugment::{diff_augment, AugmentParams};
use super::losses::{discriminator_loss, generator_loss};
use super::{Config, Discriminator, Generator, Mode};
use crate::checkpoint::{load_checkpoint, save_checkpoint};
use crate::nn::adam::Adam;
use crate::nn::ema::{ema_beta, ema_update};
use crate::nn::{
    load_buffers, load_parameters, named_buffers, named_parameters, to_device, with_frozen,
};
use crate::{no_grad, Device, Error, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::Path;

/// What one training step measured (read back from the device once per step).
#[derive(Clone, Copy, Debug)]
pub struct StepStats {
    /// The adversarial part of D's loss.
    pub loss_d: f32,
    /// The weighted bCR terms added to it.
    pub bcr: f32,
    pub loss_g: f32,
    /// Mean logits of D on (augmented) real and generated images in the D step.
    pub d_real: f32,
    pub d_fake: f32,
}

/// The two networks, the EMA generator, both optimizers and the counters.
pub struct Trainer {
    pub cfg: Config,
    pub g: Generator,
    pub d: Discriminator,
    /// An exponential moving average of G's weights: what samples are drawn from.
    pub g_ema: Generator,
    pub opt_g: Adam,
    pub opt_d: Adam,
    /// Steps taken.
    pub step: u64,
    /// Real images seen.
    pub nimg: u64,
    /// Seed of every random draw; step `s` draws from a generator seeded by (seed, s), so a
    /// resumed run continues exactly as an uninterrupted one would.
    pub seed: u64,
    pub device: Device,
}

impl Trainer {
    pub fn new(cfg: &Config, seed: u64, device: Device) -> Trainer {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut g = Generator::new(cfg, &mut rng);
        let mut d = Discriminator::new(cfg, &mut rng);
        to_device(&mut g, device);
        to_device(&mut d, device);
        let mut g_ema = Generator::new(cfg, &mut rng);
        to_device(&mut g_ema, device);
        ema_update(&mut g_ema, &mut g, 0.0);
        let opt_g = Adam::new(&mut g, cfg.lr_g, cfg.betas, cfg.adam_eps);
        let opt_d = Adam::new(&mut d, cfg.lr_d, cfg.betas, cfg.adam_eps);
        Trainer {
            cfg: cfg.clone(),
            g,
            d,
            g_ema,
            opt_g,
            opt_d,
            step: 0,
            nimg: 0,
            seed,
            device,
        }
    }

    /// The random generator of the current step.
    pub fn step_rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.step)
    }

    fn latents(&self, batch: usize, rng: &mut StdRng) -> Tensor {
        Tensor::randn(&[batch, self.cfg.z_dim], 0.0, 1.0, rng).to_device(self.device)
    }

    fn augment(&self, x: &Tensor, rng: &mut StdRng) -> Result<Tensor, Error> {
        let (batch, size) = (x.shape()[0], x.shape()[2]);
        let params =
            AugmentParams::draw(batch, size, &self.cfg.aug_policy, self.cfg.aug_prob, rng)?;
        Ok(diff_augment(x, &params))
    }

    // ANCHOR: step
    /// One D step and one G step on the real images `real` [B, C, H, W] (on any device).
    /// Fails, naming the first tensor, if a loss or a weight stops being finite.
    pub fn train_step(&mut self, real: &Tensor) -> Result<StepStats, Error> {
        let cfg = self.cfg.clone();
        let batch = real.shape()[0];
        let real = real.to_device(self.device);
        let mut rng = self.step_rng();

        // D step: G's images are constants here. D sees [T1(x), T1(G(z)), T2(x), T2(G(z))] in
        // one call (one power iteration); T1 and T2 are independent augmentation draws. The
        // step keeps only detached values of its losses: a loss still attached would hold the
        // whole graph of the D step (D's activations on 4B images) through the G step.
        let [adversarial, consistency, d_real, d_fake] = {
            let fake = no_grad(|| self.g.forward(&self.latents(batch, &mut rng)));
            let both = Tensor::cat(&[&real, &fake, &real, &fake], 0);
            let logits = self.d.forward(&self.augment(&both, &mut rng)?, Mode::Train);
            let part = |i: usize| logits.narrow(0, i * batch, batch);
            let (d_real, d_fake, d_real2, d_fake2) = (part(0), part(1), part(2), part(3));
            let adversarial = discriminator_loss(&d_real, &d_fake);
            let consistency = bcr_loss(&d_real, &d_real2)
                .mul_scalar(cfg.bcr_real)
                .add(&bcr_loss(&d_fake, &d_fake2).mul_scalar(cfg.bcr_fake));
            let grads = adversarial.add(&consistency).backward();
            self.opt_d.step(&mut self.d, &grads);
            [adversarial, consistency, d_real, d_fake].map(|t| t.detach())
        };

        // G step: a fresh draw of latents and augmentation; the gradient flows through D and
        // the augmentation into G. D is frozen meanwhile: its weights' gradients would be
        // dropped anyway, so the backward pass skips computing them.
        let loss_g = {
            let images = self.g.forward(&self.latents(batch, &mut rng));
            let augmented = self.augment(&images, &mut rng)?;
            let loss_g = with_frozen(&mut self.d, |d| {
                generator_loss(&d.forward(&augmented, Mode::Train))
            });
            let grads = loss_g.backward();
            self.opt_g.step(&mut self.g, &grads);
            loss_g.detach()
        };

        // The EMA generator follows G (a plain copy until ema_start_kimg).
        self.nimg += batch as u64;
        let beta = ema_beta(batch, self.nimg, cfg.ema_halflife_kimg, cfg.ema_start_kimg);
        ema_update(&mut self.g_ema, &mut self.g, beta);
        self.step += 1;

        // One readback for the five numbers: each wait for the GPU costs a round trip.
        let scalars = [
            adversarial,
            consistency,
            loss_g,
            d_real.mean_all(),
            d_fake.mean_all(),
        ];
        let parts: Vec<Tensor> = scalars.iter().map(|t| t.reshape(&[1])).collect();
        let values = Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0).to_vec();
        let stats = StepStats {
            loss_d: values[0],
            bcr: values[1],
            loss_g: values[2],
            d_real: values[3],
            d_fake: values[4],
        };
        self.check_finite(&stats, &real)?;
        Ok(stats)
    }
    // ANCHOR_END: step

    /// After a non-finite loss: which loss, and the first tensor that is not finite, looking
    /// where the values came from: the real images, then G's weights, then D's. (Reading only
    /// the three losses each step keeps the check cheap; the search runs only on failure.)
    fn check_finite(&mut self, stats: &StepStats, real: &Tensor) -> Result<(), Error> {
        let losses = [
            ("loss_d", stats.loss_d),
            ("bcr", stats.bcr),
            ("loss_g", stats.loss_g),
        ];
        let Some((name, value)) = losses.iter().find(|(_, v)| !v.is_finite()) else {
            return Ok(());
        };
        let mut culprit = format!("{name} = {value}");
        let g = named_parameters(&mut self.g)
            .into_iter()
            .map(|(n, t)| (format!("G.{n}"), t));
        let d = named_parameters(&mut self.d)
            .into_iter()
            .map(|(n, t)| (format!("D.{n}"), t));
        let tensors = std::iter::once(("the real images".to_string(), real.clone()))
            .chain(g)
            .chain(d);
        if let Some(tensor) = first_non_finite(tensors) {
            culprit = format!("{culprit}; the first non-finite weight is {tensor}");
        }
        Err(Error::Diverged {
            step: self.step,
            culprit,
        })
    }

    /// Images from the EMA generator for latents `z` (no graph).
    pub fn sample(&self, z: &Tensor) -> Tensor {
        no_grad(|| self.g_ema.forward(&z.to_device(self.device)))
    }

    // ANCHOR: checkpoint
    /// Everything needed to continue: G (reference names), D with its ISN buffers, G's EMA,
    /// both Adam states, the counters and the seed. Written atomically.
    pub fn save(&mut self, path: &Path) -> Result<(), Error> {
        let mut tensors = Vec::new();
        let mut add = |prefix: &str, list: Vec<(String, Tensor)>| {
            tensors.extend(list.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t)));
        };
        add("G.", named_parameters(&mut self.g));
        add("D.", named_parameters(&mut self.d));
        add("D.", named_buffers(&mut self.d));
        add("G_ema.", named_parameters(&mut self.g_ema));
        add("opt_g.", self.opt_g.state());
        add("opt_d.", self.opt_d.state());
        let metadata = HashMap::from([
            ("step".to_string(), self.step.to_string()),
            ("nimg".to_string(), self.nimg.to_string()),
            ("seed".to_string(), self.seed.to_string()),
            ("opt_g.step".to_string(), self.opt_g.step.to_string()),
            ("opt_d.step".to_string(), self.opt_d.step.to_string()),
            ("preset".to_string(), self.cfg.name.clone()),
            ("config".to_string(), self.cfg.to_json().to_string()),
        ]);
        save_checkpoint(path, &tensors, &metadata)
    }
    // ANCHOR_END: checkpoint

    /// Restores a checkpoint written by [`Trainer::save`] for the same configuration. Checks
    /// every tensor (its shape, and that its values are finite) before changing anything, so a
    /// mismatched or damaged file leaves the trainer as it was.
    pub fn load(&mut self, path: &Path) -> Result<(), Error> {
        let (tensors, metadata) = load_checkpoint(path)?;
        let refused = |problem: String| Error::Checkpoint {
            path: path.to_path_buf(),
            problem,
        };
        if let Some(preset) = metadata.get("preset").filter(|p| **p != self.cfg.name) {
            return Err(refused(format!(
                "written by a run of the {preset:?} preset, this run's is {:?} \
                 (pass --preset {preset})",
                self.cfg.name
            )));
        }
        let mut sorted: Vec<(String, Tensor)> = tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(name) = first_non_finite(sorted) {
            return Err(refused(format!(
                "tensor {name} holds values that are not finite (NaN or infinite): the run \
                 that wrote it had diverged"
            )));
        }
        let counter = |key: &str| -> Result<u64, Error> {
            metadata
                .get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| refused(format!("the checkpoint has no valid {key:?} entry")))
        };
        let (step, nimg, seed) = (counter("step")?, counter("nimg")?, counter("seed")?);
        let (g_step, d_step) = (counter("opt_g.step")?, counter("opt_d.step")?);
        let differences = config_differences(&metadata, &self.cfg);
        let context = |e: Error| match differences.is_empty() {
            true => refused(e.to_string()),
            false => refused(format!(
                "{e} (the checkpoint was trained with {}: pass the same with --set)",
                differences.join(" ")
            )),
        };
        // Load into fresh copies first: nothing changes unless everything fits.
        let mut rng = StdRng::seed_from_u64(0);
        let (mut g, mut d) = (
            Generator::new(&self.cfg, &mut rng),
            Discriminator::new(&self.cfg, &mut rng),
        );
        let mut g_ema = Generator::new(&self.cfg, &mut rng);
        to_device(&mut g, self.device);
        to_device(&mut d, self.device);
        to_device(&mut g_ema, self.device);
        load_parameters(&mut g, &tensors, "G.").map_err(context)?;
        load_parameters(&mut d, &tensors, "D.").map_err(context)?;
        load_buffers(&mut d, &tensors, "D.").map_err(context)?;
        load_parameters(&mut g_ema, &tensors, "G_ema.").map_err(context)?;
        let mut opt_g = Adam::new(&mut g, self.cfg.lr_g, self.cfg.betas, self.cfg.adam_eps);
        let mut opt_d = Adam::new(&mut d, self.cfg.lr_d, self.cfg.betas, self.cfg.adam_eps);
        opt_g
            .load_state(&strip(&tensors, "opt_g."), g_step)
            .map_err(context)?;
        opt_d
            .load_state(&strip(&tensors, "opt_d."), d_step)
            .map_err(context)?;
        (self.g, self.d, self.g_ema, self.opt_g, self.opt_d) = (g, d, g_ema, opt_g, opt_d);
        (self.step, self.nimg, self.seed) = (step, nimg, seed);
        Ok(())
    }
}

/// The name of the first tensor holding a NaN or an infinity.
fn first_non_finite(tensors: impl IntoIterator<Item = (String, Tensor)>) -> Option<String> {
    tensors
        .into_iter()
        .find(|(_, t)| t.to_vec().iter().any(|v| !v.is_finite()))
        .map(|(name, _)| name)
}

/// `key=value` for every field in which the checkpoint's stored configuration differs from
/// `cfg` (none when the checkpoint stores none).
fn config_differences(metadata: &HashMap<String, String>, cfg: &Config) -> Vec<String> {
    let stored = metadata
        .get("config")
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok());
    let Some(stored) = stored else {
        return Vec::new();
    };
    Config::FIELDS
        .iter()
        .filter_map(|key| {
            let value = stored.get(*key)?;
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), String::from);
            (Some(value) != cfg.get_json(key).as_ref()).then(|| format!("{key}={text}"))
        })
        .collect()
}

/// The entries under `prefix`, with the prefix removed.
fn strip(tensors: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    tensors
        .iter()
        .filter_map(|(k, t)| k.strip_prefix(prefix).map(|k| (k.to_string(), t.clone())))
        .collect()
}
