//! The ASN.1 structures of a catalog file, as `der` types: a certificate trust list (CTL) of
//! member hashes with their attributes, and the Authenticode indirect data naming each hash.
//!
//! Read: "MakeCat" (https://learn.microsoft.com/windows/win32/seccrypto/makecat: catalog version 2
//! uses SHA-256; member and catalog attributes with their type flags),
//! "CryptCATPutCatAttrInfo" (https://learn.microsoft.com/windows/win32/api/mscat/nf-mscat-cryptcatputcatattrinfo:
//! the CRYPTCAT_ATTR_* flags), "Certificate Trust List" (the CTL structure,
//! https://learn.microsoft.com/windows/win32/seccrypto/certificate-trust-list-overview), and the
//! Authenticode PE format document (SpcIndirectDataContent, SpcPeImageData, SpcLink).
//!
//! Every encoding is done by `der` (and `cms` / `x509-cert` types for the envelope and the
//! attributes); nothing here writes tags or lengths by hand.

use der::asn1::{Any, BitString, BmpString, ContextSpecific, Null, ObjectIdentifier, OctetString, UtcTime};
use der::{Sequence, TagMode, TagNumber};
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// id-signedData (PKCS #7).
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// szOID_CTL: the content type of a catalog's SignedData.
pub const MS_CTL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.10.1");
/// szOID_CATALOG_LIST: the CTL's subject usage for a catalog.
pub const CATALOG_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.1");
/// szOID_CATALOG_LIST_MEMBER2: members identified by SHA-256 (catalog version 2).
pub const CATALOG_LIST_MEMBER2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.3");
/// CAT_NAMEVALUE_OBJID: a named attribute (`File`, `OSAttr`, `OS`, `HWID1`).
pub const CAT_NAMEVALUE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.1");
/// CAT_MEMBERINFO2_OBJID: the kind of member (version 2 catalogs).
pub const CAT_MEMBERINFO2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.3");
/// SPC_INDIRECT_DATA_OBJID: the member's Authenticode digest.
pub const SPC_INDIRECT_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
/// SPC_PE_IMAGE_DATAOBJ: the digest is a PE image's Authenticode hash.
pub const SPC_PE_IMAGE_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
/// SPC_CAB_DATA_OBJID: what MakeCat names the digest of a flat (non-PE) file with.
pub const SPC_CAB_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.25");
/// id-sha256.
pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// CRYPTCAT_ATTR_AUTHENTICATED | CRYPTCAT_ATTR_DATAASCII | CRYPTCAT_ATTR_NAMEASCII: how MakeCat
/// and inf2cat store their text attributes.
pub const ATTR_AUTHENTICATED_ASCII: u32 = 0x1001_0001;

/// `CatNameValue ::= SEQUENCE { tag BMPString, flags INTEGER, value OCTET STRING }`; the value is
/// UTF-16LE with a terminating NUL.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CatNameValue {
    pub tag: BmpString,
    pub flags: u32,
    pub value: OctetString,
}

impl CatNameValue {
    pub fn text(name: &str, value: &str) -> der::Result<Self> {
        let utf16: Vec<u8> = value.encode_utf16().chain(Some(0)).flat_map(u16::to_le_bytes).collect();
        Ok(CatNameValue {
            tag: BmpString::from_utf8(name)?,
            flags: ATTR_AUTHENTICATED_ASCII,
            value: OctetString::new(utf16)?,
        })
    }

    /// The value without its terminating NUL.
    pub fn value_text(&self) -> String {
        let units: Vec<u16> =
            self.value.as_bytes().chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units).trim_end_matches('\0').to_owned()
    }
}

/// `SpcAttributeTypeAndOptionalValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY OPTIONAL }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcAttributeTypeAndOptionalValue {
    pub kind: ObjectIdentifier,
    pub value: Option<Any>,
}

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct DigestInfo {
    pub algorithm: AlgorithmIdentifierOwned,
    pub digest: OctetString,
}

/// `SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue, messageDigest DigestInfo }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcIndirectDataContent {
    pub data: SpcAttributeTypeAndOptionalValue,
    pub message_digest: DigestInfo,
}

/// `SpcLink ::= CHOICE { ..., file [2] EXPLICIT SpcString }` with
/// `SpcString ::= CHOICE { unicode [0] IMPLICIT BMPString, ... }`: the only alternative used.
pub type SpcLinkFile = ContextSpecific<ContextSpecific<BmpString>>;

pub fn spc_link_file(name: &str) -> der::Result<SpcLinkFile> {
    Ok(ContextSpecific {
        tag_number: TagNumber::N2,
        tag_mode: TagMode::Explicit,
        value: ContextSpecific {
            tag_number: TagNumber::N0,
            tag_mode: TagMode::Implicit,
            value: BmpString::from_utf8(name)?,
        },
    })
}

/// `SpcPeImageData ::= SEQUENCE { flags SpcPeImageFlags, file [0] EXPLICIT SpcLink }`, the file
/// being the conventional `<<<Obsolete>>>` (no page hashes).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcPeImageData {
    pub flags: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub file: SpcLinkFile,
}

/// `TrustedSubject ::= SEQUENCE { subjectIdentifier OCTET STRING, subjectAttributes SET OF Attribute }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TrustedSubject {
    pub identifier: OctetString,
    pub attributes: der::asn1::SetOfVec<Attribute>,
}

/// `CertificateTrustList` as catalogs use it: version v1 (the default, left out), no sequence
/// number and no next update.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertificateTrustList {
    pub subject_usage: Vec<ObjectIdentifier>,
    pub list_identifier: OctetString,
    pub this_update: UtcTime,
    pub subject_algorithm: AlgorithmIdentifierOwned,
    pub trusted_subjects: Vec<TrustedSubject>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub extensions: Option<Vec<Extension>>,
}

/// A context-specific, implicitly tagged empty value: `[n]` with no content (MemberInfo2).
pub fn empty_tagged(number: TagNumber) -> ContextSpecific<Null> {
    ContextSpecific { tag_number: number, tag_mode: TagMode::Implicit, value: Null }
}
