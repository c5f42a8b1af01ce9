//! `--cuda-graph`: one whole update captured as a CUDA graph and replayed for every later batch of
//! the same shape (PyTorch's whole-network capture), so an update costs one graph launch and one
//! loss read instead of hundreds of launches.
//!
//! **When.** After [`WARMUP`] eager updates in a row with one batch shape (modules are loaded, the
//! allocator's cache holds the update's blocks), the next update of that shape first makes what
//! the graph keeps (static inputs, flags, and the optimizer's state if skipped steps left it
//! unmade) and runs eagerly once more, so the cache holds what the capture will ask for around
//! them; the update after it is captured and replayed. A capture never allocates from the driver:
//! a block the cache lacks is reserved and the capture tried again. A batch of another shape (an
//! epoch's short last batch) runs eagerly beside the graph; a lasting change of shape warms up
//! and captures again for it.
//!
//! **What the graph holds.** The batch is copied into static input tensors before each replay;
//! then forward under autocast, the loss, the loss scaling (AMP f16: by a device scalar written
//! before each replay) or the non-finite loss check (without a scaler), backward, the gradients
//! made dense f32 as the optimizer reads them, unscale with the overflow check on the device,
//! clipping (the global norm's factor computed on the device), and the optimizer's rule steps,
//! whose scalars (lr, bias corrections) are recomputed on the host and uploaded before each
//! replay ([`kiln_engine::cuda::CudaGraph::refresh`]), never frozen. An overflow or a non-finite
//! loss skips the rule steps on the device; after the replay the host reads the loss and that
//! flag (one sync, as the eager step's loss read), takes the optimizer's step counts back when
//! it was set, and updates the loss scaler, as the eager update does. The gradients stay
//! attached to the parameters between replays (the graph rewrites them).
//!
//! cuBLAS GEMMs and cuDNN convolutions are captured with the rest (their handles move to the
//! capture's stream for each call, with workspaces from the graph's pool); the warm-up updates
//! are what make cuDNN choose its plans, which a capture only reuses. [`CudaGraphStats`] counts
//! the vendor calls the graph holds.
//!
//! **Fallbacks**, each logged once with its reason: the CPU, scheduled training sizes
//! (`--train-img-sizes`, whose batches change shape from one to the next), a loss scaled per
//! batch (`--variable-batch-loss-scale`), data-parallel runs,
//! `--grad-accum-steps` > 1, optimizers whose step is more than rule launches (cautious masks,
//! trust ratios, lookahead, Adafactor, Muon, Kron), and any capture that fails: what the capture
//! refuses (dropout's host-side draw, a host read in a loss, a convolution shape cuDNN has no
//! plan for yet, ...) or an error a kernel or library call meets while capturing. A failed
//! capture is ended and its graph discarded before anything of it ran; the optimizer's host
//! state is put back, and the update it was for runs eagerly, as do the ones after it.

use super::objective::Objective;
use super::step::Updater;
use crate::clip::clip_grads_on_device;
use crate::optim::{densify_grads, Optimizer};
use crate::sched::GroupLr;
use crate::{Error, Result};
use kiln_engine::cuda::{self, CudaGraph};
use kiln_engine::{flag_nonfinite_, unscale_grads_by_, DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// Eager updates of one batch shape before its update is captured.
pub const WARMUP: usize = 3;
/// Captures of one update that may each reserve a block the cache lacked.
const CAPTURE_ATTEMPTS: usize = 32;

/// What `--cuda-graph` asks for: auto, on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum CudaGraphMode {
    /// Capture where the update allows it; say why not where it does not (silent on the CPU).
    #[default]
    Auto,
    /// As `Auto`, and say why not on the CPU too.
    On,
    /// Eager updates only.
    Off,
}

/// How the run's updates went, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CudaGraphStats {
    /// Updates captured (one per batch shape the graph was made for).
    pub captures: usize,
    /// Updates run by replaying a graph (the captured ones included).
    pub replays: usize,
    /// Updates run eagerly next to a graph (another batch shape).
    pub eager_beside: usize,
    /// cuBLAS and cuDNN calls in the latest captured update (0 where kiln's kernels serve).
    pub vendor_calls: usize,
    /// Why updates run eagerly, once that is known.
    pub fallback: Option<String>,
}

