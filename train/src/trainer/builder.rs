//! `TrainerBuilder`: a Trainer from config structs, assembled as timm's train.py assembles its
//! run: loaders and batch stages from the data config, the optimizer, schedule and loss from
//! theirs, the loop's settings from `TrainConfig`, and callbacks.

use super::pruning::Pruning;
use super::{
    BatchStages, Callback, EvalOptions, Evaluator, PruneSchedule, TrainConfig, Trainer,
    TrainerParts,
};
use crate::data::{Dataset, Source};
use crate::distill::Distillation;
use crate::loader::{DataConfig, Layout};
use crate::loss::{create_loss, create_multi_label_loss, Loss, LossConfig};
use crate::optim::{create_optimizer_for_model_and, OptimizerConfig};
use crate::sched::{create_scheduler, SchedulerConfig};
use crate::{Error, Result};
use kiln_engine::{Device, MemoryFormat};
use kiln_nn::Model;
use std::sync::Arc;

/// The loss a builder trains with: timm's choice from a [`LossConfig`], or the caller's own.
enum LossChoice {
    Config(LossConfig),
    Custom(Box<dyn Loss>),
}

/// Builds a [`Trainer`] from a model, datasets and config structs (each with timm's defaults):
///
/// ```no_run
/// # fn main() -> kiln_train::Result<()> {
/// use kiln_train::data::ImageFolder;
/// use kiln_train::loader::DataConfig;
/// use kiln_train::optim::OptimizerConfig;
/// use kiln_train::sched::SchedulerConfig;
/// use kiln_train::trainer::Trainer;
/// use std::{path::Path, sync::Arc};
///
/// let train = Arc::new(ImageFolder::open(Path::new("data/train"), None, 3)?);
/// let model = kiln_nn::create_model("resnet18", &kiln_nn::ModelArgs::default())?;
/// let mut trainer = Trainer::builder(model, train)
///     .data(DataConfig::default().img_size(160).batch_size(64))
///     .optimizer(OptimizerConfig::new("adamw").lr(1e-3).weight_decay(0.05))
///     .scheduler(SchedulerConfig::new("cosine", 10))
///     .build()?;
/// trainer.fit()?;
/// # Ok(())
/// # }
/// ```
///
/// Batches go to the model's device in the model's memory format (channels-last when its
/// convolution weights are); move and convert the model before building. The number of epochs
/// is the schedule's (cycles, cooldown and a warmup prefix included), as timm's
/// `create_scheduler_v2` returns it.
pub struct TrainerBuilder {
    model: Box<dyn Model>,
    train: Source,
    validation: Option<Source>,
    arch: String,
    model_config: Option<String>,
    data: DataConfig,
    validation_batch_size: Option<usize>,
    optimizer: OptimizerConfig,
    base_lr: Option<f64>,
    scheduler: SchedulerConfig,
    loss: LossChoice,
    distill: Option<Distillation>,
    config: TrainConfig,
    eval: EvalOptions,
    callbacks: Vec<Box<dyn Callback>>,
    memory_format: Option<MemoryFormat>,
    prune: Option<PruneSchedule>,
}

impl Trainer {
    /// A builder training `model` on `train`, everything else at timm's defaults.
    pub fn builder(model: Box<dyn Model>, train: Arc<dyn Dataset>) -> TrainerBuilder {
        Trainer::builder_for(model, Source::Indexed(train))
    }

    /// A builder training `model` on `train`, a random-access dataset or webdataset shards.
    pub fn builder_for(model: Box<dyn Model>, train: Source) -> TrainerBuilder {
        TrainerBuilder {
            model,
            train,
            validation: None,
            arch: String::new(),
            model_config: None,
            data: DataConfig::default(),
            validation_batch_size: None,
            optimizer: OptimizerConfig::default(),
            base_lr: None,
            scheduler: SchedulerConfig::default(),
            loss: LossChoice::Config(LossConfig::default()),
            distill: None,
            config: TrainConfig::default(),
            eval: EvalOptions::default(),
            callbacks: Vec::new(),
            memory_format: None,
            prune: None,
        }
    }
}

impl TrainerBuilder {
    /// Validates on `dataset` after every epoch.
    #[must_use]
    pub fn validation(mut self, dataset: Arc<dyn Dataset>) -> Self {
        self.validation = Some(Source::Indexed(dataset));
        self
    }

