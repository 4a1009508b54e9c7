//! The Windows transport: `\\.\Partyline` opened with `CreateFileW` and driven with
//! `DeviceIoControl` (METHOD_BUFFERED, synchronous). `run` plays a scenario's requests on the
//! real driver; events only the simulator can produce are reported as skipped.
//!
//! Read: CreateFileW, DeviceIoControl
//! (https://learn.microsoft.com/windows/win32/api/ioapiset/nf-ioapiset-deviceiocontrol).
//! Changing state (call, add, drop, close) needs an elevated administrator: the device's DACL
//! gives everyone else read access only.

use std::process::ExitCode;
use std::ptr;

use partyline_core::model::{AtmAddress, TrafficProfile};
use partyline_ioctl as ioctl;
use partyline_ioctl::error::*;
use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::IO::DeviceIoControl;

use crate::portable::{self, EventOutcome, NetworkEvent, Scenario, StepResult, Target};
use crate::{RunArgs, Source};

/// An open handle to the control device, closed on drop.
pub struct Device {
    handle: HANDLE,
}

impl Device {
    /// Opens `\\.\Partyline` for reading, and for writing when `write` (administrators only).
    pub fn open(write: bool) -> Result<Device, String> {
        let path: Vec<u16> = ioctl::USER_PATH.encode_utf16().chain(Some(0)).collect();
        let access = GENERIC_READ | if write { GENERIC_WRITE } else { 0 };
        // SAFETY: `path` is a NUL-terminated UTF-16 string that outlives the call; no security
        // attributes and no template handle.
        let handle = unsafe {
            CreateFileW(
                path.as_ptr(),
                access,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                ptr::null(),
                OPEN_EXISTING,
                FILE_ATTRIBUTE_NORMAL,
                ptr::null_mut(),
            )
        };
        if handle == INVALID_HANDLE_VALUE {
            // SAFETY: no other call since CreateFileW failed on this thread.
            let error = unsafe { GetLastError() };
            return Err(match error {
                // ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND: no such device object.
                2 | 3 => format!(
                    "the partyline driver is not installed: {} was not found (install it and start it: see docs/INSTALL.md)",
                    ioctl::USER_PATH
                ),
                5 => format!(
                    "access to {} denied: changing state needs an elevated administrator",
                    ioctl::USER_PATH
                ),
                e => format!("cannot open {}: Win32 error {e}", ioctl::USER_PATH),
            });
        }
        Ok(Device { handle })
    }

