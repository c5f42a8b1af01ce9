//! The ranges in which `kiln train`'s (and `kiln validate`'s) probabilities, rates and factors
//! mean anything ([`Range`]): the library configs' own checks for the flags they declare, then the
//! command's for the rest.

use super::args::TrainArgs;
use super::eval_args::EvalArgs;
use kiln_train::flags::{first_outside, Range};
use kiln_train::Result;

/// Refuses the first value outside its flag's range.
pub fn check_train_ranges(a: &TrainArgs) -> Result<()> {
    use Range::*;
    a.optim.check_ranges()?;
    a.sched.check_ranges()?;
    a.aug.check_ranges()?;
    a.loss.check_ranges()?;
    a.mix.check_ranges()?;
    a.sizes.check_ranges()?;
    a.distill.check_ranges()?;
    a.multi_label.check_ranges()?;
    let one = |v: f64| vec![v];
    let maybe = |v: Option<f64>| v.into_iter().collect::<Vec<_>>();
    let widen = |v: &Option<Vec<f32>>| {
        let v = v.clone().unwrap_or_default();
        v.into_iter().map(f64::from).collect::<Vec<_>>()
    };
    let rules = [
        ("--bn-momentum", maybe(a.bn_momentum), Unit),
        ("--drop", one(a.drop_rate), UnitOpen),
        ("--drop-connect", maybe(a.drop_connect), UnitOpen),
        ("--drop-path", maybe(a.drop_path), UnitOpen),
        ("--drop-block", maybe(a.drop_block), UnitOpen),
        ("--std", widen(&a.input.std), Positive),
        ("--bn-eps", maybe(a.bn_eps), Positive),
        ("--crop-pct", maybe(a.input.crop_pct), Positive),
        ("--slim-lambda", maybe(a.slim_lambda), Positive),
    ];
    first_outside(rules)
}

/// Refuses the first of `kiln validate`'s (and `kiln infer`'s) values outside its range.
pub fn check_eval_ranges(a: &EvalArgs) -> Result<()> {
    a.multi_label.check_ranges()?;
    let std = a
        .input
        .std
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from);
    first_outside([
        (
            "--crop-pct",
            a.input.crop_pct.into_iter().collect(),
            Range::Positive,
        ),
        ("--std", std.collect(), Range::Positive),
    ])
}
