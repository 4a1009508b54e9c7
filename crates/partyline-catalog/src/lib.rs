//! Makes a driver package's catalog file (`.cat`) on any host: what inf2cat makes on Windows.
//!
//! Read: "Catalog Files and Digital Signatures"
//! (https://learn.microsoft.com/windows-hardware/drivers/install/catalog-files), "MakeCat"
//! (https://learn.microsoft.com/windows/win32/seccrypto/makecat), "Inf2Cat"
//! (https://learn.microsoft.com/windows-hardware/drivers/devtest/inf2cat). linbit's
//! generate-cat-file (which WinDRBD installs with) is the public precedent for doing it off Windows.
//!
//! Flow: each member file is hashed (SHA-256; a PE image by its Authenticode hash, any other file
//! whole) and listed, sorted by hash, as a trusted subject with the attributes inf2cat writes
//! (`File` = its name, `OSAttr` = the OS versions) and its indirect data; the catalog carries the
//! `OS` and `HWID<n>` attributes. The list is wrapped, unsigned, in a PKCS#7 SignedData whose
//! content (type szOID_CTL) is the list itself, as PKCS#7 (not CMS) places it; `osslsigncode sign`
//! then adds the signature.

pub mod asn1;
pub mod authenticode;

use std::time::Duration;

use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::{Any, BitString, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode, TagNumber};
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::spki::AlgorithmIdentifierOwned;

use asn1::*;

/// What the catalog says about the package as a whole and about each file.
#[derive(Clone, Debug)]
pub struct Options {
    /// The catalog's `OS` attribute, inf2cat's spelling of the target (`_v100_X64` for `10_X64`).
    pub os: String,
    /// Each member's `OSAttr`: `2:10.0` is Windows NT platform (2), version 10.0.
    pub os_attr: String,
    /// The hardware (component) ids of the INF's models sections, lower-cased as inf2cat does:
    /// `HWID1`, `HWID2`, ...
    pub hardware_ids: Vec<String>,
    /// The catalog's time (`ctlThisUpdate`).
    pub time: Duration,
}

/// A file of the package: its name in the package folder and its bytes.
pub struct Member<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Why a catalog could not be made.
#[derive(Debug)]
pub enum Error {
    Encoding(der::Error),
    Image(authenticode::NotAnImage),
    /// Two members with the same name or the same content.
    Duplicate(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Encoding(e) => write!(f, "ASN.1 encoding failed: {e}"),
            Error::Image(e) => e.fmt(f),
            Error::Duplicate(what) => write!(f, "{what} is listed twice"),
        }
    }
}

impl std::error::Error for Error {}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Error::Encoding(e)
    }
}

impl From<authenticode::NotAnImage> for Error {
    fn from(e: authenticode::NotAnImage) -> Self {
        Error::Image(e)
    }
}

/// The hash a catalog records for a file: the Authenticode hash of a PE image, else SHA-256 of
/// the whole file.
pub fn member_hash(bytes: &[u8]) -> Result<[u8; 32], Error> {
    if authenticode::is_pe_image(bytes) {
        Ok(authenticode::pe_image_hash(bytes)?)
    } else {
        Ok(Sha256::digest(bytes).into())
    }
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: SHA256, parameters: Some(Any::from(der::asn1::Null)) }
}

/// Any value as `Any` (through its DER, which `der` encoded).
fn any(value: &impl Encode) -> Result<Any, Error> {
    Ok(Any::from_der(&value.to_der()?)?)
}

fn attribute(oid: der::asn1::ObjectIdentifier, value: &impl Encode) -> Result<Attribute, Error> {
    let mut values = SetOfVec::new();
    values.insert(any(value)?)?;
    Ok(Attribute { oid, values })
}

fn name_value(name: &str, value: &str) -> Result<Attribute, Error> {
    attribute(CAT_NAMEVALUE, &CatNameValue::text(name, value)?)
}

fn catalog_attribute(name: &str, value: &str) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: CAT_NAMEVALUE,
        critical: false,
        extn_value: OctetString::new(CatNameValue::text(name, value)?.to_der()?)?,
    })
}