/// The shapes, strides and dtypes of a batch's images and targets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchKey([(Vec<usize>, Vec<usize>, DType); 2]);

impl BatchKey {
    fn of(images: &Tensor, targets: &Tensor) -> BatchKey {
        let k = |t: &Tensor| (t.shape().to_vec(), t.layout().strides().to_vec(), t.dtype());
        BatchKey([k(images), k(targets)])
    }
}

/// A captured update and the tensors its replays share with the host.
struct Captured {
    key: BatchKey,
    graph: CudaGraph,
    images: Tensor,
    targets: Tensor,
    /// The loss, written by each replay.
    loss: Tensor,
    /// Set by a replay whose rule steps were skipped (an overflow, a non-finite loss).
    skip: Tensor,
    /// The loss scale and its inverse, written before each replay (AMP f16).
    scale: Option<(Tensor, Tensor)>,
    /// Each parameter with the gradient tensor the graph writes.
    grads: Vec<(Tensor, Option<Tensor>)>,
    /// Captures it took (each earlier one found a block missing from the cache and reserved it).
    attempts: usize,
}

/// What a graph keeps besides its pool, made one eager update ahead of the capture so that
/// update refills the allocator's cache around them: the static inputs, the skip flag, the loss
/// scale (and the optimizer's state, made at the same time).
struct Prepared {
    key: BatchKey,
    images: Tensor,
    targets: Tensor,
    skip: Tensor,
    scale: Option<(Tensor, Tensor)>,
}

impl Prepared {
    fn new(
        parts: &mut StepParts<'_>,
        key: BatchKey,
        images: &Tensor,
        targets: &Tensor,
    ) -> Result<Prepared> {
        if !matches!(images.device(), Device::Cuda(_)) {
            return Err(refused("the batch is not on a CUDA device".into()));
        }
        let on = images.device();
        // Steps skipped so far (f16 overflows) may have left the state uncreated.
        parts.updater.optimizer.init_state()?;
        Ok(Prepared {
            key,
            images: static_like(images)?,
            targets: static_like(targets)?,
            skip: Tensor::full_on(&[1], 0.0, DType::F32, on)?,
            scale: match &parts.updater.scaler {
                Some(_) => Some((
                    Tensor::full_on(&[], 1.0, DType::F32, on)?,
                    Tensor::full_on(&[1], 1.0, DType::F32, on)?,
                )),
                None => None,
            },
        })
    }
}

/// The parts of a run one update reads.
pub(super) struct StepParts<'a> {
    pub objective: Objective<'a>,
    pub updater: &'a mut Updater,
    pub amp: Option<DType>,
}

/// `--cuda-graph`'s state in a run.
pub(super) struct GraphSteps {
    mode: CudaGraphMode,
    /// Eager from now on (the reason is in `stats.fallback`).
    off: bool,
    /// Checked once, at the first batch.
    checked: bool,
    /// Why no update can be captured, known when the run was built (scheduled sizes, a loss
    /// scaled per batch).
    eager: Option<String>,
    captured: Option<Box<Captured>>,
    /// What the next capture keeps, made one update ahead.
    prepared: Option<Prepared>,
    /// The current run of batches with one shape, and its length.
    streak: Option<(BatchKey, usize)>,
    stats: CudaGraphStats,
}

impl GraphSteps {
    pub(super) fn new(mode: CudaGraphMode, eager: Option<String>) -> GraphSteps {
        GraphSteps {
            mode,
            off: mode == CudaGraphMode::Off,
            checked: mode == CudaGraphMode::Off,
            eager,
            captured: None,
            prepared: None,
            streak: None,
            stats: CudaGraphStats::default(),
        }
    }

    /// Drops the captured and prepared graphs (they hold a pruned model's old parameters); the
    /// next batches warm up and capture anew.
    pub(super) fn forget(&mut self) {
        self.captured = None;
        self.prepared = None;
        self.streak = None;
    }

    pub(super) fn stats(&self) -> &CudaGraphStats {
        &self.stats
    }

