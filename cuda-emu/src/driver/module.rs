//! Module load from PTX, functions and their attributes, kernel launch. A module belongs to the
//! context current when it was loaded: its variables live on that device, and its functions
//! launch only while that context is current (as on a GPU, where code is loaded per context).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::Arc;

use super::capture;
use super::code;
use super::context::current;
use super::device::{put, TOTAL_MEM};
use super::graph::Work;
use super::state::{fail, state, LoadedModule, State, SHARED_OPTIN};
use crate::decode::{self, var_size};
use crate::error::{EmuError, Result};
use crate::launch::{launch, Config};
use crate::ptx::ast::{Operand, VarDecl};
use crate::ptx::parse::{parse, type_size};

/// Parses and decodes `ptx`, placing its variables in `device`'s memory.
fn load(s: &mut State, device: usize, ptx: &str) -> Result<LoadedModule> {
    let m = parse(ptx)?;
    let mut vars = HashMap::new();
    let mem = &mut s.devices[device].mem;
    let mut place = |v: &VarDecl| -> Result<u64> {
        let size = var_size(v);
        if size.saturating_add(mem.used()) > TOTAL_MEM as u64 {
            return Err(EmuError::Parse {
                line: v.line,
                msg: format!("`{}` needs {size} bytes, more than device memory", v.name),
            });
        }
        let size = size as usize;
        let addr = mem.alloc(size);
        let elem = (type_size(&v.ty).unwrap_or(1) as usize).max(1);
        let bytes: Vec<u8> = v
            .init
            .iter()
            .flat_map(|o| {
                let bits = match o {
                    Operand::Int(i) => *i as u64,
                    Operand::F32(b) if elem == 8 => f64::from(f32::from_bits(*b)).to_bits(),
                    Operand::F32(b) => u64::from(*b),
                    Operand::Float(f) if elem == 4 => u64::from((*f as f32).to_bits()),
                    Operand::Float(f) => f.to_bits(),
                    _ => 0,
                };
                bits.to_le_bytes().into_iter().take(elem)
            })
            .take(size)
            .collect();
        if let Some(p) = mem
            .host_ptr(addr, bytes.len())
            .filter(|_| !bytes.is_empty())
        {
            // SAFETY: the range was just allocated and checked by `host_ptr`.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        }
        vars.insert(v.name.clone(), (addr, size));
        Ok(addr)
    };
    match decode::kernels(&m, &mut place) {
        Ok(kernels) => Ok(LoadedModule {
            device,
            kernels: kernels.into_iter().map(Arc::new).collect(),
            vars,
        }),
        Err(e) => {
            // A module refused after some of its variables were placed gives their memory back.
            for (addr, _) in vars.values() {
                s.devices[device].mem.free(*addr);
            }
            Err(e)
        }
    }
}

/// `cuModuleLoadData`: `image` must be NUL-terminated PTX text; loads into the current context.
///
/// # Safety
/// `module` must be valid for a write and `image` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut *mut c_void, image: *const c_void) -> u32 {
    if image.is_null() {
        return code::INVALID_VALUE;
    }
    // SAFETY: the caller passes a NUL-terminated image.
    let Ok(text) = unsafe { CStr::from_ptr(image.cast()) }.to_str() else {
        return code::INVALID_IMAGE;
    };
    if !text.contains(".version") {
        return code::INVALID_IMAGE;
    }
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut s = state();
    match load(&mut s, device, text) {
        Ok(m) => {
            let h = s.handle();
            s.modules.insert(h, m);
            // SAFETY: forwarded caller guarantee.
            unsafe { put(module, h as *mut c_void) }
        }
        Err(e) => fail(&e),
    }
}

/// `cuModuleLoad`: reads a `.ptx` file.
///
/// # Safety
/// `module` must be valid for a write and `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cuModuleLoad(module: *mut *mut c_void, path: *const c_char) -> u32 {
    if path.is_null() {
        return code::INVALID_VALUE;
    }
    // SAFETY: the caller passes a NUL-terminated path.
    let path = unsafe { CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned();
    let Ok(mut text) = std::fs::read(&path) else {
        return code::NOT_FOUND;
    };
    text.push(0);
    // SAFETY: `text` is NUL-terminated and outlives the call.
    unsafe { cuModuleLoadData(module, text.as_ptr().cast()) }
}

/// `cuModuleUnload`: frees the module's variables.
#[no_mangle]
pub extern "C" fn cuModuleUnload(module: *mut c_void) -> u32 {
    let mut s = state();
    let Some(m) = s.modules.remove(&(module as usize)) else {
        return code::INVALID_HANDLE;
    };
    for (addr, _) in m.vars.values() {
        s.devices[m.device].mem.free(*addr);
    }
    code::SUCCESS
}

/// `cuModuleGetFunction`.
///
/// # Safety
/// `func` must be valid for a write and `name` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cuModuleGetFunction(
    func: *mut *mut c_void,
    module: *mut c_void,
    name: *const c_char,
) -> u32 {
    if name.is_null() {
        return code::INVALID_VALUE;
    }
    // SAFETY: the caller passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    let mut s = state();
    let Some(m) = s.modules.get(&(module as usize)) else {
        return code::INVALID_HANDLE;
    };
    let Some(k) = m.kernels.iter().find(|k| k.name == name).cloned() else {
        return code::NOT_FOUND;
    };
    let device = m.device;
    let h = s.handle();
    s.funcs.insert(h, (device, k));
    // SAFETY: forwarded caller guarantee.
    unsafe { put(func, h as *mut c_void) }
}