fn trusted_subject(member: &Member<'_>, options: &Options) -> Result<TrustedSubject, Error> {
    let pe = authenticode::is_pe_image(member.bytes);
    let hash = member_hash(member.bytes)?;
    // MakeCat's version-2 member kinds: [0] a PE image, [2] a flat file.
    let kind = empty_tagged(if pe { TagNumber::N0 } else { TagNumber::N2 });
    let data = if pe {
        // SpcPeImageFlags: includeResources (bit 0), as signing tools write it.
        let image =
            SpcPeImageData { flags: BitString::new(7, [0x80])?, file: spc_link_file("<<<Obsolete>>>")? };
        SpcAttributeTypeAndOptionalValue { kind: SPC_PE_IMAGE_DATA, value: Some(any(&image)?) }
    } else {
        SpcAttributeTypeAndOptionalValue { kind: SPC_CAB_DATA, value: Some(any(&spc_link_file("")?)?) }
    };
    let indirect = SpcIndirectDataContent {
        data,
        message_digest: DigestInfo {
            algorithm: sha256_algorithm(),
            digest: OctetString::new(hash.to_vec())?,
        },
    };
    let mut attributes = SetOfVec::new();
    attributes.insert(attribute(CAT_MEMBERINFO2, &kind)?)?;
    attributes.insert(name_value("File", member.name)?)?;
    attributes.insert(name_value("OSAttr", &options.os_attr)?)?;
    attributes.insert(attribute(SPC_INDIRECT_DATA, &indirect)?)?;
    Ok(TrustedSubject { identifier: OctetString::new(hash.to_vec())?, attributes })
}

/// The unsigned catalog (DER) listing `members`.
pub fn make_catalog(members: &[Member<'_>], options: &Options) -> Result<Vec<u8>, Error> {
    let mut subjects = Vec::with_capacity(members.len());
    for (index, member) in members.iter().enumerate() {
        if members[..index].iter().any(|m| m.name.eq_ignore_ascii_case(member.name)) {
            return Err(Error::Duplicate(member.name.to_owned()));
        }
        subjects.push(trusted_subject(member, options)?);
    }
    subjects.sort_by(|a, b| a.identifier.as_bytes().cmp(b.identifier.as_bytes()));
    if let Some(pair) = subjects.windows(2).find(|pair| pair[0].identifier == pair[1].identifier) {
        return Err(Error::Duplicate(format!(
            "the content with hash {}",
            hex(pair[0].identifier.as_bytes())
        )));
    }

    // The list identifier: 16 bytes, the same for the same members (a digest of their hashes).
    let mut id = Sha256::new();
    for subject in &subjects {
        id.update(subject.identifier.as_bytes());
    }
    let list_identifier = OctetString::new(&id.finalize()[..16])?;

    let mut extensions = vec![catalog_attribute("OS", &options.os)?];
    for (index, hwid) in options.hardware_ids.iter().enumerate() {
        extensions.push(catalog_attribute(&format!("HWID{}", index + 1), &hwid.to_ascii_lowercase())?);
    }
    let ctl = CertificateTrustList {
        subject_usage: vec![CATALOG_LIST],
        list_identifier,
        this_update: UtcTime::from_unix_duration(options.time)?,
        subject_algorithm: AlgorithmIdentifierOwned {
            oid: CATALOG_LIST_MEMBER2,
            parameters: Some(Any::from(der::asn1::Null)),
        },
        trusted_subjects: subjects,
        extensions: Some(extensions),
    };

    let signed = SignedData {
        version: cms::content_info::CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: MS_CTL, econtent: Some(any(&ctl)?) },
        certificates: None,
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let content = ContentInfo { content_type: ID_SIGNED_DATA, content: any(&signed)? };
    Ok(content.to_der()?)
}

/// The certificate trust list inside a catalog (signed or not), decoded.
pub fn read_catalog(der: &[u8]) -> Result<CertificateTrustList, Error> {
    let content = ContentInfo::from_der(der)?;
    let signed: SignedData = content.content.decode_as()?;
    let list = signed.encap_content_info.econtent.ok_or(der::Error::from(der::ErrorKind::Failed))?;
    Ok(list.decode_as()?)
}

/// Upper-case hex, as catalogs show member tags.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests;