    /// Runs the update of this batch from a graph when one serves it (capturing first when the
    /// shape has warmed up) and returns its loss; None: run it eagerly (beside a graph, its
    /// gradients are detached from the parameters first).
    pub(super) fn run(
        &mut self,
        mut parts: StepParts<'_>,
        device: Device,
        (images, targets): (&Tensor, &Tensor),
        lr: &GroupLr,
    ) -> Result<Option<f64>> {
        if !self.checked {
            self.checked = true;
            if let Some(why) = self.why_eager(&parts, device) {
                self.fall_back(why, device);
            }
        }
        if self.off {
            return Ok(None);
        }
        let key = BatchKey::of(images, targets);
        match plan(
            &mut self.streak,
            self.captured.as_ref().map(|c| &c.key),
            &key,
        ) {
            Plan::Replay => {}
            Plan::Eager => {
                if self.captured.is_some() {
                    // The graph's gradients stay with it; the eager update makes its own.
                    parts.updater.optimizer.zero_grad();
                    self.stats.eager_beside += 1;
                }
                return Ok(None);
            }
            Plan::Capture if self.prepared.as_ref().is_none_or(|p| p.key != key) => {
                // Make what the graph keeps, then update eagerly once more: the capture then
                // finds in the cache what this update frees.
                self.captured = None;
                parts.updater.optimizer.zero_grad();
                match Prepared::new(&mut parts, key, images, targets) {
                    Ok(p) => self.prepared = Some(p),
                    Err(e) => {
                        self.fall_back(format!("the update could not be captured: {e}"), device)
                    }
                }
                return Ok(None);
            }
            Plan::Capture => {
                let prepared = self.prepared.take().expect("prepared above");
                let c = match capture(&mut parts, prepared, lr) {
                    Ok(c) => c,
                    Err(e) => {
                        parts.updater.optimizer.zero_grad();
                        self.fall_back(format!("the update could not be captured: {e}"), device);
                        return Ok(None);
                    }
                };
                self.stats.captures += 1;
                self.stats.vendor_calls = c.graph.vendor_calls();
                println!(
                    "CUDA graph: captured the update for batches of {:?} ({} nodes, {} cuBLAS/cuDNN calls, {} attempt(s)); replaying it",
                    images.shape(),
                    c.graph.node_count()?,
                    c.graph.vendor_calls(),
                    c.attempts
                );
                self.captured = Some(Box::new(c));
            }
        }
        let c = self.captured.as_mut().expect("captured above");
        match replay(c, parts, images, targets, lr) {
            Ok(value) => {
                self.stats.replays += 1;
                Ok(Some(value))
            }
            Err(Refused(e)) => {
                self.captured = None;
                self.fall_back(format!("the captured update no longer fits: {e}"), device);
                Ok(None)
            }
            Err(Failed(e)) => Err(e),
        }
    }

    /// Why no update of this run can be captured, if known before trying.
    fn why_eager(&self, parts: &StepParts<'_>, device: Device) -> Option<String> {
        if let Some(why) = &self.eager {
            return Some(why.clone());
        }
        let Device::Cuda(ordinal) = device else {
            return Some("the device is the CPU (CUDA graphs need --device cuda)".into());
        };
        let u = &parts.updater;
        if u.ddp.is_some() {
            return Some("data-parallel training reduces gradients outside the graph".into());
        }
        if u.accum_steps > 1 {
            return Some(format!(
                "--grad-accum-steps {} (micro-batches are not captured)",
                u.accum_steps
            ));
        }
        if let Err(why) = u.optimizer.graph_state() {
            return Some(format!("the optimizer cannot be captured: {why}"));
        }
        cuda::device(ordinal).err().map(|e| e.to_string())
    }

    /// Eager updates from now on, saying why once (not on the CPU unless asked for).
    fn fall_back(&mut self, why: String, device: Device) {
        self.off = true;
        self.captured = None;
        if device != Device::Cpu || self.mode == CudaGraphMode::On {
            log::warn!("--cuda-graph: eager updates: {why}");
        }
        self.stats.fallback = Some(why);
    }
}

/// What a batch's update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Replays the graph made for its shape.
    Replay,
    /// Captures a graph for its shape (replacing any other), then replays it.
    Capture,
    /// Runs eagerly: its shape has not warmed up (or is a one-off beside the graph).
    Eager,
}