    /// Validates on `source` (a random-access dataset or webdataset shards) after every epoch.
    #[must_use]
    pub fn validation_for(mut self, source: Source) -> Self {
        self.validation = Some(source);
        self
    }

    /// The model's registry name, recorded in checkpoints (empty by default).
    #[must_use]
    pub fn arch(mut self, arch: impl Into<String>) -> Self {
        self.arch = arch.into();
        self
    }

    /// The model's description (JSON) recorded in checkpoints, so commands can rebuild it from
    /// the file alone (none by default).
    #[must_use]
    pub fn model_config(mut self, config: impl Into<String>) -> Self {
        self.model_config = Some(config.into());
        self
    }

    /// The data pipeline: input size, batch size, workers, augmentation, mixup.
    #[must_use]
    pub fn data(mut self, data: DataConfig) -> Self {
        self.data = data;
        self
    }

    /// The validation batch size (the training one by default).
    #[must_use]
    pub fn validation_batch_size(mut self, batch_size: usize) -> Self {
        self.validation_batch_size = Some(batch_size);
        self
    }

    /// The optimizer; its `lr` is the schedule's base lr too.
    #[must_use]
    pub fn optimizer(mut self, optimizer: OptimizerConfig) -> Self {
        self.optimizer = optimizer;
        self
    }

    /// The schedule's base lr where it differs from the optimizer's (an Adafactor taking
    /// relative steps has none); without either, timm's `lr_base` 0.1.
    #[must_use]
    pub fn base_lr(mut self, lr: f64) -> Self {
        self.base_lr = Some(lr);
        self
    }

    /// The learning-rate schedule and the run's length.
    #[must_use]
    pub fn scheduler(mut self, scheduler: SchedulerConfig) -> Self {
        self.scheduler = scheduler;
        self
    }

    /// The training loss as timm's train.py chooses it from `loss` (and whether mixup is on).
    #[must_use]
    pub fn loss(mut self, loss: LossConfig) -> Self {
        self.loss = LossChoice::Config(loss);
        self
    }

    /// A training loss of the caller's own.
    #[must_use]
    pub fn custom_loss(mut self, loss: Box<dyn Loss>) -> Self {
        self.loss = LossChoice::Custom(loss);
        self
    }

    /// Trains with knowledge distillation: each step's loss is the training loss weighted with
    /// the distillation loss against the teacher (whose feature projection, if any, the
    /// optimizer trains too); validation runs the student alone.
    #[must_use]
    pub fn distillation(mut self, distill: Distillation) -> Self {
        self.distill = Some(distill);
        self
    }

    /// The loop's settings: AMP, clipping, accumulation, data-parallel ranks, ...
    /// (`epochs` is replaced by the schedule's).
    #[must_use]
    pub fn config(mut self, config: TrainConfig) -> Self {
        self.config = config;
        self
    }

    /// How validation logs (its AMP dtype is the training one).
    #[must_use]
    pub fn eval_options(mut self, eval: EvalOptions) -> Self {
        self.eval = eval;
        self
    }

