//! kiln's schedulers against timm 1.0's: the lr of every update and every epoch over the grid of
//! scripts/fixtures/make_sched_fixtures.py (each schedule crossed with warmup, prefix, cycles,
//! noise, k-decay, cooldown, min-lr, per-epoch and per-update stepping; plateau in both modes),
//! within 1e-7 relative; every param group's lr where a case has several lr scales (plateau clamps
//! each group at min-lr on its own); torch's CPU generator draw for draw; and resuming from
//! `state()`.

use kiln_train::sched::{
    create_scheduler, trace, Scheduler, SchedulerConfig, TorchGenerator, Trace,
};
use serde::Deserialize;

/// Relative tolerance of the issue.
const RTOL: f64 = 1e-7;

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    flags: SchedulerConfig,
    start_epoch: usize,
    base_lr: f64,
    updates_per_epoch: usize,
    metrics: Option<Vec<f64>>,
    num_epochs: usize,
    update_lrs: Vec<f64>,
    epoch_lrs: Vec<f64>,
    /// Param groups' lr scales (layer-wise decay), where the case has several groups.
    #[serde(default)]
    lr_scales: Vec<f32>,
    /// Per group, the lr of every update.
    #[serde(default)]
    group_update_lrs: Vec<Vec<f64>>,
    /// Per group, the lr after each epoch's step.
    #[serde(default)]
    group_epoch_lrs: Vec<Vec<f64>>,
}

#[derive(Debug, Deserialize)]
struct Draws {
    seed: u64,
    randn: Vec<f64>,
    rand: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct Fixtures {
    timm: String,
    cases: Vec<Case>,
    generator: Vec<Draws>,
}

fn fixtures() -> Fixtures {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sched/timm_sched.json"
    );
    let text = std::fs::read_to_string(path).expect("read timm_sched.json");
    serde_json::from_str(&text).expect("parse timm_sched.json")
}

fn build(case: &Case) -> (Scheduler, usize) {
    create_scheduler(&case.flags, case.base_lr, case.updates_per_epoch)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// The case's metric after `epoch` (timm's train.py passes the eval metric; 0.5 when unused).
fn metric(case: &Case, epoch: usize) -> Option<f64> {
    Some(case.metrics.as_ref().map_or(0.5, |m| m[epoch]))
}

/// A started scheduler stepped over the case's epochs, as train.py steps it.
fn run(case: &Case) -> Trace {
    let (mut sched, num_epochs) = build(case);
    sched.start_at(case.start_epoch);
    trace(&mut sched, case.start_epoch..num_epochs, |e| {
        metric(case, e)
    })
}

/// Every param group's lrs (per group: the lr of each update, the lr after each epoch) as the
/// Trainer steps `sched` over `epochs`.
fn group_trace(
    sched: &mut Scheduler,
    epochs: std::ops::Range<usize>,
    case: &Case,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let groups = case.lr_scales.len();
    let (mut updates, mut ends) = (vec![Vec::new(); groups], vec![Vec::new(); groups]);
    let record = |sched: &Scheduler, into: &mut Vec<Vec<f64>>| {
        let lr = sched.group_lr();
        for (g, &scale) in case.lr_scales.iter().enumerate() {
            into[g].push(lr.for_scale(scale));
        }
    };
    let upe = sched.updates_per_epoch;
    for epoch in epochs {
        for update in epoch * upe..(epoch + 1) * upe {
            record(sched, &mut updates);
            sched.step_update(update + 1, None);
        }
        sched.step(epoch + 1, metric(case, epoch));
        record(sched, &mut ends);
    }
    (updates, ends)
}

/// |got - want| / |want| (0 when both are 0).
fn relative_error(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        (got - want).abs() / want.abs()
    }
}

/// Whether `got` is within `RTOL` of `want` (never for NaN).
fn within_tolerance(got: f64, want: f64) -> bool {
    relative_error(got, want) <= RTOL
}

