//! Several emulated devices (`KILN_EMU_DEVICES`): the count, per-device attributes, one primary
//! context per device current per thread, allocations owned by the current context's device,
//! copies between devices, pointer attributes, per-context modules and streams, and peer access
//! gating what a kernel can address. This binary asks for 2 devices before the first driver call.

mod common;

use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use cudarc::driver::sys::{self, CUpointer_attribute, CUresult};
use cudarc::driver::{result, CudaContext, CudaModule};

const ADD_ONE: &str = r#"
extern "C" __global__ void add_one(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i] + 1.0f;
}
"#;

/// The emulator with at least 2 devices: device 0 and device 1, and a lock that runs the tests
/// one at a time (they count memory and change peer access); None (skipped) without it.
fn two() -> Option<(MutexGuard<'static, ()>, common::Gpu, common::Gpu)> {
    static SET: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    SET.call_once(|| {
        let enough = std::env::var("KILN_EMU_DEVICES")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n >= 2);
        if !enough {
            // Before any driver call of this process (every test comes through here first).
            std::env::set_var("KILN_EMU_DEVICES", "2");
        }
    });
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let gpu = common::gpu()?;
    let ctx = CudaContext::new(1).expect("device 1 on the emulator");
    let stream = ctx.default_stream();
    Some((lock, gpu, common::Gpu { ctx, stream }))
}

fn check(r: CUresult) -> Result<(), CUresult> {
    match r {
        CUresult::CUDA_SUCCESS => Ok(()),
        e => Err(e),
    }
}

/// `n` floats on `ctx`'s device holding `v`.
fn upload(ctx: &CudaContext, v: &[f32]) -> u64 {
    ctx.bind_to_thread().unwrap();
    // SAFETY: a plain allocation, then a copy of exactly its size.
    unsafe {
        let p = result::malloc_sync(4 * v.len()).unwrap();
        result::memcpy_htod_sync(p, v).unwrap();
        p
    }
}

fn download(ctx: &CudaContext, p: u64, n: usize) -> Vec<f32> {
    ctx.bind_to_thread().unwrap();
    let mut v = vec![0f32; n];
    // SAFETY: `p` holds at least n floats.
    unsafe { result::memcpy_dtoh_sync(&mut v, p) }.unwrap();
    v
}

fn ordinal_of(p: u64) -> Result<c_int, CUresult> {
    let mut d: c_int = -1;
    // SAFETY: DEVICE_ORDINAL writes an int.
    check(unsafe {
        sys::cuPointerGetAttribute(
            (&mut d as *mut c_int).cast(),
            CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
            p,
        )
    })?;
    Ok(d)
}

fn context_of(p: u64) -> sys::CUcontext {
    let mut c: sys::CUcontext = std::ptr::null_mut();
    // SAFETY: CONTEXT writes a CUcontext.
    check(unsafe {
        sys::cuPointerGetAttribute(
            (&mut c as *mut sys::CUcontext).cast(),
            CUpointer_attribute::CU_POINTER_ATTRIBUTE_CONTEXT,
            p,
        )
    })
    .unwrap();
    c
}

fn current_device() -> Result<c_int, CUresult> {
    let mut d: c_int = -1;
    // SAFETY: d is valid for a write.
    check(unsafe { sys::cuCtxGetDevice(&mut d) })?;
    Ok(d)
}

/// Launches add_one from `module` with `stream` on the thread's current context.
fn add_one(module: &Arc<CudaModule>, stream: sys::CUstream, x: u64, y: u64, n: i32) -> CUresult {
    let f = module.load_function("add_one").unwrap();
    let (mut x, mut y, mut n) = (x, y, n);
    let mut params: Vec<*mut c_void> = vec![
        (&mut x as *mut u64).cast(),
        (&mut y as *mut u64).cast(),
        (&mut n as *mut i32).cast(),
    ];
    // SAFETY: the three parameters match the kernel's signature and outlive the call.
    match unsafe {
        result::launch_kernel(
            f.cu_function(),
            (1, 1, 1),
            (64, 1, 1),
            0,
            stream,
            &mut params,
        )
    } {
        Ok(()) => CUresult::CUDA_SUCCESS,
        Err(e) => e.0,
    }
}