    /// Adds a callback; callbacks run in the order they were added.
    #[must_use]
    pub fn callback(mut self, callback: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Adds a boxed callback.
    #[must_use]
    pub fn boxed_callback(mut self, callback: Box<dyn Callback>) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// Lays the model's (and a distillation teacher's) weights and the batches out in `format`
    /// instead of the device's preferred format ([`MemoryFormat::preferred_on`]:
    /// channels-last on the CPU, the model's own on CUDA).
    #[must_use]
    pub fn memory_format(mut self, format: MemoryFormat) -> Self {
        self.memory_format = Some(format);
        self
    }

    /// Prunes channels at the start of the epochs `schedule` names, fine-tuning between (not
    /// with distillation, whose projection reads the student's feature width).
    #[must_use]
    pub fn prune(mut self, schedule: PruneSchedule) -> Self {
        self.prune = Some(schedule);
        self
    }

    /// The Trainer, at epoch 0 with the callbacks added. The model's weights are re-laid out in
    /// the chosen memory format here, before the optimizer takes them.
    pub fn build(mut self) -> Result<Trainer> {
        let (rank, world) = match &self.config.dist {
            Some((comm, _)) => (comm.rank(), comm.world_size()),
            None => (0, 1),
        };
        if self.prune.is_some() && self.distill.is_some() {
            return Err(Error::config(
                "pruning",
                "with distillation",
                "prune the student first (`kiln prune`), then distill into the pruned model",
            ));
        }
        let (device, _) = device_and_layout(self.model.as_ref());
        let format = (self.memory_format.or(MemoryFormat::preferred_on(device)))
            .unwrap_or(self.model.weights_memory_format());
        if format != self.model.weights_memory_format() {
            self.model.set_memory_format(format)?;
        }
        if let Some(d) = &mut self.distill {
            d.set_memory_format(format)?;
        }
        let (device, layout) = device_and_layout(self.model.as_ref());
        // A progressive size schedule moves over the run's epochs unless told otherwise.
        let mut data = self.data.clone();
        let epochs = &mut data.sizes.train_size_schedule_epochs;
        *epochs = epochs.or(Some(self.scheduler.epochs));
        let data = &data;
        // A multi-label dataset trains with BCE on its multi-hot targets.
        let multi_label = match &self.train {
            Source::Indexed(d) => !d.is_empty() && d.label_set(0).is_some(),
            Source::Streamed(_) => false,
        };
        let train_loader = data.train_loader_for(self.train, rank, world)?;
        let stages = BatchStages {
            normalize: data.normalize(layout),
            erasing: data.random_erasing()?,
            mixup: data.mixup_fn(self.model.num_classes())?,
            seed: data.seed,
            device,
            dtype: self.model.param_dtype(),
        };
        let evaluator = match self.validation {
            Some(dataset) => Some(Evaluator {
                loader: data.eval_loader_for(
                    dataset,
                    self.validation_batch_size.unwrap_or(data.batch_size),
                    rank,
                    world,
                )?,
                stages: BatchStages {
                    erasing: None,
                    mixup: None,
                    ..stages.clone()
                },
                options: EvalOptions {
                    amp: self.config.amp,
                    quiet: self.eval.quiet || rank != 0,
                    ..self.eval
                },
            }),
            None => None,
        };
        let extra = self
            .distill
            .as_ref()
            .map(Distillation::parameters)
            .unwrap_or_default();
        let optimizer =
            create_optimizer_for_model_and(&self.optimizer, self.model.as_ref(), extra)?;
        let lr = self.base_lr.or(self.optimizer.lr).unwrap_or(0.1);
        if self.config.grad_accum_steps == 0 {
            return Err(Error::config("grad_accum_steps", "0", "at least 1"));
        }
        let updates_per_epoch = train_loader.len().div_ceil(self.config.grad_accum_steps);
        let (scheduler, epochs) = create_scheduler(&self.scheduler, lr, updates_per_epoch)?;
        let loss = match self.loss {
            LossChoice::Config(cfg) if multi_label => create_multi_label_loss(&cfg)?,
            LossChoice::Config(cfg) => create_loss(&cfg, &data.mix)?,
            LossChoice::Custom(loss) => loss,
        };
        let mut trainer = Trainer::new(TrainerParts {
            model: self.model,
            arch: self.arch,
            optimizer,
            clip: self.optimizer.clip(),
            scheduler,
            loss,
            distill: self.distill,
            train_loader,
            stages,
            evaluator,
            config: TrainConfig {
                epochs,
                ..self.config
            },
        })?;
        for callback in self.callbacks {
            trainer.add_callback(callback);
        }
        trainer.run.model_config = self.model_config;
        if let Some(schedule) = self.prune {
            trainer.run.pruning = Some(Pruning {
                schedule,
                optimizer: self.optimizer,
            });
        }
        Ok(trainer)
    }
}

/// Where `model`'s parameters live, and the batch layout its convolution weights are in.
fn device_and_layout(model: &dyn Model) -> (Device, Layout) {
    let params = model.named_parameters();
    let device = params.first().map_or(Device::Cpu, |p| p.tensor.device());
    let layout = match model.weights_memory_format() {
        MemoryFormat::ChannelsLast => Layout::Nhwc,
        MemoryFormat::Contiguous => Layout::Nchw,
    };
    (device, layout)
}
