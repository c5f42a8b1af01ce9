//! GPU time between two points of a device's compute stream, from CUDA events that record time
//! (`torch.cuda.Event(enable_timing=True)`'s counterpart), for benchmarks that report the GPU's
//! time beside the wall clock's.

use super::CudaDevice;
use crate::{Error, Result};
use cudarc::driver::{sys::CUevent_flags, CudaEvent, CudaStream};
use std::sync::Arc;

/// A start event recorded on the compute stream; [`GpuTimer::elapsed_ms`] records the end.
pub struct GpuTimer {
    start: CudaEvent,
    stream: Arc<CudaStream>,
}

impl CudaDevice {
    /// Records a timing event on the compute stream: the work queued after it is what
    /// [`GpuTimer::elapsed_ms`] times.
    pub fn start_timer(&self) -> Result<GpuTimer> {
        let stream = self.compute_stream().clone();
        let start = record(&stream)?;
        Ok(GpuTimer { start, stream })
    }
}

impl GpuTimer {
    /// Milliseconds of GPU time from the start event to now on the stream (waits for the work
    /// queued in between).
    pub fn elapsed_ms(&self) -> Result<f64> {
        let end = record(&self.stream)?;
        let ms =
            (self.start.elapsed_ms(&end)).map_err(|e| Error::Cuda(format!("event time: {e:?}")))?;
        Ok(f64::from(ms))
    }
}

/// An event that records time (cudarc's default disables timing), recorded on `stream`.
fn record(stream: &CudaStream) -> Result<CudaEvent> {
    (stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT)))
        .map_err(|e| Error::Cuda(format!("recording a timing event: {e:?}")))
}
