//! A minimal FFI binding to librrd (Debian's `librrd-dev`), for side-by-side
//! benchmarks only. The engine never links it.
#![expect(unsafe_code, reason = "calling librrd through its C API")]

use std::ffi::{CString, c_char, c_int, c_ulong, c_void};

#[link(name = "rrd")]
unsafe extern "C" {
    fn rrd_create_r(filename: *const c_char, step: c_ulong, last_up: i64, argc: c_int, argv: *const *const c_char) -> c_int;
    fn rrd_update_r(filename: *const c_char, template: *const c_char, argc: c_int, argv: *const *const c_char) -> c_int;
    fn rrd_fetch_r(
        filename: *const c_char,
        cf: *const c_char,
        start: *mut i64,
        end: *mut i64,
        step: *mut c_ulong,
        ds_cnt: *mut c_ulong,
        ds_namv: *mut *mut *mut c_char,
        data: *mut *mut f64,
    ) -> c_int;
    fn rrd_freemem(mem: *mut c_void);
    fn rrd_get_error() -> *const c_char;
    fn rrd_clear_error();
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn last_error() -> String {
    // SAFETY: rrd_get_error returns librrd's thread-local, NUL-terminated error buffer.
    let msg = unsafe { std::ffi::CStr::from_ptr(rrd_get_error()) }.to_string_lossy().into_owned();
    // SAFETY: no arguments; resets the thread-local buffer.
    unsafe { rrd_clear_error() };
    msg
}

/// `rrd_create_r(path, step, start, args)`.
pub fn create(path: &str, step: u64, start: i64, args: &[&str]) -> Result<(), String> {
    let path = c(path);
    let owned: Vec<CString> = args.iter().map(|a| c(a)).collect();
    let argv: Vec<*const c_char> = owned.iter().map(|a| a.as_ptr()).collect();
    let argc = c_int::try_from(argv.len()).unwrap_or(0);
    // SAFETY: every pointer is a live NUL-terminated string for the duration of the call.
    let rc = unsafe { rrd_create_r(path.as_ptr(), step, start, argc, argv.as_ptr()) };
    if rc == 0 { Ok(()) } else { Err(last_error()) }
}

/// `rrd_update_r(path, NULL, args)` with args such as `"1700000000:42"`.
pub fn update(path: &CString, args: &[CString]) -> Result<(), String> {
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let argc = c_int::try_from(argv.len()).unwrap_or(0);
    // SAFETY: path and args are live NUL-terminated strings; a NULL template means "all DSs".
    let rc = unsafe { rrd_update_r(path.as_ptr(), std::ptr::null(), argc, argv.as_ptr()) };
    if rc == 0 { Ok(()) } else { Err(last_error()) }
}

/// `rrd_fetch_r`; returns the number of values fetched.
pub fn fetch(path: &CString, cf: &CString, start: i64, end: i64) -> Result<usize, String> {
    let (mut s, mut e) = (start, end);
    let (mut step, mut ds_cnt): (c_ulong, c_ulong) = (1, 0);
    let mut names: *mut *mut c_char = std::ptr::null_mut();
    let mut data: *mut f64 = std::ptr::null_mut();
    // SAFETY: all out-pointers point at live locals; librrd allocates names and data with malloc.
    let rc = unsafe { rrd_fetch_r(path.as_ptr(), cf.as_ptr(), &mut s, &mut e, &mut step, &mut ds_cnt, &mut names, &mut data) };
    if rc != 0 {
        return Err(last_error());
    }
    let rows = usize::try_from((e - s) / i64::try_from(step.max(1)).unwrap_or(1)).unwrap_or(0);
    let count = rows * usize::try_from(ds_cnt).unwrap_or(0);
    // SAFETY: librrd returned ds_cnt malloc'd names in a malloc'd array, and malloc'd data;
    // rrd_freemem is free().
    unsafe {
        for i in 0..usize::try_from(ds_cnt).unwrap_or(0) {
            rrd_freemem((*names.add(i)).cast());
        }
        rrd_freemem(names.cast());
        rrd_freemem(data.cast());
    }
    Ok(count)
}
