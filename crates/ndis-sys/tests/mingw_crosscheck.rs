//! MinGW-w64 cross-check: the Rust layouts of every CO_* and ATM structure that MinGW-w64's DDK
//! headers define are turned into a C file of `_Static_assert(offsetof(T, f) == N)` /
//! `sizeof` checks and compiled with `x86_64-w64-mingw32-gcc -fsyntax-only`.
//!
//! Headers: Debian `mingw-w64-common` (`/usr/share/mingw-w64/include/ddk/{ndis.h,atm.h}`, `qos.h`);
//! compiler: `gcc-mingw-w64-x86-64`. `MINGW_CC` and `MINGW_DDK_INCLUDE` override the defaults.
//!
//! - `ddk/atm.h` and `qos.h` are included whole.
//! - MinGW's `ddk/ndis.h` as a whole does not compile on its own (it redeclares
//!   `enum _NDIS_REQUEST_TYPE` already declared by `ntddndis.h`, and its `NdisMWanIndicateReceiveComplete`
//!   prototype misses a comma), so the test cuts the CO_* section verbatim out of the installed
//!   file, from `typedef ULONG NDIS_AF` through `} CO_SAP, *PCO_SAP;`, and compiles that.
//! - `CO_MEDIA_PARAMETERS` is the known MinGW bug: MinGW omits the WDK's `POINTER_ALIGNMENT` on
//!   `MediaSpecific` and says 0x0C / size 0x18, while the WDK and the x64 PDB say 0x10 / 0x20
//!   (condis-reference §5.3). The generated C asserts MinGW's numbers for it, and the Rust side
//!   asserts ours, so a fix on either side shows up here.
//!
//! Without the cross compiler the test prints a loud message and passes, unless `CI` is set, in
//! which case it fails (CI installs the package).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ndis_sys::*;

/// One `_Static_assert` line: `offsetof(ty, field) == value` (field `None` means `sizeof(ty)`).
struct Check {
    ty: &'static str,
    field: Option<&'static str>,
    value: usize,
}

/// `checks!(out; T { a, b.c }, U { x })` pushes `sizeof(T)` and one `offsetof` per field, with the
/// numbers taken from the Rust definitions.
macro_rules! checks {
    ($out:ident; $($t:ident { $($($f:ident).+),* $(,)? }),* $(,)?) => {
        $(
            $out.push(Check { ty: stringify!($t), field: None, value: core::mem::size_of::<$t>() });
            $(
                $out.push(Check {
                    ty: stringify!($t),
                    field: Some(concat!($(stringify!($f), "."),+)),
                    value: core::mem::offset_of!($t, $($f).+),
                });
            )*
        )*
    };
}