    /// One synchronous `DeviceIoControl`: the NTSTATUS the driver completed the IRP with (mapped
    /// back from the Win32 error user mode sees) and the output bytes.
    pub fn control(&self, code: u32, input: &[u8], output_len: usize) -> Result<(i32, Vec<u8>), String> {
        let mut output = vec![0u8; output_len];
        let mut returned = 0u32;
        // SAFETY: `self.handle` is an open handle; the buffers are live for the call and their
        // lengths are the ones passed; no OVERLAPPED, so the call is synchronous.
        let ok = unsafe {
            DeviceIoControl(
                self.handle,
                code,
                input.as_ptr().cast(),
                input.len() as u32,
                output.as_mut_ptr().cast(),
                output_len as u32,
                &mut returned,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            // SAFETY: no other call since DeviceIoControl failed on this thread.
            let error = unsafe { GetLastError() };
            return nt_status_of(error)
                .map(|status| (status, Vec::new()))
                .ok_or_else(|| format!("DeviceIoControl failed: Win32 error {error}"));
        }
        output.truncate(returned as usize);
        Ok((STATUS_SUCCESS, output))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: the handle CreateFileW returned, closed once.
        unsafe { CloseHandle(self.handle) };
    }
}

/// The NTSTATUS behind the Win32 error `RtlNtStatusToDosError` gave for the statuses the driver
/// completes control requests with.
fn nt_status_of(error: u32) -> Option<i32> {
    Some(match error {
        1 => STATUS_INVALID_DEVICE_REQUEST,    // ERROR_INVALID_FUNCTION
        5 => STATUS_ACCESS_DENIED,             // ERROR_ACCESS_DENIED (also STATUS_DELETE_PENDING)
        22 => STATUS_INVALID_DEVICE_STATE,     // ERROR_BAD_COMMAND
        24 => STATUS_INFO_LENGTH_MISMATCH,     // ERROR_BAD_LENGTH
        31 => STATUS_UNSUCCESSFUL,             // ERROR_GEN_FAILURE
        50 => STATUS_NOT_SUPPORTED,            // ERROR_NOT_SUPPORTED
        87 => STATUS_INVALID_PARAMETER,        // ERROR_INVALID_PARAMETER
        122 => STATUS_BUFFER_TOO_SMALL,        // ERROR_INSUFFICIENT_BUFFER
        1168 => STATUS_NOT_FOUND,              // ERROR_NOT_FOUND
        1306 => STATUS_REVISION_MISMATCH,      // ERROR_REVISION_MISMATCH
        1450 => STATUS_INSUFFICIENT_RESOURCES, // ERROR_NO_SYSTEM_RESOURCES
        _ => return None,
    })
}

/// The real driver as a scenario target.
struct DeviceTarget {
    device: Device,
}

impl Target for DeviceTarget {
    fn device_control(
        &mut self,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<(i32, Vec<u8>), String> {
        self.device.control(code, input, output_len)
    }

    fn network(&mut self, event: NetworkEvent<'_>) -> EventOutcome {
        match event {
            // Real time stands in for simulated time: give completions a moment to arrive.
            NetworkEvent::Advance { ticks } => {
                std::thread::sleep(std::time::Duration::from_micros(ticks / 10));
                EventOutcome::Done
            }
            NetworkEvent::RunUntilIdle => {
                std::thread::sleep(std::time::Duration::from_millis(200));
                EventOutcome::Done
            }
            other => EventOutcome::Skipped(format!("{other:?} happens only on the simulator's network")),
        }
    }
}

/// `partyline run` on Windows: the scenario's requests on the real driver.
pub fn run_scenario(scenario: &Scenario, source: &Source, args: &RunArgs) -> ExitCode {
    let device = match Device::open(true) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("partyline: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "partyline: scenario '{}' ({}) on the real driver; adapters, remote behaviours, faults and seed are the simulator's and do not apply",
        scenario.name, source.origin
    );
    let _ = args;
    let steps = portable::run_steps(scenario, &mut DeviceTarget { device });
    for step in &steps {
        println!("{step}");
    }
    let failed: Vec<_> = steps.iter().filter(|s| s.is_failure()).collect();
    if failed.is_empty() {
        println!("PASS: every request ended as the scenario expects");
        ExitCode::SUCCESS
    } else {
        for step in failed {
            if let StepResult::Failed(why) = &step.result {
                eprintln!("step {} ({} line {}) failed: {why}", step.number, source.origin, step.line);
            }
        }
        ExitCode::from(1)
    }
}

fn id(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not an id (decimal or 0x-hex, as `partyline list` shows)"))
}

fn leaf(text: &str) -> Result<AtmAddress, String> {
    AtmAddress::parse(text)
        .map_err(|e| format!("`{text}` is not an ATM address ({e:?}): write +digits or 40 hex digits"))
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partyline: {e}");
            ExitCode::from(1)
        }
    }
}

fn checked(status: i32, what: &str) -> Result<(), String> {
    if status == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(format!("{what}: {}", portable::status_name(status)))
    }
}

const OUT: usize = ioctl::RECOMMENDED_OUTPUT_LEN;

pub fn call(af: &str, leaves: &[String]) -> ExitCode {
    finish((|| {
        let af = id(af)?;
        let leaves = leaves.iter().map(|l| leaf(l)).collect::<Result<Vec<_>, _>>()?;
        let mut input = vec![0u8; ioctl::request::make_call_len(leaves.len())];
        ioctl::request::encode_make_call(&mut input, af, &TrafficProfile::DEFAULT, &leaves)
            .map_err(|e| format!("{e:?}"))?;
        let (status, out) = Device::open(true)?.control(ioctl::IOCTL_PARTYLINE_MAKE_CALL, &input, OUT)?;
        checked(status, "MAKE_CALL")?;
        let call = ioctl::decode_make_call_response(&out).map_err(|e| format!("{e:?}"))?;
        println!("call {call:#x}");
        Ok(())
    })())
}

pub fn add(call: &str, address: &str) -> ExitCode {
    finish((|| {
        let input = ioctl::request::encode_add_party(id(call)?, &leaf(address)?);
        let (status, out) = Device::open(true)?.control(ioctl::IOCTL_PARTYLINE_ADD_PARTY, &input, OUT)?;
        checked(status, "ADD_PARTY")?;
        println!("party {:#x}", ioctl::decode_add_party_response(&out).map_err(|e| format!("{e:?}"))?);
        Ok(())
    })())
}

pub fn drop_party(party: &str) -> ExitCode {
    finish((|| {
        let input = ioctl::request::encode_drop_party(id(party)?);
        let (status, _) = Device::open(true)?.control(ioctl::IOCTL_PARTYLINE_DROP_PARTY, &input, 0)?;
        checked(status, "DROP_PARTY")
    })())
}

