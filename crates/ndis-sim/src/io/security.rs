//! The security model and the security routines of ntoskrnl.exe: SIDs, access-allowed ACEs, the
//! DACL of a device object and the access check of an open ([`Security::granted`] for a
//! [`Caller`]); `RtlCreateSecurityDescriptor`, `RtlCreateAcl`, `RtlAddAccessAllowedAce`,
//! `RtlSetDaclSecurityDescriptor`, `RtlLengthSid`.
//!
//! Read: https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtladdaccessallowedace
//! (and the other routines' pages), "Securing Device Objects"
//! (https://learn.microsoft.com/windows-hardware/drivers/kernel/securing-device-objects).
//!
//! Flow: the driver builds an absolute descriptor and a DACL in its own buffers with the `Rtl*`
//! routines, each of which checks revisions, sizes and pointers as the DDI pages state (a badly
//! built one is refused with the documented status and reported); the object manager then reads
//! the DACL into a [`Security`] with [`read_acl`].

use std::fmt;

use ndis_sys::base::{ACCESS_MASK, BOOLEAN, NTSTATUS};
use ndis_sys::kernel::*;
use ndis_sys::status::{
    STATUS_ALLOTTED_SPACE_EXCEEDED, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_ACL, STATUS_INVALID_PARAMETER,
    STATUS_INVALID_SECURITY_DESCR, STATUS_INVALID_SID, STATUS_REVISION_MISMATCH, STATUS_SUCCESS,
    STATUS_UNKNOWN_REVISION,
};

use super::entry::enter;
use super::rules;
use crate::ddi::{Ddi, IrqlRequirement::AtMost};
use crate::kernel::{World, APC_LEVEL, PASSIVE_LEVEL};
use crate::verifier;

/// A security identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    pub authority: [u8; 6],
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    fn new(authority: u8, sub_authorities: &[u32]) -> Sid {
        Sid { authority: [0, 0, 0, 0, 0, authority], sub_authorities: sub_authorities.to_vec() }
    }
    /// S-1-5-18, LocalSystem.
    pub fn local_system() -> Sid {
        Sid::new(5, &[SECURITY_LOCAL_SYSTEM_RID])
    }
    /// S-1-5-32-544, BUILTIN\Administrators.
    pub fn administrators() -> Sid {
        Sid::new(5, &[SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS])
    }
    /// S-1-5-32-545, BUILTIN\Users.
    pub fn users() -> Sid {
        Sid::new(5, &[SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_USERS])
    }
    /// S-1-5-11, Authenticated Users.
    pub fn authenticated_users() -> Sid {
        Sid::new(5, &[SECURITY_AUTHENTICATED_USER_RID])
    }
    /// S-1-1-0, Everyone.
    pub fn everyone() -> Sid {
        Sid::new(1, &[SECURITY_WORLD_RID])
    }
    /// `RtlLengthSid`.
    pub fn len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }
    /// Never true for a valid SID.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authority = self.authority.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
        write!(f, "S-1-{authority}")?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An access-allowed ACE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ace {
    pub sid: Sid,
    pub mask: ACCESS_MASK,
}

/// The DACL of a device object as the simulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// What IoCreateDevice gives a device: SYSTEM and Administrators all access; Everyone read,
    /// write and execute.
    Default,
    /// A NULL DACL: everyone all access.
    NullDacl,
    /// A DACL of access-allowed ACEs (empty: nobody gets anything).
    Dacl(Vec<Ace>),
}

/// Maps generic rights to file rights (the generic mapping of file and device objects).
pub fn map_generic(mask: ACCESS_MASK) -> ACCESS_MASK {
    let mut mapped = mask & !(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL);
    if mask & GENERIC_READ != 0 {
        mapped |= FILE_GENERIC_READ;
    }
    if mask & GENERIC_WRITE != 0 {
        mapped |= FILE_GENERIC_WRITE;
    }
    if mask & GENERIC_EXECUTE != 0 {
        mapped |= FILE_GENERIC_EXECUTE;
    }
    if mask & GENERIC_ALL != 0 {
        mapped |= FILE_ALL_ACCESS;
    }
    mapped
}

impl Security {
    fn aces(&self) -> Vec<Ace> {
        match self {
            Security::Default => vec![
                Ace { sid: Sid::local_system(), mask: FILE_ALL_ACCESS },
                Ace { sid: Sid::administrators(), mask: FILE_ALL_ACCESS },
                Ace {
                    sid: Sid::everyone(),
                    mask: FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE,
                },
            ],
            Security::NullDacl => vec![Ace { sid: Sid::everyone(), mask: FILE_ALL_ACCESS }],
            Security::Dacl(aces) => aces.clone(),
        }
    }

