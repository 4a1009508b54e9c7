//! Raw NDIS 6 CoNDIS client bindings for x86-64 (placeholder while the full set lands).
#![no_std]
#![allow(non_camel_case_types, non_snake_case, clippy::upper_case_acronyms)]

pub type NDIS_STATUS = i32;
pub type NDIS_HANDLE = *mut core::ffi::c_void;

#[cfg_attr(target_os = "windows", link(name = "ndis.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
extern "system" {
    pub fn NdisGetVersion() -> u32;
}

#[cfg_attr(target_os = "windows", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
extern "system" {
    pub fn KeGetCurrentIrql() -> u8;
    pub fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> !;
    pub fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    pub fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8;
    pub fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    pub fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32;
    pub fn __chkstk();
}