#[test]
fn devices_are_counted_and_each_has_its_own_attributes() {
    let Some((_serial, gpu, dev1)) = two() else {
        return;
    };
    let ctx1 = dev1.ctx.clone();
    let n = result::device::get_count().unwrap();
    assert!(n >= 2, "{n} devices");
    let mut dev = 0;
    // SAFETY: dev is valid for a write.
    let past = unsafe { sys::cuDeviceGet(&mut dev, n) };
    assert_eq!(past, CUresult::CUDA_ERROR_INVALID_DEVICE);
    let attr = |ctx: &CudaContext| {
        ctx.attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)
            .unwrap()
    };
    assert_ne!(attr(&gpu.ctx), attr(&ctx1), "one PCI bus per device");
    let cc = |ctx: &CudaContext| {
        ctx.attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
            .unwrap()
    };
    assert_eq!(cc(&gpu.ctx), cc(&ctx1));
    let uuid = |d: c_int| {
        let mut u = sys::CUuuid { bytes: [0; 16] };
        // SAFETY: u is valid for a write.
        check(unsafe { sys::cuDeviceGetUuid_v2(&mut u, d) }).unwrap();
        u.bytes
    };
    assert_ne!(uuid(0), uuid(1));
    assert_ne!(
        gpu.ctx.cu_ctx(),
        ctx1.cu_ctx(),
        "one primary context per device"
    );
    let mut can = -1;
    // SAFETY: can is valid for a write.
    check(unsafe { sys::cuDeviceCanAccessPeer(&mut can, 0, 1) }).unwrap();
    assert_eq!(can, 1);
    // SAFETY: as above.
    check(unsafe { sys::cuDeviceCanAccessPeer(&mut can, 1, 1) }).unwrap();
    assert_eq!(can, 0, "a device is not its own peer");
}

#[test]
fn contexts_are_current_per_thread_and_allocations_need_one() {
    let Some((_serial, gpu, dev1)) = two() else {
        return;
    };
    let ctx1 = dev1.ctx.clone();
    gpu.ctx.bind_to_thread().unwrap();
    assert_eq!(current_device(), Ok(0));
    let other = std::thread::spawn(move || {
        // A new thread has no current context: allocating there is an error, not device 0.
        let none = current_device();
        let mut p = 0u64;
        // SAFETY: p is valid for a write.
        let alloc = unsafe { sys::cuMemAlloc_v2(&mut p, 64) };
        ctx1.bind_to_thread().unwrap();
        let bound = current_device();
        // SAFETY: as above.
        check(unsafe { sys::cuMemAlloc_v2(&mut p, 64) }).unwrap();
        let owner = ordinal_of(p);
        (none, alloc, bound, owner, context_of(p) == ctx1.cu_ctx())
    })
    .join()
    .unwrap();
    assert_eq!(other.0, Err(CUresult::CUDA_ERROR_INVALID_CONTEXT));
    assert_eq!(other.1, CUresult::CUDA_ERROR_INVALID_CONTEXT);
    assert_eq!(other.2, Ok(1));
    assert_eq!(other.3, Ok(1), "allocated in device 1's context");
    assert!(other.4);
    // The other thread's binding did not move this one's.
    assert_eq!(current_device(), Ok(0));
    let p = upload(&gpu.ctx, &[1.0]);
    assert_eq!(ordinal_of(p), Ok(0));
    assert_eq!(context_of(p), gpu.ctx.cu_ctx());
    assert_eq!(
        ordinal_of(0x10),
        Err(CUresult::CUDA_ERROR_INVALID_VALUE),
        "not a device address"
    );
}

#[test]
fn memory_is_counted_per_device() {
    let Some((_serial, gpu, dev1)) = two() else {
        return;
    };
    let ctx1 = dev1.ctx.clone();
    let (free0, total0) = gpu.ctx.mem_get_info().unwrap();
    let (free1, _) = ctx1.mem_get_info().unwrap();
    ctx1.bind_to_thread().unwrap();
    // SAFETY: a plain allocation in device 1's context, freed below.
    let p = unsafe { result::malloc_sync(1 << 30) }.unwrap();
    let (after1, _) = ctx1.mem_get_info().unwrap();
    let (after0, _) = gpu.ctx.mem_get_info().unwrap();
    assert_eq!(free1 - after1, 1 << 30);
    assert_eq!(after0, free0, "device 0 does not pay for device 1");
    // Each device has its whole memory: device 1 cannot take more than its own total.
    ctx1.bind_to_thread().unwrap();
    // SAFETY: an allocation that must fail.
    assert!(unsafe { result::malloc_sync(total0) }.is_err());
    // SAFETY: p came from malloc_sync; freed from another context (unified addressing).
    gpu.ctx.bind_to_thread().unwrap();
    unsafe { result::free_sync(p) }.unwrap();
    assert_eq!(ctx1.mem_get_info().unwrap().0, free1);
}