/// Every CO_* and ATM structure MinGW-w64 defines, except `CO_MEDIA_PARAMETERS` (see
/// [`co_media_parameters_checks`]).
fn layout_checks() -> Vec<Check> {
    let mut v = Vec::new();
    checks!(v;
        CO_ADDRESS_FAMILY { AddressFamily, MajorVersion, MinorVersion },
        CO_SPECIFIC_PARAMETERS { ParamType, Length, Parameters },
        CO_CALL_MANAGER_PARAMETERS { Transmit, Receive, CallMgrSpecific, CallMgrSpecific.Parameters },
        CO_CALL_PARAMETERS { Flags, CallMgrParameters, MediaParameters },
        CO_SAP { SapType, SapLength, Sap },
        FLOWSPEC {
            TokenRate, TokenBucketSize, PeakBandwidth, Latency, DelayVariation, ServiceType,
            MaxSduSize, MinimumPolicedSize,
        },
        Q2931_IE { IEType, IELength, IE },
        AAL1_PARAMETERS {
            Subtype, CBRRate, Multiplier, SourceClockRecoveryMethod, ErrorCorrectionMethod,
            StructuredDataTransferBlocksize, PartiallyFilledCellsMethod,
        },
        AAL34_PARAMETERS { ForwardMaxCPCSSDUSize, BackwardMaxCPCSSDUSize, LowestMID, HighestMID, SSCSType },
        AAL5_PARAMETERS { ForwardMaxCPCSSDUSize, BackwardMaxCPCSSDUSize, Mode, SSCSType },
        AALUSER_PARAMETERS { UserDefined },
        AAL_PARAMETERS_IE {
            AALType, AALSpecificParameters, AALSpecificParameters.AAL1Parameters,
            AALSpecificParameters.AAL34Parameters, AALSpecificParameters.AAL5Parameters,
            AALSpecificParameters.AALUserParameters,
        },
        ATM_AAL_OOB_INFO { AalType },
        ATM_ADDRESS { AddressType, NumberOfDigits, Address },
        ATM_BHLI_IE { HighLayerInfoType, HighLayerInfoLength, HighLayerInfo },
        ATM_BLLI_IE {
            Layer2Protocol, Layer2Mode, Layer2WindowSize, Layer2UserSpecifiedProtocol,
            Layer3Protocol, Layer3Mode, Layer3DefaultPacketSize, Layer3PacketWindowSize,
            Layer3UserSpecifiedProtocol, Layer3IPI, SnapId,
        },
        ATM_BROADBAND_BEARER_CAPABILITY_IE {
            BearerClass, TrafficType, TimingRequirements, ClippingSusceptability,
            UserPlaneConnectionConfig,
        },
        ATM_BROADBAND_SENDING_COMPLETE_IE { SendingComplete },
        ATM_CALLING_PARTY_NUMBER_IE { Number, PresentationIndication, ScreeningIndicator },
        ATM_CAUSE_IE { Location, Cause, DiagnosticsLength, Diagnostics },
        ATM_FLOW_PARAMETERS {
            ServiceCategory, AverageCellRate, PeakCellRate, MinimumCellRate, InitialCellRate,
            BurstLengthCells, MaxSduSize, TransientBufferExposure, CumulativeRMFixedRTT,
            RateIncreaseFactor, RateDecreaseFactor, ACRDecreaseTimeFactor,
            MaximumCellsPerForwardRMCell, MaximumForwardRMCellInterval, CutoffDecreaseFactor,
            Reserved1, MissingRMCellCount, Reserved2, Reserved3,
        },
        ATM_VPIVCI { Vpi, Vci },
        ATM_MEDIA_PARAMETERS {
            ConnectionId, AALType, CellDelayVariationCLP0, CellDelayVariationCLP1,
            CellLossRatioCLP0, CellLossRatioCLP1, CellTransferDelayCLP0, CellTransferDelayCLP1,
            DefaultCLP, Transmit, Receive,
        },
        ATM_PVC_SAP { Blli, Bhli },
        ATM_QOS_CLASS_IE { QOSClassForward, QOSClassBackward },
        ATM_RAW_IE { RawIELength, RawIEType, RawIEValue },
        ATM_SAP { Blli, Bhli, NumberOfAddresses, Addresses },
        ATM_TRAFFIC_DESCRIPTOR {
            PeakCellRateCLP0, PeakCellRateCLP01, SustainableCellRateCLP0, SustainableCellRateCLP01,
            MaximumBurstSizeCLP0, MaximumBurstSizeCLP01, Tagging,
        },
        ATM_TRAFFIC_DESCRIPTOR_IE { ForwardTD, BackwardTD, BestEffort },
        ATM_TRANSIT_NETWORK_SELECTION_IE { TypeOfNetworkId, NetworkIdPlan, NetworkIdLength, NetworkId },
        ATM_LIJ_CALLID_IE { Identifier },
        Q2931_ADD_PVC {
            CalledParty, CallingParty, ConnectionId, AALType, ForwardFP, BackwardFP, Flags,
            LocalSap, DestinationSap, LIJIdPresent, LIJId,
        },
        Q2931_DELETE_PVC { ConnectionId },
        CO_GET_CALL_INFORMATION { CallInfoType, CallInfoLength, CallInfoBuffer },
        Q2931_CALLMGR_PARAMETERS { CalledParty, CallingParty, InfoElementCount, InfoElements },
        ATM_VC_RATES_SUPPORTED { MinCellRate, MaxCellRate },
        ATM_SERVICE_ADDRESS_LIST {
            ServiceRegistryType, NumberOfAddressesAvailable, NumberOfAddressesReturned, Address,
        },
    );
    v
}

/// The known MinGW bug: MinGW's numbers in C, ours checked in Rust.
fn co_media_parameters_checks() -> Vec<Check> {
    assert_eq!(core::mem::offset_of!(CO_MEDIA_PARAMETERS, MediaSpecific), 0x10, "WDK/PDB x64 offset");
    assert_eq!(core::mem::size_of::<CO_MEDIA_PARAMETERS>(), 0x20, "WDK/PDB x64 size");
    let mut v = Vec::new();
    checks!(v; CO_MEDIA_PARAMETERS { Flags, ReceivePriority, ReceiveSizeHint });
    v[0].value = 0x18; // MinGW's sizeof, wrong for x64
    v.push(Check { ty: "CO_MEDIA_PARAMETERS", field: Some("MediaSpecific."), value: 0x0C }); // MinGW's offset
    v
}