/// The plan for a batch of shape `key`, given the run of same-shaped batches before it
/// (`streak`, updated here) and the shape the current graph was made for: replay when it fits;
/// capture at the first batch after [`WARMUP`] in a row of its shape; else eager.
fn plan(streak: &mut Option<(BatchKey, usize)>, graph: Option<&BatchKey>, key: &BatchKey) -> Plan {
    let seen = match streak.take() {
        Some((k, n)) if k == *key => n + 1,
        _ => 1,
    };
    *streak = Some((key.clone(), seen));
    match (graph == Some(key), seen > WARMUP) {
        (true, _) => Plan::Replay,
        (false, true) => Plan::Capture,
        (false, false) => Plan::Eager,
    }
}

/// A fresh copy of `t` with its strides, for a graph's static input.
fn static_like(t: &Tensor) -> Result<Tensor> {
    let fresh = t.detach().dense_clone()?.detach();
    if !fresh.layout().same_mapping(t.layout()) {
        return Err(refused(format!(
            "the batch's strides {:?} are not dense",
            t.layout().strides()
        )));
    }
    Ok(fresh)
}

/// A train error as the engine's, for the capture closure (a cache miss must stay one, so the
/// capture is tried again).
fn engine_error(e: Error) -> kiln_engine::Error {
    match e {
        Error::Engine(inner) => inner,
        Error::Nn(kiln_nn::Error::Engine(inner)) => inner,
        other => kiln_engine::Error::Capture(other.to_string()),
    }
}

/// A capture-side error in the trainer's type.
fn refused(msg: String) -> Error {
    Error::Engine(kiln_engine::Error::Capture(msg))
}

/// Captures the update for the batches `prepared` was made for; nothing runs on the device, and
/// the host state the capture advanced (the optimizer's step counts) is put back.
fn capture(parts: &mut StepParts<'_>, prepared: Prepared, lr: &GroupLr) -> Result<Captured> {
    let Prepared {
        key,
        images,
        targets,
        skip,
        scale,
    } = prepared;
    let Device::Cuda(ordinal) = images.device() else {
        return Err(refused("the batch is not on a CUDA device".into()));
    };
    let dev = cuda::device(ordinal)?;
    let step = Step {
        objective: parts.objective,
        amp: parts.amp,
        clip: parts.updater.clip,
        skip: &skip,
        scale: scale.as_ref(),
    };
    let opt = &mut parts.updater.optimizer;
    // Each attempt starts from the host state before the capture, and so does the first replay.
    let mut saved = Some(opt.graph_state().map_err(refused)?);
    let mut attempts = 0;
    let captured = dev.capture_retrying(CAPTURE_ATTEMPTS, || {
        attempts += 1;
        opt.restore_graph_state(saved.take().expect("saved before each attempt"));
        saved = Some(opt.graph_state().map_err(kiln_engine::Error::Capture)?);
        // An abandoned attempt left gradients that hold no values.
        opt.zero_grad();
        step.record(opt.as_mut(), &images, &targets, lr)
            .map_err(engine_error)
    });
    if let Some(s) = saved.take() {
        opt.restore_graph_state(s);
    }
    let (graph, loss) = captured?;
    let grads = opt
        .params()
        .iter()
        .map(|p| (p.tensor.clone(), p.tensor.grad()))
        .collect();
    Ok(Captured {
        key,
        graph,
        images,
        targets,
        loss,
        skip,
        scale,
        grads,
        attempts,
    })
}

/// What one captured update reads besides the optimizer and the batch.
struct Step<'a> {
    objective: Objective<'a>,
    amp: Option<DType>,
    clip: Option<(crate::clip::ClipMode, f64)>,
    skip: &'a Tensor,
    scale: Option<&'a (Tensor, Tensor)>,
}

impl Step<'_> {
    /// The update's device work, as the eager update does it but with every host decision made
    /// on the device; returns the (unscaled) loss.
    fn record(
        &self,
        opt: &mut dyn Optimizer,
        images: &Tensor,
        targets: &Tensor,
        lr: &GroupLr,
    ) -> Result<Tensor> {
        cuda::skip_rule_steps_if(self.skip)?;
        let loss = {
            let _autocast = self.amp.map(kiln_engine::amp::autocast).transpose()?;
            self.objective.forward(images, targets)?
        };
        // Backward from loss · scale (a power of two, so the same bits as the eager step's
        // mul_scalar); without a scaler the update is skipped on a non-finite loss, as the eager
        // step skips or stops before backward.
        let root = match self.scale {
            Some((scale, _)) => loss.mul(scale)?,
            None => {
                flag_nonfinite_(&loss, self.skip)?;
                loss.clone()
            }
        };
        root.backward()?;
        drop(root);
        let grads = densify_grads(opt)?;
        if let Some((_, inv_scale)) = self.scale {
            unscale_grads_by_(&grads, inv_scale, self.skip)?;
        }
        if let Some((mode, value)) = self.clip {
            clip_grads_on_device(opt.params(), mode, value)?;
        }
        opt.step_groups(lr)?;
        Ok(loss.detach())
    }
}

