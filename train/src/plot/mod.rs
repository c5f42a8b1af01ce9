//! Line charts as PNG files: `kiln schedule`'s lr curve and a run's loss, accuracy and lr per
//! epoch (`plot_run`, `kiln plot`). Drawn by plotters' bitmap backend with an embedded font (DejaVu
//! Sans cut to ASCII, 14 KB; see LICENSE-DejaVuSans.txt), so no system font is needed, and encoded
//! by the `png` crate.

mod chart;
mod run;

pub use chart::{write_png, LineChart, Series, PLOT_SIZE};
pub use run::{plot_run, read_summary, Summary};