/// The first mismatches of `got` against `want`, described.
fn mismatches(what: &str, got: &[f64], want: &[f64]) -> Vec<String> {
    if got.len() != want.len() {
        return vec![format!(
            "{what}: {} values, timm has {}",
            got.len(),
            want.len()
        )];
    }
    got.iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (&g, &w))| !within_tolerance(g, w))
        .take(3)
        .map(|(i, (g, w))| format!("{what}[{i}]: {g} vs timm {w}"))
        .collect()
}

#[test]
fn every_lr_matches_timm() {
    let fx = fixtures();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut worst = 0.0f64;
    for case in &fx.cases {
        let (_, num_epochs) = build(case);
        if num_epochs != case.num_epochs {
            failures.push(format!(
                "{}: num_epochs {num_epochs} vs timm {}",
                case.name, case.num_epochs
            ));
            continue;
        }
        let got = run(case);
        let update_lrs: Vec<f64> = got.updates.iter().map(|u| u.lr).collect();
        let bad: Vec<String> = mismatches("update", &update_lrs, &case.update_lrs)
            .into_iter()
            .chain(mismatches("epoch", &got.epoch_lrs, &case.epoch_lrs))
            .collect();
        if !bad.is_empty() {
            failures.push(format!("{}: {}", case.name, bad.join("; ")));
        }
        compared += case.update_lrs.len() + case.epoch_lrs.len();
        let pairs = update_lrs.iter().zip(&case.update_lrs);
        for (&g, &w) in pairs.chain(got.epoch_lrs.iter().zip(&case.epoch_lrs)) {
            worst = worst.max(relative_error(g, w));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from timm {}:\n{}",
        failures.len(),
        fx.cases.len(),
        fx.timm,
        failures.join("\n")
    );
    assert!(compared > 5000, "only {compared} learning rates compared");
    println!(
        "{} cases, {compared} lrs: largest relative difference to timm {}: {worst:e}",
        fx.cases.len(),
        fx.timm
    );
}

/// With layer-wise lr decay every param group has its own lr: timm's scheduler sets `lr · scale`,
/// and plateau reduces each group's lr and clamps it at min-lr on its own.
#[test]
fn every_param_group_lr_matches_timm() {
    let fx = fixtures();
    let cases: Vec<&Case> = fx
        .cases
        .iter()
        .filter(|c| !c.lr_scales.is_empty())
        .collect();
    assert!(cases.iter().filter(|c| c.flags.sched == "plateau").count() >= 3);
    let (mut failures, mut clamped) = (Vec::new(), 0);
    for case in &cases {
        let (mut sched, num_epochs) = build(case);
        sched.start_at(case.start_epoch);
        let (updates, ends) = group_trace(&mut sched, case.start_epoch..num_epochs, case);
        for (g, scale) in case.lr_scales.iter().enumerate() {
            let what = |k: &str| format!("group {g} (scale {scale}) {k}");
            failures.extend(mismatches(
                &what("update"),
                &updates[g],
                &case.group_update_lrs[g],
            ));
            failures.extend(mismatches(
                &what("epoch"),
                &ends[g],
                &case.group_epoch_lrs[g],
            ));
        }
        // Where the smallest group's final lr is not the one lr times its scale, the per-group
        // clamp made the difference.
        let (g, last) = (case.lr_scales.len() - 1, |g: usize| {
            *case.group_epoch_lrs[g].last().unwrap()
        });
        if relative_error(last(0) * case.lr_scales[g] as f64, last(g)) > 1e-3 {
            clamped += 1;
        }
        failures
            .iter_mut()
            .for_each(|f| *f = format!("{}: {f}", case.name));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        clamped >= 2,
        "only {clamped} cases exercise the per-group clamp"
    );
}

#[test]
fn the_grid_covers_every_schedule_and_option() {
    let fx = fixtures();
    let has = |pred: &dyn Fn(&Case) -> bool| fx.cases.iter().any(pred);
    for sched in [
        "cosine",
        "tanh",
        "poly",
        "step",
        "multistep",
        "plateau",
        "wsd",
        "rsqrt",
        "constant",
    ] {
        assert!(has(&|c| c.flags.sched == sched), "no {sched} case");
    }
    assert!(has(&|c| c.flags.sched_on_updates && c.flags.warmup_prefix));
    assert!(has(
        &|c| c.flags.lr_cycle_limit > 1 && c.flags.lr_cycle_mul != 1.0
    ));
    assert!(has(
        &|c| c.flags.lr_noise.is_some() && c.flags.sched == "plateau"
    ));
    assert!(has(
        &|c| c.flags.lr_k_decay != 1.0 && c.flags.sched_on_updates
    ));
    assert!(has(&|c| c.flags.cooldown_epochs > 0 && c.flags.min_lr > 0.0));
    assert!(has(
        &|c| c.flags.sched == "plateau" && c.flags.eval_metric == "loss"
    ));
    assert!(has(
        &|c| c.flags.sched == "plateau" && c.flags.eval_metric != "loss"
    ));
}

#[test]
fn torch_generator_matches_torch_draw_for_draw() {
    for d in fixtures().generator {
        let mut g = TorchGenerator::new(d.seed);
        let randn: Vec<f64> = (0..d.randn.len()).map(|_| g.randn()).collect();
        assert_eq!(randn, d.randn, "randn, seed {}", d.seed);
        let mut g = TorchGenerator::new(d.seed);
        let rand: Vec<f64> = (0..d.rand.len()).map(|_| g.rand()).collect();
        assert_eq!(rand, d.rand, "rand, seed {}", d.seed);
    }
}

/// Stopping after `stop` epochs, saving `state()` through JSON text as a checkpoint does, and
/// resuming in a fresh scheduler continues exactly where the uninterrupted run goes.
#[test]
fn state_resumes_mid_run_identically() {
    let fx = fixtures();
    let mut resumed_plateaus = 0;
    for case in fx.cases.iter().filter(|c| c.start_epoch == 0) {
        let whole = run(case);
        let (mut first, num_epochs) = build(case);
        let stop = num_epochs / 2 + 1;
        let head = trace(&mut first, 0..stop, |e| metric(case, e));
        let saved = serde_json::to_string(&first.state()).unwrap();
        let (mut second, _) = build(case);
        second
            .load_state(&serde_json::from_str(&saved).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        second.start_at(stop);
        let tail = trace(&mut second, stop..num_epochs, |e| metric(case, e));
        let joined: Vec<_> = head.updates.iter().chain(&tail.updates).copied().collect();
        assert_eq!(
            joined, whole.updates,
            "{}: resumed at epoch {stop}",
            case.name
        );
        assert_eq!(second.state(), {
            let (mut s, _) = build(case);
            trace(&mut s, 0..num_epochs, |e| metric(case, e));
            s.state()
        });
        if !case.lr_scales.is_empty() {
            let (mut s, _) = build(case);
            let (whole_updates, _) = group_trace(&mut s, 0..num_epochs, case);
            let (mut first, _) = build(case);
            let (head, _) = group_trace(&mut first, 0..stop, case);
            let (mut second, _) = build(case);
            second.load_state(&first.state()).unwrap();
            second.start_at(stop);
            let (tail, _) = group_trace(&mut second, stop..num_epochs, case);
            for g in 0..case.lr_scales.len() {
                let joined: Vec<f64> = head[g].iter().chain(&tail[g]).copied().collect();
                assert_eq!(joined, whole_updates[g], "{}: group {g} resumed", case.name);
            }
        }
        if case.flags.sched == "plateau" {
            resumed_plateaus += 1;
            // Without the saved counters the plateau would restart and take another path.
            let (mut fresh, _) = build(case);
            fresh.start_at(stop);
            let restarted = trace(&mut fresh, stop..num_epochs, |e| metric(case, e));
            assert_ne!(restarted.updates, tail.updates, "{}", case.name);
        }
    }
    assert!(resumed_plateaus >= 3);
}

#[test]
fn plateau_state_is_required_to_resume_plateau() {
    let case = fixtures()
        .cases
        .into_iter()
        .find(|c| c.flags.sched == "plateau")
        .unwrap();
    let (mut sched, _) = build(&case);
    let err = sched
        .load_state(&serde_json::json!({"sched": "cosine", "lr": 0.1}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume") && err.contains("plateau"), "{err}");
}