/// Why a replay did not happen: the graph no longer fits the host code (capture again or run
/// eagerly; nothing ran), or a failure to pass on.
enum ReplayError {
    Refused(Error),
    Failed(Error),
}
use ReplayError::{Failed, Refused};

/// Writes `value` into the one-element f32 tensor `t` (before a replay).
fn write_scalar(t: &Tensor, value: f64) -> Result<()> {
    Ok(t.copy_(&Tensor::from_vec(vec![value as f32], t.shape())?)?)
}

/// One update from the graph: the batch into the static inputs, the gradients attached, the
/// step scalars refreshed (host state advanced as by an eager step), the loss scale written;
/// replay; then the loss and skip flag read, the host state taken back on a skip, and the loss
/// scaler updated.
fn replay(
    c: &mut Captured,
    parts: StepParts<'_>,
    images: &Tensor,
    targets: &Tensor,
    lr: &GroupLr,
) -> std::result::Result<f64, ReplayError> {
    let u = parts.updater;
    for (p, g) in &c.grads {
        p.set_grad(g.clone());
    }
    let saved = u.optimizer.graph_state().map_err(|e| Refused(refused(e)))?;
    let opt = &mut u.optimizer;
    let refreshed = c
        .graph
        .refresh(|| opt.step_groups(lr).map_err(engine_error));
    if let Err(e) = refreshed {
        u.optimizer.restore_graph_state(saved);
        u.optimizer.zero_grad();
        return Err(Refused(e.into()));
    }
    let run = || -> Result<(f64, bool)> {
        c.images.copy_(images)?;
        c.targets.copy_(targets)?;
        if let (Some((scale, inv)), Some(s)) = (&c.scale, &u.scaler) {
            write_scalar(scale, s.scale)?;
            write_scalar(inv, 1.0 / s.scale)?;
        }
        c.graph.replay()?;
        Ok((c.loss.item()?, c.skip.item()? != 0.0))
    };
    let (value, skipped) = run().map_err(Failed)?;
    if skipped {
        u.optimizer.restore_graph_state(saved);
    }
    if let Some(s) = &mut u.scaler {
        s.update(skipped);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::{plan, BatchKey, Plan, WARMUP};
    use kiln_engine::DType;

    fn key(n: usize) -> BatchKey {
        let t = |shape: Vec<usize>, dtype| {
            let strides = kiln_engine::contiguous_strides(&shape);
            (shape, strides, dtype)
        };
        BatchKey([t(vec![n, 1, 6, 6], DType::F32), t(vec![n], DType::I64)])
    }

    #[test]
    fn shapes_warm_up_then_capture_and_one_offs_run_eagerly_beside_the_graph() {
        assert_eq!(WARMUP, 3);
        let (a, b) = (key(4), key(2));
        let mut streak = None;
        let mut graph: Option<BatchKey> = None;
        let mut run = |k: &BatchKey| {
            let p = plan(&mut streak, graph.as_ref(), k);
            if p == Plan::Capture {
                graph = Some(k.clone());
            }
            p
        };
        use Plan::{Capture as C, Eager as E, Replay as R};
        // Epochs of three full batches and a short one: warm-up, capture, replays; the short
        // batch runs eagerly and the graph serves the next epoch at once.
        let epochs = [&a, &a, &a, &a, &a, &b, &a, &a, &b];
        let got: Vec<Plan> = epochs.into_iter().map(&mut run).collect();
        assert_eq!(got, [E, E, E, C, R, E, R, R, E]);
        // A lasting change of shape warms up and captures again, for the new shape; the old one
        // is then the one-off.
        let got: Vec<Plan> = [&a, &b, &b, &b, &b, &b, &a]
            .into_iter()
            .map(&mut run)
            .collect();
        assert_eq!(got, [R, E, E, E, C, R, E]);
    }
}