    /// The file rights a caller's token is granted (allow ACEs only, so the order does not matter).
    pub fn granted(&self, caller: Caller) -> ACCESS_MASK {
        // Without building the ACE list or the token: every open checks this.
        let everyone = caller.has(1, &[SECURITY_WORLD_RID]);
        match self {
            Security::Default => {
                let full = caller.has(5, &[SECURITY_LOCAL_SYSTEM_RID])
                    || caller.has(5, &[SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS]);
                let mut mask = 0;
                if full {
                    mask |= map_generic(FILE_ALL_ACCESS);
                }
                if everyone {
                    mask |= map_generic(FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE);
                }
                mask
            }
            Security::NullDacl => {
                if everyone {
                    map_generic(FILE_ALL_ACCESS)
                } else {
                    0
                }
            }
            Security::Dacl(aces) => aces
                .iter()
                .filter(|a| {
                    caller.has(a.sid.authority[5], &a.sid.sub_authorities) && a.sid.authority[..5] == [0; 5]
                })
                .fold(0, |m, a| m | map_generic(a.mask)),
        }
    }

    /// Grant analysis: `None` when SYSTEM and Administrators have full access and every other SID
    /// at most read access; otherwise what is wrong.
    pub fn restrictive_problem(&self) -> Option<String> {
        if *self == Security::Default {
            return Some("the device still has its default DACL (Everyone: read, write, execute)".into());
        }
        if *self == Security::NullDacl {
            return Some("the device has a NULL DACL (Everyone: all access)".into());
        }
        let aces = self.aces();
        let rights =
            |sid: &Sid| aces.iter().filter(|a| a.sid == *sid).fold(0, |m, a| m | map_generic(a.mask));
        for (sid, name) in [(Sid::local_system(), "SYSTEM"), (Sid::administrators(), "Administrators")] {
            let got = rights(&sid);
            if got & FILE_ALL_ACCESS != FILE_ALL_ACCESS {
                return Some(format!("{name} ({sid}) lacks full access (granted 0x{got:08X})"));
            }
        }
        for ace in &aces {
            if ace.sid == Sid::local_system() || ace.sid == Sid::administrators() {
                continue;
            }
            let mapped = map_generic(ace.mask);
            if mapped & !FILE_GENERIC_READ != 0 {
                return Some(format!(
                    "{} is granted 0x{mapped:08X}, more than read access (0x{FILE_GENERIC_READ:08X})",
                    ace.sid
                ));
            }
        }
        None
    }
}

/// Who sends a request from user mode: the groups of their token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A service running as LocalSystem.
    System,
    /// An elevated administrator.
    Administrator,
    /// A standard user.
    User,
}

impl Caller {
    /// Whether the caller's token holds the SID S-1-`authority`-`sub_authorities`… (what
    /// [`Caller::groups`] lists, without building it).
    pub fn has(self, authority: u8, sub_authorities: &[u32]) -> bool {
        let administrators = [SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS];
        let users = [SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_USERS];
        match (authority, sub_authorities) {
            (1, [SECURITY_WORLD_RID]) | (5, [SECURITY_AUTHENTICATED_USER_RID]) => true,
            (5, [rid]) if *rid == SECURITY_LOCAL_SYSTEM_RID => self == Caller::System,
            (5, subs) if subs == administrators => matches!(self, Caller::System | Caller::Administrator),
            (5, subs) if subs == users => matches!(self, Caller::Administrator | Caller::User),
            _ => false,
        }
    }

    /// The SIDs in the caller's token.
    pub fn groups(self) -> Vec<Sid> {
        let mut groups = vec![Sid::everyone(), Sid::authenticated_users()];
        match self {
            Caller::System => groups.extend([Sid::local_system(), Sid::administrators()]),
            Caller::Administrator => groups.extend([Sid::administrators(), Sid::users()]),
            Caller::User => groups.push(Sid::users()),
        }
        groups
    }
}