fn ddk_include_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MINGW_DDK_INCLUDE") {
        return Some(PathBuf::from(dir));
    }
    ["/usr/share/mingw-w64/include", "/usr/x86_64-w64-mingw32/include"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("ddk/ndis.h").is_file() && d.join("ddk/atm.h").is_file())
}

fn compiler() -> String {
    std::env::var("MINGW_CC").unwrap_or_else(|_| "x86_64-w64-mingw32-gcc".to_owned())
}

fn toolchain_available() -> bool {
    Command::new(compiler()).arg("--version").output().is_ok_and(|o| o.status.success())
        && ddk_include_dir().is_some()
}

/// Loud skip outside CI; failure in CI.
fn require_toolchain() -> bool {
    if toolchain_available() {
        return true;
    }
    let message = format!(
        "\n=====================================================================\n\
         MinGW cross-check NOT RUN: `{}` or MinGW-w64 DDK headers (ddk/ndis.h, ddk/atm.h) not found.\n\
         Install with: apt-get install -y mingw-w64-common gcc-mingw-w64-x86-64\n\
         =====================================================================\n",
        compiler()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}(CI is set, so this is a failure)");
    }
    // Written to the stderr handle directly: the test harness captures `eprintln!` of passing
    // tests, and this message must be seen.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
    false
}

/// The CO_* section of MinGW's ddk/ndis.h, verbatim.
fn ndis_co_section(include: &Path) -> String {
    let text = std::fs::read_to_string(include.join("ddk/ndis.h")).expect("read ddk/ndis.h");
    let start = text.find("typedef ULONG NDIS_AF").expect("`typedef ULONG NDIS_AF` in ddk/ndis.h");
    let end_marker = "} CO_SAP, *PCO_SAP;";
    let end = text[start..].find(end_marker).expect("`} CO_SAP, *PCO_SAP;` in ddk/ndis.h")
        + start
        + end_marker.len();
    text[start..end].to_owned()
}

fn c_source(include: &Path, checks: &[Check]) -> String {
    let mut c = String::new();
    c.push_str("/* Generated by crates/ndis-sys/tests/mingw_crosscheck.rs */\n");
    c.push_str("#include <windef.h>\n#include <qos.h>\n#include <stddef.h>\n");
    c.push_str("/* ---- CO_* section cut verbatim from ddk/ndis.h ---- */\n");
    c.push_str(&ndis_co_section(include));
    c.push_str("\n/* ---- end of ddk/ndis.h section ---- */\n#include <ddk/atm.h>\n\n");
    for check in checks {
        match check.field {
            None => writeln!(
                c,
                "_Static_assert(sizeof({t}) == {v:#x}, \"sizeof({t}) == {v:#x}\");",
                t = check.ty,
                v = check.value
            ),
            Some(f) => {
                let f = f.trim_end_matches('.');
                writeln!(
                    c,
                    "_Static_assert(offsetof({t}, {f}) == {v:#x}, \"offsetof({t}, {f}) == {v:#x}\");",
                    t = check.ty,
                    v = check.value
                )
            }
        }
        .unwrap();
    }
    c
}

