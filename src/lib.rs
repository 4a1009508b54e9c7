#![cfg_attr(target_os = "windows", no_std)]
#[cfg(target_os = "windows")]
mod kernel {
    use ndis_sys::*;
    #[no_mangle]
    pub static _fltused: i32 = 0;
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        unsafe { KeBugCheckEx(0xE2, 0, 0, 0, 0) }
    }
    #[no_mangle]
    pub extern "system" fn DriverEntry(_d: *mut u8, _r: *mut u8) -> i32 {
        let mut buf = [0u8; 8192];
        let v = unsafe { NdisGetVersion() } as usize;
        buf[v % 8192] = unsafe { KeGetCurrentIrql() };
        core::hint::black_box(&mut buf);
        buf[v % 100] as i32
    }
}