/// Reads and checks a SID (RtlValidSid: revision 1, at most 15 sub-authorities).
///
/// # Safety
/// `sid` is null or points to at least `8 + 4 * SubAuthorityCount` readable bytes.
pub(super) unsafe fn read_sid(sid: *const u8) -> Result<Sid, String> {
    if sid.is_null() {
        return Err("the SID pointer is NULL".into());
    }
    // SAFETY: the caller's contract: the 8-byte SID header is readable.
    let header = unsafe { std::ptr::read_unaligned(sid.cast::<[u8; 8]>()) };
    if header[0] != SID_REVISION {
        return Err(format!("SID revision {} (must be {SID_REVISION})", header[0]));
    }
    if header[1] > SID_MAX_SUB_AUTHORITIES {
        return Err(format!("SID has {} sub-authorities (at most {SID_MAX_SUB_AUTHORITIES})", header[1]));
    }
    let mut authority = [0u8; 6];
    authority.copy_from_slice(&header[2..8]);
    let sub_authorities = (0..usize::from(header[1]))
        // SAFETY: the caller's contract: SubAuthorityCount u32s follow the header.
        .map(|i| unsafe { std::ptr::read_unaligned(sid.add(8 + 4 * i).cast::<u32>()) })
        .collect();
    Ok(Sid { authority, sub_authorities })
}

/// Reads an ACL: header checks, then every ACE within `AclSize`. Returns the ACEs and the bytes
/// they use (header included).
///
/// # Safety
/// `acl` is null or points to `AclSize` readable bytes.
pub(super) unsafe fn read_acl(acl: *const ACL) -> Result<(Vec<Ace>, usize), String> {
    if acl.is_null() {
        return Err("the ACL pointer is NULL".into());
    }
    // SAFETY: the caller's contract: the ACL header is readable.
    let header = unsafe { acl.read_unaligned() };
    if !(u32::from(header.AclRevision) == ACL_REVISION || u32::from(header.AclRevision) == ACL_REVISION_DS) {
        return Err(format!("ACL revision {} (ACL_REVISION 2 or ACL_REVISION_DS 4)", header.AclRevision));
    }
    let size = usize::from(header.AclSize);
    if size < std::mem::size_of::<ACL>() {
        return Err(format!("AclSize {size} is smaller than the ACL header"));
    }
    let base = acl.cast::<u8>();
    let mut offset = std::mem::size_of::<ACL>();
    let mut aces = Vec::new();
    for index in 0..header.AceCount {
        if offset + 4 > size {
            return Err(format!("ACE {index} starts past AclSize {size}"));
        }
        // SAFETY: offset + 4 <= AclSize, inside the ACL the caller vouched for.
        let ace = unsafe { base.add(offset).cast::<ACE_HEADER>().read_unaligned() };
        let ace_size = usize::from(ace.AceSize);
        if ace_size < 8 || ace_size % 4 != 0 || offset + ace_size > size {
            return Err(format!("ACE {index} has size {ace_size} at offset {offset} of a {size}-byte ACL"));
        }
        if ace.AceType == ACCESS_ALLOWED_ACE_TYPE {
            // SAFETY: the mask lies within the ACE, which lies within the ACL.
            let mask = unsafe { base.add(offset + 4).cast::<u32>().read_unaligned() };
            // SAFETY: the SID starts within the ACE; its length is checked against the ACE below.
            let sid = unsafe { read_sid(base.add(offset + 8)) }?;
            if 8 + sid.len() > ace_size {
                return Err(format!("the SID of ACE {index} overflows the ACE"));
            }
            aces.push(Ace { sid, mask });
        } else {
            return Err(format!(
                "ACE {index} has type {} (only access-allowed ACEs are modelled)",
                ace.AceType
            ));
        }
        offset += ace_size;
    }
    Ok((aces, offset))
}

pub(super) fn security_error(world: &World, name: &str, detail: String) {
    verifier::report(world, rules::SECURITY_OBJECTS, format!("ntoskrnl.exe!{name}"), detail);
}

/// `RtlCreateSecurityDescriptor`. IRQL: PASSIVE_LEVEL. Revision must be
/// SECURITY_DESCRIPTOR_REVISION, else STATUS_UNKNOWN_REVISION.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcreatesecuritydescriptor
pub(super) unsafe extern "win64" fn rtl_create_security_descriptor(
    sd: *mut SECURITY_DESCRIPTOR,
    revision: u32,
) -> NTSTATUS {
    let detail = || format!("0x{:x}, revision {revision}", sd as usize);
    enter(
        &Ddi::ntoskrnl("RtlCreateSecurityDescriptor", AtMost(PASSIVE_LEVEL), rules::IRQL_IO),
        detail,
        |world, _| {
            if revision != SECURITY_DESCRIPTOR_REVISION {
                security_error(
                    world,
                    "RtlCreateSecurityDescriptor",
                    format!("revision {revision} (must be SECURITY_DESCRIPTOR_REVISION 1)"),
                );
                return STATUS_UNKNOWN_REVISION;
            }
            if sd.is_null() {
                security_error(world, "RtlCreateSecurityDescriptor", "NULL descriptor".into());
                return STATUS_INVALID_PARAMETER;
            }
            let empty = SECURITY_DESCRIPTOR {
                Revision: SECURITY_DESCRIPTOR_REVISION as u8,
                Sbz1: 0,
                Control: 0,
                Owner: std::ptr::null_mut(),
                Group: std::ptr::null_mut(),
                Sacl: std::ptr::null_mut(),
                Dacl: std::ptr::null_mut(),
            };
            // SAFETY: the driver passes a writable SECURITY_DESCRIPTOR_MIN_LENGTH buffer (DDI contract).
            unsafe { sd.write_unaligned(empty) };
            STATUS_SUCCESS
        },
    )
}

