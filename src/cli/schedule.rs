//! `kiln schedule`: a run's learning rates without training. It takes `kiln train`'s flags, steps
//! the schedule as the Trainer does (`start_at`, `step_update` after each update, `step` after each
//! epoch with `--eval-metrics`' value), prints `epoch,update,lr` per optimizer update and draws the
//! curve to a PNG.

use super::args::TrainArgs;
use super::configs::{batch_size_reference, resolve_lr, scheduler_config};
use clap::Args;
use kiln_train::plot::{write_png, LineChart, Series};
use kiln_train::sched::{create_scheduler, trace};
use kiln_train::{Error, Result};
use std::io::Write;
use std::path::PathBuf;

/// `kiln schedule`: `kiln train`'s flags plus what a schedule needs from the data and evaluation.
#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// Every `kiln train` flag (only the lr and schedule ones matter here).
    #[command(flatten)]
    pub train: TrainArgs,
    /// Optimizer updates per epoch (batches per epoch / --grad-accum-steps).
    #[arg(long)]
    pub updates_per_epoch: usize,
    /// The eval metric after each epoch, comma separated (what plateau steps on).
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        value_name = "V0,V1,..."
    )]
    pub eval_metrics: Vec<f64>,
    /// Where to write the curve.
    #[arg(long, default_value = "schedule.png", value_name = "FILE.png")]
    pub plot: PathBuf,
}

/// Runs `kiln schedule`.
pub fn schedule(a: ScheduleArgs) -> Result<()> {
    if a.updates_per_epoch == 0 {
        return Err(Error::Flag {
            flag: "--updates-per-epoch".into(),
            msg: "must be at least 1".into(),
        });
    }
    let args = scheduler_config(&a.train);
    let lr = resolve_lr(&a.train, 1, batch_size_reference(&a.train)?);
    let (mut sched, num_epochs) = create_scheduler(&args, lr, a.updates_per_epoch)?;
    let start_epoch = a.train.sched.start_epoch.unwrap_or(0);
    if args.sched == "plateau" && a.eval_metrics.len() < num_epochs {
        return Err(Error::Flag {
            flag: "--eval-metrics".into(),
            msg: format!(
                "plateau steps on one metric per epoch: {num_epochs} needed, {} given",
                a.eval_metrics.len()
            ),
        });
    }
    sched.start_at(start_epoch);
    let run = trace(&mut sched, start_epoch..num_epochs, |epoch| {
        a.eval_metrics.get(epoch).copied()
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let rows = std::iter::once("epoch,update,lr".to_string()).chain(
        run.updates
            .iter()
            .map(|u| format!("{},{},{}", u.epoch, u.update, u.lr)),
    );
    for row in rows {
        writeln!(out, "{row}").map_err(|e| Error::io("stdout", e))?;
    }
    out.flush().map_err(|e| Error::io("stdout", e))?;
    let on = if args.sched_on_updates {
        "update"
    } else {
        "epoch"
    };
    let chart = LineChart {
        title: format!(
            "--sched {}, stepped per {on}, {num_epochs} epochs",
            args.sched
        ),
        x_label: "optimizer update".into(),
        y_label: "lr".into(),
        series: vec![Series {
            name: "lr".into(),
            points: run
                .updates
                .iter()
                .map(|u| (u.update as f64, u.lr))
                .collect(),
        }],
    };
    write_png(&chart, &a.plot)?;
    eprintln!("Wrote {}", a.plot.display());
    Ok(())
}