pub fn close(call: &str) -> ExitCode {
    finish((|| {
        let input = ioctl::request::encode_close_call(id(call)?);
        let (status, _) = Device::open(true)?.control(ioctl::IOCTL_PARTYLINE_CLOSE_CALL, &input, 0)?;
        checked(status, "CLOSE_CALL")
    })())
}

pub fn query(call: &str) -> ExitCode {
    finish((|| {
        let device = Device::open(false)?;
        let call = id(call)?;
        let mut cursor = 0;
        loop {
            let input = ioctl::request::encode_query_call(call, cursor);
            let (status, out) = device.control(ioctl::IOCTL_PARTYLINE_QUERY_CALL, &input, OUT)?;
            checked(status, "QUERY_CALL")?;
            let (summary, page) = ioctl::decode_query_call_response(&out).map_err(|e| format!("{e:?}"))?;
            if cursor == 0 {
                println!(
                    "call {:#x} on AF {:#x}: {}",
                    summary.id,
                    summary.af,
                    portable::describe_call(&summary, &[])
                );
            }
            for party in page.iter() {
                println!("  party {:#x} {} {:?}", party.id, party.address, party.state);
            }
            if !page.more || page.next == cursor {
                return Ok(());
            }
            cursor = page.next;
        }
    })())
}

pub fn list() -> ExitCode {
    finish((|| {
        let device = Device::open(false)?;
        let mut cursor = 0;
        loop {
            let (status, out) = device.control(
                ioctl::IOCTL_PARTYLINE_LIST_BINDINGS,
                &ioctl::request::encode_list_bindings(cursor),
                OUT,
            )?;
            checked(status, "LIST_BINDINGS")?;
            let page = ioctl::decode_list_bindings_response(&out).map_err(|e| format!("{e:?}"))?;
            for entry in page.iter() {
                match entry {
                    ioctl::ListEntry::Binding { id, state, afs } => {
                        println!("binding {id:#x} {state:?} ({afs} AF)")
                    }
                    ioctl::ListEntry::AddressFamily { id, binding, state, calls } => {
                        println!("  af {id:#x} on binding {binding:#x} {state:?} ({calls} calls)")
                    }
                }
            }
            if !page.more || page.next == cursor {
                break;
            }
            cursor = page.next;
        }
        let mut cursor = 0;
        loop {
            let (status, out) = device.control(
                ioctl::IOCTL_PARTYLINE_LIST_CALLS,
                &ioctl::request::encode_list_calls(cursor),
                OUT,
            )?;
            checked(status, "LIST_CALLS")?;
            let page = ioctl::decode_list_calls_response(&out).map_err(|e| format!("{e:?}"))?;
            for call in page.iter() {
                println!("call {:#x} on AF {:#x}", call.id, call.af);
            }
            if !page.more || page.next == cursor {
                return Ok(());
            }
            cursor = page.next;
        }
    })())
}

/// `partyline state`: the running driver's census (READ_STATE) and whatever no live parent
/// accounts for, as on the simulator.
pub fn state() -> ExitCode {
    finish((|| {
        let mut target = DeviceTarget { device: Device::open(false)? };
        let found = portable::audit::audit(&mut target)?;
        print!("{}", portable::audit::describe_state(&found.census));
        let unaccounted = found.unaccounted();
        if unaccounted.is_empty() {
            println!("every object is accounted for by a live parent");
            return Ok(());
        }
        for leftover in &unaccounted {
            println!("unaccounted: {leftover}");
        }
        Err("the driver holds objects no live parent accounts for (or work is queued: run again once idle)"
            .into())
    })())
}

pub fn counters() -> ExitCode {
    finish((|| {
        let (status, out) = Device::open(false)?.control(
            ioctl::IOCTL_PARTYLINE_READ_COUNTERS,
            &ioctl::request::encode_read_counters(),
            OUT,
        )?;
        checked(status, "READ_COUNTERS")?;
        println!("{:#?}", ioctl::decode_counters_response(&out).map_err(|e| format!("{e:?}"))?);
        Ok(())
    })())
}

pub fn trace(from: u64) -> ExitCode {
    finish((|| {
        let device = Device::open(false)?;
        let mut cursor = from;
        loop {
            let (status, out) = device.control(
                ioctl::IOCTL_PARTYLINE_READ_TRACE,
                &ioctl::request::encode_read_trace(cursor),
                OUT,
            )?;
            checked(status, "READ_TRACE")?;
            let page = ioctl::decode_trace_response(&out).map_err(|e| format!("{e:?}"))?;
            for record in page.iter() {
                println!("#{} {:?}", record.sequence, record.event);
            }
            if !page.more || page.next == cursor {
                return Ok(());
            }
            cursor = page.next;
        }
    })())
}
