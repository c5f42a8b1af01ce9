//! timm's weighting of the task and distillation losses.

/// `loss = task · task_loss + distill · distill_loss`, resolved as timm's distillation tasks do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    /// Weight of the task (classification) loss.
    pub task: f64,
    /// Weight of the distillation loss.
    pub distill: f64,
}

impl LossWeights {
    /// timm's rules: a distill weight given makes the weights independent (task 1.0 unless
    /// given); a task weight alone makes them complementary (distill = 1 − task); neither gives
    /// 1.0 each.
    pub fn resolve(task: Option<f64>, distill: Option<f64>) -> LossWeights {
        match (task, distill) {
            (task, Some(distill)) => LossWeights {
                task: task.unwrap_or(1.0),
                distill,
            },
            (Some(task), None) => LossWeights {
                task,
                distill: 1.0 - task,
            },
            (None, None) => LossWeights {
                task: 1.0,
                distill: 1.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LossWeights;

    fn w(task: f64, distill: f64) -> LossWeights {
        LossWeights { task, distill }
    }

    #[test]
    fn weights_follow_timms_three_modes() {
        assert_eq!(LossWeights::resolve(Some(0.3), Some(2.0)), w(0.3, 2.0));
        assert_eq!(LossWeights::resolve(None, Some(5.0)), w(1.0, 5.0));
        assert_eq!(LossWeights::resolve(Some(0.3), None), w(0.3, 0.7));
        assert_eq!(LossWeights::resolve(None, None), w(1.0, 1.0));
    }
}
