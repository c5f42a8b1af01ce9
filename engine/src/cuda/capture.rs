//! Which CUDA graph capture this thread is running, if any: its device and the private pool its
//! memory comes from. [`super::graph`] sets it around a capture; the device's allocator and the
//! host-side draws that a graph would freeze read it.

use super::alloc::PoolId;
use crate::{Error, Result};
use std::cell::Cell;

thread_local! {
    /// The device and private pool of the capture this thread is running.
    static CAPTURE: Cell<Option<(usize, PoolId)>> = const { Cell::new(None) };
}

/// Records the capture this thread runs from now on: (device ordinal, pool), or none.
pub(super) fn set(capture: Option<(usize, PoolId)>) {
    CAPTURE.with(|c| c.set(capture));
}

/// The private pool of the capture this thread is running on device `ordinal`, if any.
pub(crate) fn capture_pool(ordinal: usize) -> Option<PoolId> {
    CAPTURE
        .with(Cell::get)
        .filter(|&(d, _)| d == ordinal)
        .map(|(_, p)| p)
}

/// Whether this thread is capturing a CUDA graph.
pub fn is_capturing() -> bool {
    CAPTURE.with(Cell::get).is_some()
}

/// An error when this thread is capturing: `what` (a host-side decision or draw) would be
/// frozen into the graph.
pub(crate) fn refuse_host_draw(what: &str) -> Result<()> {
    match is_capturing() {
        true => Err(Error::Capture(format!(
            "{what} draws from the host's random stream, whose offset a graph would freeze (every replay would reuse one mask)"
        ))),
        false => Ok(()),
    }
}