/// `RtlCreateAcl`. IRQL <= APC_LEVEL. STATUS_BUFFER_TOO_SMALL when AclLength cannot hold the
/// header; STATUS_INVALID_PARAMETER for an unknown revision or a length above 0xFFFF.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtlcreateacl
pub(super) unsafe extern "win64" fn rtl_create_acl(acl: *mut ACL, length: u32, revision: u32) -> NTSTATUS {
    let detail = || format!("0x{:x}, {length} bytes, revision {revision}", acl as usize);
    enter(&Ddi::ntoskrnl("RtlCreateAcl", AtMost(APC_LEVEL), rules::IRQL_IO), detail, |world, _| {
        if (length as usize) < std::mem::size_of::<ACL>() {
            security_error(world, "RtlCreateAcl", format!("AclLength {length} cannot hold the ACL header"));
            return STATUS_BUFFER_TOO_SMALL;
        }
        if !(revision == ACL_REVISION || revision == ACL_REVISION_DS) || length > 0xFFFF {
            security_error(
                world,
                "RtlCreateAcl",
                format!("revision {revision} or AclLength {length} is invalid"),
            );
            return STATUS_INVALID_PARAMETER;
        }
        if acl.is_null() {
            security_error(world, "RtlCreateAcl", "NULL ACL".into());
            return STATUS_INVALID_PARAMETER;
        }
        let header =
            ACL { AclRevision: revision as u8, Sbz1: 0, AclSize: (length & !3) as u16, AceCount: 0, Sbz2: 0 };
        // SAFETY: the driver passes a writable buffer of AclLength >= 8 bytes (DDI contract).
        unsafe { acl.write_unaligned(header) };
        STATUS_SUCCESS
    })
}

/// `RtlAddAccessAllowedAce`. IRQL <= APC_LEVEL. STATUS_ALLOTTED_SPACE_EXCEEDED when the ACE does
/// not fit; STATUS_INVALID_ACL, STATUS_INVALID_SID, STATUS_REVISION_MISMATCH.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtladdaccessallowedace
pub(super) unsafe extern "win64" fn rtl_add_access_allowed_ace(
    acl: *mut ACL,
    revision: u32,
    mask: ACCESS_MASK,
    sid: *mut SID,
) -> NTSTATUS {
    const NAME: &str = "RtlAddAccessAllowedAce";
    // SAFETY: the driver passes a valid SID (DDI contract); read_sid checks its header first.
    let parsed = unsafe { read_sid(sid.cast::<u8>()) };
    let detail = || match &parsed {
        Ok(s) => format!("0x{:x}, revision {revision}, 0x{mask:08X}, {s}", acl as usize),
        Err(e) => format!("0x{:x}, revision {revision}, 0x{mask:08X}, bad SID: {e}", acl as usize),
    };
    enter(&Ddi::ntoskrnl(NAME, AtMost(APC_LEVEL), rules::IRQL_IO), detail, |world, _| {
        let sid = match &parsed {
            Ok(sid) => sid.clone(),
            Err(e) => {
                security_error(world, NAME, e.clone());
                return STATUS_INVALID_SID;
            }
        };
        if !(revision == ACL_REVISION || revision == ACL_REVISION_DS) {
            security_error(world, NAME, format!("ACE revision {revision} is unknown"));
            return STATUS_REVISION_MISMATCH;
        }
        // SAFETY: the driver passes an ACL made by RtlCreateAcl (DDI contract); read_acl stays
        // within its AclSize.
        let (_, used) = match unsafe { read_acl(acl) } {
            Ok(v) => v,
            Err(e) => {
                security_error(world, NAME, e);
                return STATUS_INVALID_ACL;
            }
        };
        // SAFETY: as above; the header is readable.
        let mut header = unsafe { acl.read_unaligned() };
        let ace_size = 8 + sid.len();
        if used + ace_size > usize::from(header.AclSize) {
            security_error(
                world,
                NAME,
                format!(
                    "a {ace_size}-byte ACE for {sid} does not fit: {used} of {} bytes used (ACE overflow)",
                    header.AclSize
                ),
            );
            return STATUS_ALLOTTED_SPACE_EXCEEDED;
        }
        let mut bytes = Vec::with_capacity(ace_size);
        bytes.extend_from_slice(&[ACCESS_ALLOWED_ACE_TYPE, 0]);
        bytes.extend_from_slice(&(ace_size as u16).to_le_bytes());
        bytes.extend_from_slice(&mask.to_le_bytes());
        bytes.extend_from_slice(&[SID_REVISION, sid.sub_authorities.len() as u8]);
        bytes.extend_from_slice(&sid.authority);
        for s in &sid.sub_authorities {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        header.AceCount += 1;
        header.AclRevision = header.AclRevision.max(revision as u8);
        // SAFETY: used + ace_size <= AclSize, inside the driver's ACL buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), acl.cast::<u8>().add(used), ace_size);
            acl.write_unaligned(header);
        }
        STATUS_SUCCESS
    })
}

