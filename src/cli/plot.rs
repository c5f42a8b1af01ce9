//! `kiln plot RUN_DIR`: a run's loss, accuracy and lr curves from its summary.csv.

use kiln_train::plot::plot_run;
use kiln_train::Result;
use std::path::Path;

/// Runs `kiln plot`, printing the paths it wrote.
pub fn plot(run_dir: &Path) -> Result<()> {
    for path in plot_run(run_dir)? {
        println!("{}", path.display());
    }
    Ok(())
}