/// Compiles `source` with `-fsyntax-only`; `Err(stderr)` when it does not compile.
fn compile(include: &Path, source: &str, name: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("ndis-sys-mingw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, source).unwrap();
    let output = Command::new(compiler())
        .arg("-fsyntax-only")
        .arg("-Werror")
        .arg("-isystem")
        .arg(include)
        .arg(&file)
        .output()
        .expect("run the MinGW compiler");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn rust_layouts_agree_with_mingw_headers() {
    if !require_toolchain() {
        return;
    }
    let include = ddk_include_dir().unwrap();
    let mut checks = layout_checks();
    checks.extend(co_media_parameters_checks());
    assert!(checks.len() > 200, "expected the full set of checks, got {}", checks.len());
    let source = c_source(&include, &checks);
    if let Err(stderr) = compile(&include, &source, "layouts.c") {
        panic!("MinGW disagrees with the Rust layouts:\n{stderr}\n--- generated C ---\n{source}");
    }
}

/// The cross-check must be able to fail: a deliberately wrong offset makes the C compile fail and
/// the error names the offending assertion.
#[test]
fn crosscheck_catches_a_wrong_offset() {
    if !require_toolchain() {
        return;
    }
    let include = ddk_include_dir().unwrap();
    let wrong = [Check { ty: "CO_CALL_PARAMETERS", field: Some("MediaParameters."), value: 0x0C }];
    let stderr =
        compile(&include, &c_source(&include, &wrong), "wrong.c").expect_err("wrong offset compiled");
    assert!(stderr.contains("offsetof(CO_CALL_PARAMETERS, MediaParameters) == 0xc"), "{stderr}");
}

/// The MinGW bug is pinned: asserting the WDK numbers for CO_MEDIA_PARAMETERS against MinGW fails.
#[test]
fn mingw_co_media_parameters_is_known_wrong_for_x64() {
    if !require_toolchain() {
        return;
    }
    let include = ddk_include_dir().unwrap();
    let wdk = [
        Check { ty: "CO_MEDIA_PARAMETERS", field: Some("MediaSpecific."), value: 0x10 },
        Check { ty: "CO_MEDIA_PARAMETERS", field: None, value: 0x20 },
    ];
    let stderr = compile(&include, &c_source(&include, &wdk), "media.c")
        .expect_err("MinGW fixed CO_MEDIA_PARAMETERS?");
    assert!(stderr.contains("offsetof(CO_MEDIA_PARAMETERS, MediaSpecific) == 0x10"), "{stderr}");
}

/// `#define` values of MinGW's `ntddndis.h` against the Rust constants: the CoNDIS OIDs (the
/// address OIDs partyline sends and answers). MinGW declares neither `CO_ADDRESS`,
/// `CO_ADDRESS_LIST` nor the body of `NDIS_OID_REQUEST`; their layouts are asserted in Rust from
/// the Learn pages (oid-co-get-addresses, ns-ndis-_ndis_oid_request).
fn oid_source(values: &[(&str, u32)]) -> String {
    let mut c = String::from("/* Generated by crates/ndis-sys/tests/mingw_crosscheck.rs */\n");
    // NdisRequestMethod exists only for NDIS 6 in ntddndis.h.
    c.push_str("#define NDIS_SUPPORT_NDIS6 1\n#include <windef.h>\n#include <ntddndis.h>\n");
    for (name, value) in values {
        writeln!(c, "_Static_assert({name} == {value:#x}u, \"{name} == {value:#x}\");").unwrap();
    }
    c
}

#[test]
fn co_oid_constants_agree_with_mingw_ntddndis() {
    if !require_toolchain() {
        return;
    }
    let include = ddk_include_dir().unwrap();
    let values = [
        ("OID_CO_ADD_PVC", OID_CO_ADD_PVC),
        ("OID_CO_DELETE_PVC", OID_CO_DELETE_PVC),
        ("OID_CO_GET_CALL_INFORMATION", OID_CO_GET_CALL_INFORMATION),
        ("OID_CO_ADD_ADDRESS", OID_CO_ADD_ADDRESS),
        ("OID_CO_DELETE_ADDRESS", OID_CO_DELETE_ADDRESS),
        ("OID_CO_GET_ADDRESSES", OID_CO_GET_ADDRESSES),
        ("OID_CO_ADDRESS_CHANGE", OID_CO_ADDRESS_CHANGE),
        ("OID_CO_SIGNALING_ENABLED", OID_CO_SIGNALING_ENABLED),
        ("OID_CO_SIGNALING_DISABLED", OID_CO_SIGNALING_DISABLED),
        ("OID_CO_AF_CLOSE", OID_CO_AF_CLOSE),
        ("NdisRequestQueryInformation", NdisRequestQueryInformation),
        ("NdisRequestSetInformation", NdisRequestSetInformation),
        ("NdisRequestMethod", NdisRequestMethod),
    ];
    let source = oid_source(&values);
    if let Err(stderr) = compile(&include, &source, "oids.c") {
        panic!("MinGW disagrees with the Rust OID constants:\n{stderr}\n--- generated C ---\n{source}");
    }
    // And it can fail.
    let stderr =
        compile(&include, &oid_source(&[("OID_CO_GET_ADDRESSES", OID_CO_ADDRESS_CHANGE)]), "oid-wrong.c")
            .expect_err("a wrong OID compiled");
    assert!(stderr.contains("OID_CO_GET_ADDRESSES == 0xfe000007"), "{stderr}");
}