/// `RtlSetDaclSecurityDescriptor`. IRQL: PASSIVE_LEVEL. STATUS_UNKNOWN_REVISION for a descriptor
/// not made by RtlCreateSecurityDescriptor; STATUS_INVALID_SECURITY_DESCR for a self-relative one.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlsetdaclsecuritydescriptor
pub(super) unsafe extern "win64" fn rtl_set_dacl_security_descriptor(
    sd: *mut SECURITY_DESCRIPTOR,
    present: BOOLEAN,
    dacl: *mut ACL,
    defaulted: BOOLEAN,
) -> NTSTATUS {
    const NAME: &str = "RtlSetDaclSecurityDescriptor";
    let detail = || {
        format!("0x{:x}, present {present}, dacl 0x{:x}, defaulted {defaulted}", sd as usize, dacl as usize)
    };
    enter(&Ddi::ntoskrnl(NAME, AtMost(PASSIVE_LEVEL), rules::IRQL_IO), detail, |world, _| {
        if sd.is_null() {
            security_error(world, NAME, "NULL descriptor".into());
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the driver passes a descriptor (DDI contract); it is read by value.
        let mut d = unsafe { sd.read_unaligned() };
        if u32::from(d.Revision) != SECURITY_DESCRIPTOR_REVISION {
            security_error(world, NAME, format!("descriptor revision {} (not initialised?)", d.Revision));
            return STATUS_UNKNOWN_REVISION;
        }
        if d.Control & SE_SELF_RELATIVE != 0 {
            security_error(world, NAME, "the descriptor is self-relative".into());
            return STATUS_INVALID_SECURITY_DESCR;
        }
        if present != 0 {
            d.Control |= SE_DACL_PRESENT;
            d.Dacl = dacl;
            if defaulted != 0 {
                d.Control |= SE_DACL_DEFAULTED;
            } else {
                d.Control &= !SE_DACL_DEFAULTED;
            }
        } else {
            d.Control &= !(SE_DACL_PRESENT | SE_DACL_DEFAULTED);
            d.Dacl = std::ptr::null_mut();
        }
        // SAFETY: as above; written back in place.
        unsafe { sd.write_unaligned(d) };
        STATUS_SUCCESS
    })
}

/// `RtlLengthSid`. IRQL <= APC_LEVEL. The SID must be valid.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-rtllengthsid
pub(super) unsafe extern "win64" fn rtl_length_sid(sid: *mut SID) -> u32 {
    // SAFETY: the driver passes a valid SID (DDI contract); read_sid checks its header first.
    let parsed = unsafe { read_sid(sid.cast::<u8>()) };
    enter(
        &Ddi::ntoskrnl("RtlLengthSid", AtMost(APC_LEVEL), rules::IRQL_IO),
        || format!("{parsed:?}"),
        |world, _| match &parsed {
            Ok(sid) => sid.len() as u32,
            Err(e) => {
                security_error(world, "RtlLengthSid", e.clone());
                // What RtlLengthSid computes from the header regardless.
                if sid.is_null() {
                    0
                } else {
                    // SAFETY: non-null; the driver passed a SID whose header is readable.
                    let count = unsafe { (*sid).SubAuthorityCount };
                    8 + 4 * u32::from(count)
                }
            }
        },
    )
}