#[test]
fn copies_cross_devices() {
    let Some((_serial, gpu, dev1)) = two() else {
        return;
    };
    let ctx1 = dev1.ctx.clone();
    let v: Vec<f32> = common::data(1000, 7);
    let a = upload(&gpu.ctx, &v);
    let b = upload(&ctx1, &vec![0.0; 1000]);
    let c = upload(&gpu.ctx, &vec![0.0; 1000]);
    // Device pointers of different devices are disjoint.
    assert!(a.abs_diff(b) >= 4000 && b.abs_diff(c) >= 4000);
    // SAFETY: both ranges hold 4000 bytes in the named contexts.
    check(unsafe { sys::cuMemcpyPeer(b, ctx1.cu_ctx(), a, gpu.ctx.cu_ctx(), 4000) }).unwrap();
    assert_eq!(download(&ctx1, b, 1000), v);
    // Back with a plain device-to-device copy (unified addressing), on a stream.
    let s = gpu.ctx.default_stream();
    gpu.ctx.bind_to_thread().unwrap();
    // SAFETY: as above.
    unsafe { result::memcpy_dtod_async(c, b, 4000, s.cu_stream()) }.unwrap();
    assert_eq!(download(&gpu.ctx, c, 1000), v);
    // The async peer copy, device 1 to device 0, half of it.
    let zeros = upload(&gpu.ctx, &vec![0.0; 1000]);
    // SAFETY: as above.
    check(unsafe {
        sys::cuMemcpyPeerAsync(
            zeros,
            gpu.ctx.cu_ctx(),
            b,
            ctx1.cu_ctx(),
            2000,
            s.cu_stream(),
        )
    })
    .unwrap();
    let half = download(&gpu.ctx, zeros, 1000);
    assert_eq!(&half[..500], &v[..500]);
    assert!(half[500..].iter().all(|x| *x == 0.0));
    // A peer copy whose address is not in the context it names is refused.
    // SAFETY: the call checks the ranges before touching them.
    let wrong = unsafe { sys::cuMemcpyPeer(b, gpu.ctx.cu_ctx(), a, gpu.ctx.cu_ctx(), 4) };
    assert_eq!(wrong, CUresult::CUDA_ERROR_INVALID_VALUE);
}

#[test]
fn modules_and_streams_belong_to_their_context() {
    let Some((_serial, gpu, dev1)) = two() else {
        return;
    };
    let ctx1 = dev1.ctx.clone();
    let m0 = gpu.module(ADD_ONE);
    let x1 = upload(&ctx1, &[1.0, 2.0, 3.0]);
    let y1 = upload(&ctx1, &[0.0; 3]);
    ctx1.bind_to_thread().unwrap();
    // Device 0's module launched while device 1's context is current: refused, as on a GPU.
    let r = add_one(&m0, std::ptr::null_mut(), x1, y1, 3);
    assert_eq!(r, CUresult::CUDA_ERROR_INVALID_HANDLE);
    // The same PTX loaded in device 1's context runs there.
    let m1 = dev1.module(ADD_ONE);
    ctx1.bind_to_thread().unwrap();
    assert_eq!(
        add_one(&m1, std::ptr::null_mut(), x1, y1, 3),
        CUresult::CUDA_SUCCESS
    );
    assert_eq!(download(&ctx1, y1, 3), [2.0, 3.0, 4.0]);
    // A stream of device 0's context cannot carry device 1's launch.
    let s0 = gpu.ctx.new_stream().unwrap();
    ctx1.bind_to_thread().unwrap();
    let r = add_one(&m1, s0.cu_stream(), x1, y1, 3);
    assert_eq!(r, CUresult::CUDA_ERROR_INVALID_HANDLE);
    let s1 = ctx1.new_stream().unwrap();
    ctx1.bind_to_thread().unwrap();
    assert_eq!(
        add_one(&m1, s1.cu_stream(), y1, y1, 3),
        CUresult::CUDA_SUCCESS
    );
    assert_eq!(download(&ctx1, y1, 3), [3.0, 4.0, 5.0]);
    // No current context: no launch.
    std::thread::spawn(move || {
        assert_eq!(
            add_one(&m1, std::ptr::null_mut(), x1, y1, 3),
            CUresult::CUDA_ERROR_INVALID_CONTEXT
        );
    })
    .join()
    .unwrap();
}