/// `cuModuleGetGlobal_v2`.
///
/// # Safety
/// Each out pointer must be null or valid for a write; `name` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cuModuleGetGlobal_v2(
    dptr: *mut u64,
    bytes: *mut usize,
    module: *mut c_void,
    name: *const c_char,
) -> u32 {
    if name.is_null() {
        return code::INVALID_VALUE;
    }
    // SAFETY: the caller passes a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    let s = state();
    let Some(m) = s.modules.get(&(module as usize)) else {
        return code::INVALID_HANDLE;
    };
    let Some(&(addr, size)) = m.vars.get(name.as_ref()) else {
        return code::NOT_FOUND;
    };
    // SAFETY: each pointer is checked for null; the caller guarantees validity.
    unsafe {
        if !dptr.is_null() {
            dptr.write(addr);
        }
        if !bytes.is_null() {
            bytes.write(size);
        }
    }
    code::SUCCESS
}

/// `cuFuncGetAttribute`.
///
/// # Safety
/// `v` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuFuncGetAttribute(v: *mut c_int, attr: c_int, func: *mut c_void) -> u32 {
    let s = state();
    let Some((_, k)) = s.funcs.get(&(func as usize)) else {
        return code::INVALID_HANDLE;
    };
    let value = match attr {
        0 => 1024,
        1 => k.shared_static as c_int,
        3 => k.local_bytes as c_int,
        4 => k.nregs.min(255) as c_int,
        5 | 6 => 90,
        8 => s.dyn_smem_limit(func as usize, k) as c_int,
        _ => 0,
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { put(v, value) }
}

/// `cuFuncSetAttribute`: `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` (8) sets the dynamic
/// shared memory the function's launches may ask for, at most the opt-in limit less its static
/// shared memory (`CUDA_ERROR_INVALID_VALUE` beyond, or below 0); other attributes are accepted
/// and ignored.
#[no_mangle]
pub extern "C" fn cuFuncSetAttribute(func: *mut c_void, attr: c_int, value: c_int) -> u32 {
    let mut s = state();
    let Some((_, k)) = s.funcs.get(&(func as usize)) else {
        return code::INVALID_HANDLE;
    };
    if attr == 8 {
        let most = SHARED_OPTIN.saturating_sub(k.shared_static);
        let Ok(bytes) = u32::try_from(value) else {
            return code::INVALID_VALUE;
        };
        if bytes > most {
            return code::INVALID_VALUE;
        }
        s.dyn_smem.insert(func as usize, bytes);
    }
    code::SUCCESS
}

/// `cuFuncSetCacheConfig`: accepted and ignored.
#[no_mangle]
pub extern "C" fn cuFuncSetCacheConfig(_func: *mut c_void, _config: c_int) -> u32 {
    code::SUCCESS
}

/// `cuLaunchKernel`: runs the grid to completion before returning (or records it, with its
/// parameters, when the stream captures). The function's module and the
/// stream must belong to the current context (`CUDA_ERROR_INVALID_HANDLE` otherwise); the
/// kernel addresses its device's memory and that of peers the context enabled access to.
///
/// # Safety
/// `params` must hold one valid pointer per kernel parameter, each to that parameter's bytes.
#[no_mangle]
pub unsafe extern "C" fn cuLaunchKernel(
    func: *mut c_void,
    gx: c_uint,
    gy: c_uint,
    gz: c_uint,
    bx: c_uint,
    by: c_uint,
    bz: c_uint,
    smem: c_uint,
    stream: *mut c_void,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let threads = u64::from(bx) * u64::from(by) * u64::from(bz);
    if threads == 0 || threads > 1024 || gx == 0 || gy == 0 || gz == 0 || bz > 64 {
        return code::INVALID_VALUE;
    }
    // The state stays locked while the grid runs: like one in-order device queue, no copy or
    // free from another host thread overlaps a kernel.
    let mut s = state();
    let Some(kernel) = s
        .funcs
        .get(&(func as usize))
        .filter(|(d, _)| *d == device)
        .map(|(_, k)| k.clone())
    else {
        return code::INVALID_HANDLE;
    };
    if !s.stream_on(stream as usize, device) {
        return code::INVALID_HANDLE;
    }
    // Dynamic shared memory beyond the function's limit (48 KiB less its static shared memory
    // unless cuFuncSetAttribute raised it) fails the launch, as on a GPU.
    if smem > s.dyn_smem_limit(func as usize, &kernel) {
        return code::INVALID_VALUE;
    }
    if params.is_null() && (!extra.is_null() || !kernel.params.is_empty()) {
        return code::NOT_SUPPORTED;
    }
    let mut buf = vec![0u8; kernel.param_bytes as usize];
    for (i, &(off, size)) in kernel.params.iter().enumerate() {
        // SAFETY: the caller passes one pointer per parameter, each valid for its size,
        // which comes from the PTX signature.
        unsafe {
            let p = *params.add(i);
            std::ptr::copy_nonoverlapping(
                p.cast::<u8>(),
                buf.as_mut_ptr().add(off as usize),
                size as usize,
            );
        }
    }
    let cfg = Config {
        grid: [gx, gy, gz],
        block: [bx, by, bz],
        dyn_smem: smem,
    };
    // Parameters are captured by value, as the driver copies them at the call.
    let work = || Work::Kernel {
        kernel: kernel.clone(),
        cfg,
        params: buf.clone(),
    };
    if let Some(r) = capture::record(&mut s, stream as usize, Some(device), work) {
        return r;
    }
    match launch(&kernel, cfg, &buf, &s.view(device)) {
        Ok(_) => code::SUCCESS,
        Err(e) => fail(&e),
    }
}