#[test]
fn kernels_reach_a_peer_only_after_access_is_enabled() {
    let Some((_serial, gpu, dev1)) = two() else {
        return;
    };
    let ctx1 = dev1.ctx.clone();
    let m0 = gpu.module(ADD_ONE);
    let x1 = upload(&ctx1, &[5.0, 6.0]);
    let y0 = upload(&gpu.ctx, &[0.0; 2]);
    gpu.ctx.bind_to_thread().unwrap();
    // Kernels run one at a time (the driver state is locked per launch), so the peer set this
    // test changes is seen only by its own launches.
    let r = add_one(&m0, std::ptr::null_mut(), x1, y0, 2);
    assert_eq!(
        r,
        CUresult::CUDA_ERROR_ILLEGAL_ADDRESS,
        "device 1's memory from device 0"
    );
    assert!(common::last_error().contains("add_one"));
    // SAFETY: plain driver calls with valid handles.
    unsafe {
        check(sys::cuCtxEnablePeerAccess(ctx1.cu_ctx(), 0)).unwrap();
        assert_eq!(
            sys::cuCtxEnablePeerAccess(ctx1.cu_ctx(), 0),
            CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED
        );
        assert_eq!(
            sys::cuCtxEnablePeerAccess(gpu.ctx.cu_ctx(), 0),
            CUresult::CUDA_ERROR_INVALID_CONTEXT,
            "the current context is not its own peer"
        );
        assert_eq!(
            sys::cuCtxEnablePeerAccess(ctx1.cu_ctx(), 1),
            CUresult::CUDA_ERROR_INVALID_VALUE
        );
    }
    assert_eq!(
        add_one(&m0, std::ptr::null_mut(), x1, y0, 2),
        CUresult::CUDA_SUCCESS
    );
    assert_eq!(download(&gpu.ctx, y0, 2), [6.0, 7.0]);
    let mut seen = 0u64;
    // SAFETY: DEVICE_POINTER writes a CUdeviceptr.
    check(unsafe {
        sys::cuPointerGetAttribute(
            (&mut seen as *mut u64).cast(),
            CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_POINTER,
            x1,
        )
    })
    .unwrap();
    assert_eq!(
        seen, x1,
        "a peer's pointer is the same address (unified addressing)"
    );
    gpu.ctx.bind_to_thread().unwrap();
    // SAFETY: as above.
    unsafe {
        check(sys::cuCtxDisablePeerAccess(ctx1.cu_ctx())).unwrap();
        assert_eq!(
            sys::cuCtxDisablePeerAccess(ctx1.cu_ctx()),
            CUresult::CUDA_ERROR_PEER_ACCESS_NOT_ENABLED
        );
    }
    let r = add_one(&m0, std::ptr::null_mut(), x1, y0, 2);
    assert_eq!(r, CUresult::CUDA_ERROR_ILLEGAL_ADDRESS);
}

/// Run by [`bad_device_counts_fail_init`] in a child process with a bad `KILN_EMU_DEVICES`.
#[test]
#[ignore = "a child process of bad_device_counts_fail_init"]
fn child_init_with_bad_count() {
    let want = std::env::var("EXPECT_INIT").unwrap();
    let got = match result::init() {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{:?}", e.0),
    };
    assert_eq!(got, want);
}

#[test]
fn bad_device_counts_fail_init() {
    if two().is_none() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for (value, want, says) in [
        ("two", "CUDA_ERROR_INVALID_VALUE", true),
        ("17", "CUDA_ERROR_INVALID_VALUE", true),
        ("0", "CUDA_ERROR_NO_DEVICE", false),
        ("3", "ok", false),
    ] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "child_init_with_bad_count", "--ignored"])
            .env("KILN_EMU_DEVICES", value)
            .env("EXPECT_INIT", want)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "KILN_EMU_DEVICES={value}: {err}");
        assert_eq!(err.contains("KILN_EMU_DEVICES"), says, "{value}: {err}");
    }
}
