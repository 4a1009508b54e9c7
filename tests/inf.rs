//! Structure checks of `inf/partyline.inf`, the NetTrans (protocol) INF of partyline.sys.
//!
//! Read: "General Syntax Rules for INF Files"
//! (https://learn.microsoft.com/windows-hardware/drivers/install/general-syntax-rules-for-inf-files),
//! "INF AddService Directive" (https://learn.microsoft.com/windows-hardware/drivers/install/inf-addservice-directive),
//! "Specifying Binding Interfaces"
//! (https://learn.microsoft.com/windows-hardware/drivers/network/specifying-binding-interfaces),
//! "Installation Requirements for Network Protocols"
//! (https://learn.microsoft.com/windows-hardware/drivers/network/installation-requirements-for-network-protocols),
//! "Adding Service-Related Values to the Ndi Key"
//! (https://learn.microsoft.com/windows-hardware/drivers/network/adding-service-related-values-to-the-ndi-key),
//! "Manufacturer Section in a Network INF File"
//! (https://learn.microsoft.com/windows-hardware/drivers/network/manufacturer-section-in-a-network-inf-file),
//! "INF DelService Directive" (https://learn.microsoft.com/windows-hardware/drivers/install/inf-delservice-directive),
//! "INF DelFiles Directive" (https://learn.microsoft.com/windows-hardware/drivers/install/inf-delfiles-directive).
//! Each check's doc names the page whose rule it enforces. InfVerif (Windows only) is the
//! authoritative checker; docs/INSTALL.md says how to run it.
//!
//! Flow: a small INF reader (sections, `key = value` entries and bare lines, comma-separated
//! fields, `;` comments outside quotes, `%string%` tokens from `[Strings]`); every check is a
//! function over the INF text returning [`Finding`]s; the `catches` module gives each check an
//! INF with one defect and asserts that exactly that check reports it.

use std::collections::BTreeSet;
use std::fmt;

const INF: &str = include_str!("../inf/partyline.inf");

const COMPONENT_ID: &str = "PL_PARTYLINE";
const SERVICE_NAME: &str = "partyline";
const IMAGE_FILE: &str = "partyline.sys";
const CATALOG_FILE: &str = "partyline.cat";
const NETTRANS_CLASS_GUID: &str = "{4d36e975-e325-11ce-bfc1-08002be10318}";
/// The UpperRange interface of ATM adapters, which a protocol names in its LowerRange to bind to
/// them ("Specifying Binding Interfaces": "ndisatm ... Specified value for any ATM network
/// component, such as an ATM adapter, whose upper edge interfaces with NDIS").
const ATM_BINDING_INTERFACE: &str = "ndisatm";
/// The binding interfaces a protocol may name ("Installation Requirements for Network Protocols":
/// "Allowable binding interfaces").
const PROTOCOL_UPPER_RANGE: &[&str] = &["netbios", "ipx", "tdi", "winsock", "noupper"];
const PROTOCOL_LOWER_RANGE: &[&str] = &["ndis5", "ndisatm", "nolower"];
/// NCF_HIDDEN | NCF_NO_SERVICE | NCF_NOT_USER_REMOVABLE | NCF_HAS_UI: the only Characteristics a
/// protocol may have (same page, "DDInstall Section ... Allowable values").
const PROTOCOL_CHARACTERISTICS: u32 = 0x08 | 0x10 | 0x20 | 0x80;
/// FLG_ADDREG_TYPE_MULTI_SZ, and the mask of the AddReg type bits ("INF AddReg Directive").
const FLG_ADDREG_TYPE_MULTI_SZ: u32 = 0x0001_0000;
const FLG_ADDREG_TYPE_MASK: u32 = 0xffff_0001;
/// The first build whose network configuration interfaces install a package that runs from the
/// driver store, DIRID 13 ("Manufacturer Section in a Network INF File").
const FIRST_DRIVER_STORE_BUILD: u32 = 25319;
/// Directives that are "not valid" in a Windows Driver package ("INF DelService Directive",
/// "INF DelFiles Directive": "If you are building a universal or Windows Driver package, this
/// directive is not valid").
const NOT_IN_A_WINDOWS_DRIVER: &[&str] = &["DelService", "DelFiles"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Syntax,
    /// A required or referenced section is missing.
    Sections,
    Version,
    /// `[Manufacturer]` and the models sections: x64 decorations, the component id.
    Models,
    /// `AddService` and the service-install sections.
    Service,
    /// The `Ndi` registry keys: service, help text, binding interfaces.
    Binding,
    /// `Ndi\CoServices`: present, REG_MULTI_SZ, the primary service among them, each one added.
    CoServices,
    /// DIRID 13 (run from the driver store) only in models sections for build 25319 and later.
    DriverStore,
    /// The install sections' `Characteristics`: present and only the flags a protocol may have.
    Characteristics,
    /// No directive that a Windows Driver package may not use.
    WindowsDriver,
    /// Every copied file is in `[SourceDisksFiles]` on a disk of `[SourceDisksNames]` and has a
    /// destination.
    Files,
    /// Every `%token%` is defined in `[Strings]`.
    Strings,
}

#[derive(Debug)]
struct Finding {
    check: Check,
    detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.check, self.detail)
    }
}

fn finding(check: Check, detail: impl Into<String>) -> Finding {
    Finding { check, detail: detail.into() }
}

/// One line of a section: `key = a, b` has a key; a bare `a, b, c` line has none.
#[derive(Debug)]
struct Entry {
    line: usize,
    key: Option<String>,
    fields: Vec<String>,
}

#[derive(Debug)]
struct Section {
    name: String,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Inf {
    sections: Vec<Section>,
}

/// Splits `text` at `separator` outside double quotes.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A field without its surrounding quotes; `""` inside quotes is one `"`.
fn unquote(field: &str) -> String {
    let field = field.trim();
    match field.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_owned(),
    }
}

fn parse(text: &str) -> Result<Inf, Finding> {
    let mut sections: Vec<Section> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.matches('"').count() % 2 != 0 {
            return Err(finding(Check::Syntax, format!("line {line}: unbalanced double quote")));
        }
        let content = split_unquoted(raw, ';')[0].trim();
        if content.is_empty() {
            continue;
        }
        if let Some(header) = content.strip_prefix('[') {
            let Some(name) = header.strip_suffix(']') else {
                return Err(finding(Check::Syntax, format!("line {line}: section header without `]`")));
            };
            sections.push(Section { name: name.trim().to_owned(), entries: Vec::new() });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(finding(Check::Syntax, format!("line {line}: entry before the first section")));
        };
        let halves = split_unquoted(content, '=');
        let (key, value) = match halves.as_slice() {
            [value] => (None, *value),
            [key, value] => (Some(unquote(key)), *value),
            _ => return Err(finding(Check::Syntax, format!("line {line}: more than one `=`"))),
        };
        let fields = split_unquoted(value, ',').into_iter().map(unquote).collect();
        section.entries.push(Entry { line, key, fields });
    }
    Ok(Inf { sections })
}

impl Inf {
    /// Section names are case-insensitive.
    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|section| section.name.eq_ignore_ascii_case(name))
    }

    fn entries(&self, section: &str) -> &[Entry] {
        self.section(section).map_or(&[], |section| section.entries.as_slice())
    }

    /// The fields of the entries with `key` in `section`; keys are case-insensitive.
    fn values<'a>(&'a self, section: &str, key: &'a str) -> impl Iterator<Item = &'a [String]> + 'a {
        self.entries(section)
            .iter()
            .filter(move |entry| entry.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key)))
            .map(|entry| entry.fields.as_slice())
    }

    /// The first field of the only entry with `key` in `section`, with `%strings%` expanded.
    fn value(&self, section: &str, key: &str) -> Option<String> {
        let mut values = self.values(section, key);
        let first = values.next()?.first()?.clone();
        Some(self.expand(&first))
    }

    /// Every section named by `directive` (AddReg, CopyFiles) in `section`.
    fn referenced(&self, section: &str, directive: &str) -> Vec<String> {
        self.values(section, directive).flatten().map(|name| name.trim().to_owned()).collect()
    }

    /// Replaces `%name%` with its `[Strings]` value; numeric tokens (DIRIDs) stay as they are.
    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let token = &after[..end];
            match self.string(token) {
                Some(value) if !token.chars().all(|c| c.is_ascii_digit()) => out.push_str(&value),
                _ => out.push_str(&rest[start..start + end + 2]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn string(&self, token: &str) -> Option<String> {
        self.values("Strings", token).next().and_then(|fields| fields.first().cloned())
    }

    /// The models sections that `[Manufacturer]` names: `name.decoration` for each decoration.
    fn models_sections(&self) -> Vec<(String, String)> {
        let mut sections = Vec::new();
        for entry in self.entries("Manufacturer") {
            if let Some((models, decorations)) = entry.fields.split_first() {
                for decoration in decorations {
                    sections.push((decoration.clone(), format!("{models}.{decoration}")));
                }
            }
        }
        sections
    }

    /// The install sections that the models sections name.
    fn install_sections(&self) -> Vec<String> {
        let mut installs = Vec::new();
        for (_, models) in self.models_sections() {
            for entry in self.entries(&models) {
                if let Some(install) = entry.fields.first() {
                    if !installs.contains(install) {
                        installs.push(install.clone());
                    }
                }
            }
        }
        installs
    }
}

fn parsed(text: &str) -> Result<Inf, Vec<Finding>> {
    parse(text).map_err(|finding| vec![finding])
}

/// The standard sections, and every section that another one names, exist.
fn check_sections(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    let mut required: Vec<String> =
        ["Version", "Manufacturer", "SourceDisksNames", "SourceDisksFiles", "DestinationDirs", "Strings"]
            .into_iter()
            .map(str::to_owned)
            .collect();
    required.extend(inf.models_sections().into_iter().map(|(_, models)| models));
    for install in inf.install_sections() {
        required.push(install.clone());
        required.push(format!("{install}.Services"));
        required.extend(inf.referenced(&install, "AddReg"));
        required
            .extend(inf.referenced(&install, "CopyFiles").into_iter().filter(|name| !name.starts_with('@')));
        for fields in inf.values(&format!("{install}.Services"), "AddService") {
            if let Some(service) = fields.get(2) {
                required.push(service.clone());
            }
        }
    }
    let mut seen = BTreeSet::new();
    for name in required {
        if seen.insert(name.to_ascii_lowercase()) && inf.section(&name).is_none() {
            findings.push(finding(Check::Sections, format!("section [{name}] is missing")));
        }
    }
    findings
}

fn is_driver_ver(value: &str) -> bool {
    let Some((date, version)) = value.split_once(',') else {
        return false;
    };
    let date: Vec<&str> = date.trim().split('/').collect();
    let date_ok = matches!(date.as_slice(), [month, day, year]
        if month.len() == 2 && day.len() == 2 && year.len() == 4
        && month.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
        && day.parse::<u8>().is_ok_and(|d| (1..=31).contains(&d))
        && year.parse::<u16>().is_ok());
    let parts: Vec<&str> = version.trim().split('.').collect();
    date_ok && parts.len() == 4 && parts.iter().all(|part| part.parse::<u16>().is_ok())
}

/// `[Version]`: Windows NT signature, NetTrans class and GUID, provider, catalog, DriverVer,
/// PnpLockdown=1.
fn check_version(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    let mut expect = |key: &str, expected: &str| match inf.value("Version", key) {
        Some(value) if value.eq_ignore_ascii_case(expected) => {}
        Some(value) => {
            findings.push(finding(Check::Version, format!("{key} is {value:?}, not {expected:?}")))
        }
        None => findings.push(finding(Check::Version, format!("[Version] has no {key}"))),
    };
    expect("Signature", "$Windows NT$");
    expect("Class", "NetTrans");
    expect("ClassGuid", NETTRANS_CLASS_GUID);
    expect("CatalogFile", CATALOG_FILE);
    expect("PnpLockdown", "1");
    if inf.value("Version", "Provider").is_none_or(|provider| provider.trim().is_empty()) {
        findings.push(finding(Check::Version, "[Version] has no Provider"));
    }
    let driver_ver = inf.values("Version", "DriverVer").next().map(|fields| fields.join(","));
    if !driver_ver.as_deref().is_some_and(is_driver_ver) {
        findings.push(finding(Check::Version, format!("DriverVer {driver_ver:?} is not mm/dd/yyyy,w.x.y.z")));
    }
    findings
}

/// `[Manufacturer]` decorates only for x64 (`NTamd64`, optionally with an OS version) and has
/// an undecorated-version `NTamd64` fallback; every model installs the component id.
fn check_models(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    let models = inf.models_sections();
    if models.is_empty() {
        findings.push(finding(Check::Models, "[Manufacturer] names no models section with a decoration"));
    }
    for (decoration, _) in &models {
        let architecture = decoration.split('.').next().unwrap_or_default();
        if !architecture.eq_ignore_ascii_case("NTamd64") {
            findings.push(finding(
                Check::Models,
                format!("decoration {decoration:?} is not NTamd64: the image is x64 only"),
            ));
        }
    }
    if !models.iter().any(|(decoration, _)| decoration.eq_ignore_ascii_case("NTamd64")) {
        findings.push(finding(
            Check::Models,
            "no plain NTamd64 models section for builds before the versioned ones",
        ));
    }
    for (_, section) in &models {
        for entry in inf.entries(section) {
            // "Installation Requirements for Network Protocols", Models Section: "The hw-id should
            // consist of a provider name followed by an underscore and a manufacturer name or the
            // product name, for example: MS_DLC."
            if let Some(id) = entry.fields.get(1) {
                let well_formed = id.split_once('_').is_some_and(|(provider, product)| {
                    [provider, product]
                        .iter()
                        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
                });
                if !well_formed {
                    findings.push(finding(
                        Check::Models,
                        format!("line {}: hw-id {id:?} is not <provider>_<product>", entry.line),
                    ));
                }
            }
            match entry.fields.get(1) {
                Some(id) if id == COMPONENT_ID => {}
                other => findings.push(finding(
                    Check::Models,
                    format!("line {}: [{section}] installs {other:?}, not {COMPONENT_ID}", entry.line),
                )),
            }
        }
    }
    findings
}

/// The DIRID that the install section's CopyFiles sections copy `file` to, if it is copied.
fn copy_dirid(inf: &Inf, install: &str, file: &str) -> Option<String> {
    for copy in inf.referenced(install, "CopyFiles") {
        let copies = inf.entries(&copy).iter().any(|entry| {
            entry.key.is_none() && entry.fields.first().is_some_and(|name| name.eq_ignore_ascii_case(file))
        });
        if copies {
            let dirid = inf
                .values("DestinationDirs", &copy)
                .next()
                .or_else(|| inf.values("DestinationDirs", "DefaultDestDir").next());
            return dirid.and_then(|fields| fields.first().cloned());
        }
    }
    None
}

/// Each install adds the kernel service `partyline`: ServiceType 1 (kernel driver), StartType 3
/// (demand), ErrorControl 1 (normal), ServiceBinary `%13%\partyline.sys` (driver store) or
/// `%12%\partyline.sys` (drivers directory), matching where that install copies the image.
fn check_service(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    for install in inf.install_sections() {
        let services = format!("{install}.Services");
        if inf.section(&services).is_none() {
            continue; // check_sections reports it
        }
        let added: Vec<&[String]> = inf.values(&services, "AddService").collect();
        let [fields] = added.as_slice() else {
            findings.push(finding(
                Check::Service,
                format!("[{services}] has {} AddService entries, not 1", added.len()),
            ));
            continue;
        };
        let name = fields.first().map(String::as_str).unwrap_or_default();
        if name != SERVICE_NAME {
            findings.push(finding(
                Check::Service,
                format!("[{services}] adds service {name:?}, not {SERVICE_NAME:?}"),
            ));
        }
        let Some(section) = fields.get(2).filter(|section| inf.section(section).is_some()) else {
            continue; // check_sections reports it
        };
        for (key, expected) in [("ServiceType", "1"), ("StartType", "3"), ("ErrorControl", "1")] {
            let value = inf.value(section, key);
            if value.as_deref() != Some(expected) {
                findings
                    .push(finding(Check::Service, format!("[{section}] {key} is {value:?}, not {expected}")));
            }
        }
        let binary = inf.value(section, "ServiceBinary").unwrap_or_default();
        let parsed_binary = binary.strip_prefix('%').and_then(|rest| rest.split_once("%\\"));
        match parsed_binary {
            Some((dirid @ ("12" | "13"), file)) if file.eq_ignore_ascii_case(IMAGE_FILE) => {
                let copied_to = copy_dirid(&inf, &install, IMAGE_FILE);
                if copied_to.as_deref().is_some_and(|copied| copied != dirid) {
                    findings.push(finding(
                        Check::Service,
                        format!("[{section}] runs %{dirid}%\\{IMAGE_FILE} but [{install}] copies it to DIRID {copied_to:?}"),
                    ));
                }
            }
            _ => findings.push(finding(
                Check::Service,
                format!(
                    "[{section}] ServiceBinary is {binary:?}, not %13%\\{IMAGE_FILE} or %12%\\{IMAGE_FILE}"
                ),
            )),
        }
    }
    findings
}

/// Each install's AddReg sets `Ndi\Service` to the service, a `Ndi\HelpText`, an
/// `Ndi\Interfaces\UpperRange`, and a `LowerRange` that includes the ATM binding interface.
fn check_binding(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    let mut checked: Vec<Vec<String>> = Vec::new();
    for install in inf.install_sections() {
        // Installs that share their AddReg sections are checked (and reported) once.
        let add_regs = inf.referenced(&install, "AddReg");
        if checked.contains(&add_regs) {
            continue;
        }
        checked.push(add_regs.clone());
        let install = format!("{install} (AddReg {})", add_regs.join(", "));
        let mut keys: Vec<(String, String)> = Vec::new();
        for add_reg in add_regs {
            for entry in inf.entries(&add_reg) {
                if let [root, subkey, name, _flags, value, ..] = entry.fields.as_slice() {
                    if root.eq_ignore_ascii_case("HKR") {
                        keys.push((format!("{subkey}\\{name}").to_ascii_lowercase(), inf.expand(value)));
                    }
                }
            }
        }
        let get = |key: &str| keys.iter().find(|(k, _)| k == key).map(|(_, value)| value.as_str());
        if get("ndi\\service") != Some(SERVICE_NAME) {
            findings.push(finding(
                Check::Binding,
                format!("[{install}]: Ndi\\Service is {:?}, not {SERVICE_NAME:?}", get("ndi\\service")),
            ));
        }
        if get("ndi\\helptext").is_none_or(str::is_empty) {
            findings.push(finding(Check::Binding, format!("[{install}]: no Ndi\\HelpText")));
        }
        if get("ndi\\interfaces\\upperrange").is_none_or(str::is_empty) {
            findings.push(finding(Check::Binding, format!("[{install}]: no Ndi\\Interfaces\\UpperRange")));
        }
        for (key, allowed) in [
            ("ndi\\interfaces\\upperrange", PROTOCOL_UPPER_RANGE),
            ("ndi\\interfaces\\lowerrange", PROTOCOL_LOWER_RANGE),
        ] {
            let listed = get(key).unwrap_or_default().split(',').map(str::trim).filter(|i| !i.is_empty());
            for interface in listed.filter(|i| !allowed.iter().any(|a| a.eq_ignore_ascii_case(i))) {
                findings.push(finding(
                    Check::Binding,
                    format!("[{install}]: {key} names {interface:?}, which a protocol may not (allowed: {allowed:?})"),
                ));
            }
        }
        let lower = get("ndi\\interfaces\\lowerrange").unwrap_or_default();
        if !lower.split(',').any(|interface| interface.trim().eq_ignore_ascii_case(ATM_BINDING_INTERFACE)) {
            findings.push(finding(
                Check::Binding,
                format!("[{install}]: LowerRange {lower:?} does not include {ATM_BINDING_INTERFACE:?} (ATM adapters)"),
            ));
        }
    }
    findings
}

/// Every file a CopyFiles section names, and the service binary, is in `[SourceDisksFiles]` on a
/// disk that `[SourceDisksNames]` declares; every CopyFiles section has a destination.
fn check_files(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    let disks: Vec<String> =
        inf.entries("SourceDisksNames").iter().filter_map(|entry| entry.key.clone()).collect();
    let source_disk = |file: &str| {
        inf.entries("SourceDisksFiles")
            .iter()
            .find(|entry| entry.key.as_deref().is_some_and(|key| key.eq_ignore_ascii_case(file)))
            .and_then(|entry| entry.fields.first().cloned())
    };
    let mut files = BTreeSet::new();
    for install in inf.install_sections() {
        for copy in inf.referenced(&install, "CopyFiles") {
            if let Some(file) = copy.strip_prefix('@') {
                files.insert(file.to_ascii_lowercase());
                continue;
            }
            let has_destination = inf
                .values("DestinationDirs", &copy)
                .next()
                .or_else(|| inf.values("DestinationDirs", "DefaultDestDir").next())
                .is_some();
            if !has_destination && inf.section(&copy).is_some() {
                findings.push(finding(Check::Files, format!("[{copy}] has no entry in [DestinationDirs]")));
            }
            for entry in inf.entries(&copy) {
                if let Some(file) = entry.fields.first() {
                    files.insert(file.to_ascii_lowercase());
                }
            }
        }
        let services = format!("{install}.Services");
        for fields in inf.values(&services, "AddService") {
            if let Some(binary) = fields.get(2).and_then(|section| inf.value(section, "ServiceBinary")) {
                if let Some(file) = binary.rsplit('\\').next() {
                    files.insert(file.to_ascii_lowercase());
                }
            }
        }
    }
    for file in files {
        match source_disk(&file) {
            Some(disk) if disks.contains(&disk) => {}
            Some(disk) => findings.push(finding(
                Check::Files,
                format!("{file} is on disk {disk:?}, which [SourceDisksNames] does not declare"),
            )),
            None => findings.push(finding(Check::Files, format!("{file} is not in [SourceDisksFiles]"))),
        }
    }
    findings
}

/// Every `%token%` other than a DIRID is defined in `[Strings]`.
fn check_strings(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    for section in &inf.sections {
        for entry in &section.entries {
            for field in entry.fields.iter().chain(entry.key.iter()) {
                let tokens: Vec<&str> = field.split('%').collect();
                // Tokens sit at the odd positions between pairs of `%`.
                for token in tokens.iter().skip(1).step_by(2).take((tokens.len() - 1) / 2) {
                    let numeric = token.chars().all(|c| c.is_ascii_digit());
                    if !numeric && inf.string(token).is_none() {
                        findings.push(finding(
                            Check::Strings,
                            format!("line {}: %{token}% is not defined in [Strings]", entry.line),
                        ));
                    }
                }
            }
        }
    }
    findings
}

fn parse_number(text: &str) -> Option<u32> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// An `HKR` line of an add-registry section: `subkey\name` (lower case), its flags, its values.
struct RegValue {
    key: String,
    flags: Option<u32>,
    values: Vec<String>,
}

fn hkr_values(inf: &Inf, add_regs: &[String]) -> Vec<RegValue> {
    let mut found = Vec::new();
    for add_reg in add_regs {
        for entry in inf.entries(add_reg) {
            if let [root, subkey, name, flags, values @ ..] = entry.fields.as_slice() {
                if root.eq_ignore_ascii_case("HKR") {
                    found.push(RegValue {
                        key: format!("{subkey}\\{name}").to_ascii_lowercase(),
                        flags: if flags.trim().is_empty() { Some(0) } else { parse_number(flags) },
                        values: values.iter().map(|value| inf.expand(value)).collect(),
                    });
                }
            }
        }
    }
    found
}

/// "Adding Service-Related Values to the Ndi Key": "The CoServices value is required for all
/// NetTrans, NetClient, and NetService components"; it is a MULTI_SZ that "specifies all the
/// services that the component installs, including the primary service specified by the Service
/// value". So: present, REG_MULTI_SZ, containing Ndi\Service, and exactly the services that the
/// install's `.Services` section adds.
fn check_co_services(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    for install in inf.install_sections() {
        let values = hkr_values(&inf, &inf.referenced(&install, "AddReg"));
        let Some(co) = values.iter().find(|value| value.key == "ndi\\coservices") else {
            findings.push(finding(Check::CoServices, format!("[{install}]: no Ndi\\CoServices")));
            continue;
        };
        if co.flags.map(|flags| flags & FLG_ADDREG_TYPE_MASK) != Some(FLG_ADDREG_TYPE_MULTI_SZ) {
            findings.push(finding(
                Check::CoServices,
                format!(
                    "[{install}]: Ndi\\CoServices flags {:?} are not REG_MULTI_SZ (0x00010000)",
                    co.flags
                ),
            ));
        }
        let listed: BTreeSet<String> = co.values.iter().map(|v| v.trim().to_ascii_lowercase()).collect();
        let primary = values.iter().find(|value| value.key == "ndi\\service").and_then(|v| v.values.first());
        if let Some(primary) = primary {
            if !listed.contains(&primary.to_ascii_lowercase()) {
                findings.push(finding(
                    Check::CoServices,
                    format!(
                        "[{install}]: Ndi\\CoServices {listed:?} does not include Ndi\\Service {primary:?}"
                    ),
                ));
            }
        }
        let added: BTreeSet<String> = inf
            .values(&format!("{install}.Services"), "AddService")
            .filter_map(|fields| fields.first())
            .map(|name| name.to_ascii_lowercase())
            .collect();
        if listed != added {
            findings.push(finding(
                Check::CoServices,
                format!("[{install}]: Ndi\\CoServices {listed:?} is not the set of added services {added:?}"),
            ));
        }
    }
    findings
}

/// The build number of a TargetOSVersion decoration
/// `NT<arch>[.<major>[.<minor>[.<product>[.<suite>[.<build>]]]]]` ("INF Manufacturer Section").
fn decoration_build(decoration: &str) -> Option<u32> {
    decoration.split('.').nth(5).and_then(parse_number)
}

/// "Manufacturer Section in a Network INF File": installing through the network configuration
/// interfaces with the driver store (DIRID 13) needs build 25319 or later, so the models section
/// whose install runs the image from DIRID 13 is decorated `NTamd64.10.0...<build>` with a build
/// of at least 25319, and any other models section copies it to DIRID 12.
fn check_driver_store(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    for (decoration, models) in inf.models_sections() {
        let build = decoration_build(&decoration);
        let new_enough = build.is_some_and(|build| build >= FIRST_DRIVER_STORE_BUILD);
        for entry in inf.entries(&models) {
            let Some(install) = entry.fields.first() else { continue };
            let dirid = copy_dirid(&inf, install, IMAGE_FILE);
            match (dirid.as_deref(), new_enough) {
                (Some("13"), false) => findings.push(finding(
                    Check::DriverStore,
                    format!(
                        "[{models}] (build {build:?}) installs [{install}], which runs from the driver store (DIRID 13): needs a decoration with build {FIRST_DRIVER_STORE_BUILD} or later"
                    ),
                )),
                (Some(other), true) if other != "13" => findings.push(finding(
                    Check::DriverStore,
                    format!("[{models}] is for build {build:?}, which runs from the driver store, but [{install}] copies the image to DIRID {other}"),
                )),
                _ => {}
            }
        }
    }
    findings
}

/// "Installation Requirements for Network Protocols", DDInstall Section: required, with a
/// Characteristics entry whose allowable values are NCF_HIDDEN, NCF_NO_SERVICE,
/// NCF_NOT_USER_REMOVABLE and NCF_HAS_UI.
fn check_characteristics(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    for install in inf.install_sections() {
        if inf.section(&install).is_none() {
            continue; // check_sections reports it
        }
        match inf.value(&install, "Characteristics").as_deref().map(|v| (v.to_owned(), parse_number(v))) {
            None => {
                findings.push(finding(Check::Characteristics, format!("[{install}] has no Characteristics")))
            }
            Some((text, None)) => findings.push(finding(
                Check::Characteristics,
                format!("[{install}] Characteristics {text:?} is not a number"),
            )),
            Some((_, Some(flags))) if flags & !PROTOCOL_CHARACTERISTICS != 0 => findings.push(finding(
                Check::Characteristics,
                format!(
                    "[{install}] Characteristics {flags:#x} has {:#x}, which a protocol may not have",
                    flags & !PROTOCOL_CHARACTERISTICS
                ),
            )),
            Some(_) => {}
        }
    }
    findings
}

/// No directive that "is not valid" in a Windows Driver package, anywhere in the INF.
fn check_windows_driver(text: &str) -> Vec<Finding> {
    let inf = match parsed(text) {
        Ok(inf) => inf,
        Err(findings) => return findings,
    };
    let mut findings = Vec::new();
    for section in &inf.sections {
        for entry in &section.entries {
            let Some(key) = entry.key.as_deref() else { continue };
            if let Some(directive) = NOT_IN_A_WINDOWS_DRIVER.iter().find(|d| d.eq_ignore_ascii_case(key)) {
                findings.push(finding(
                    Check::WindowsDriver,
                    format!(
                        "line {} [{}]: {directive} is not valid in a Windows Driver package",
                        entry.line, section.name
                    ),
                ));
            }
        }
    }
    findings
}

fn check_inf(text: &str) -> Vec<Finding> {
    if let Err(finding) = parse(text) {
        return vec![finding];
    }
    let mut findings = check_sections(text);
    findings.extend(check_version(text));
    findings.extend(check_models(text));
    findings.extend(check_service(text));
    findings.extend(check_binding(text));
    findings.extend(check_files(text));
    findings.extend(check_strings(text));
    findings.extend(check_co_services(text));
    findings.extend(check_driver_store(text));
    findings.extend(check_characteristics(text));
    findings.extend(check_windows_driver(text));
    findings
}

#[test]
fn partyline_inf_passes_every_check() {
    let findings = check_inf(INF);
    let report: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(findings.is_empty(), "inf/partyline.inf has problems:\n{}", report.join("\n"));
}

#[test]
fn partyline_inf_installs_both_driver_store_and_drivers_directory_variants() {
    let inf = parse(INF).unwrap();
    let installs = inf.install_sections();
    assert_eq!(installs.len(), 2, "{installs:?}");
    let binaries: BTreeSet<String> = installs
        .iter()
        .filter_map(|install| {
            let fields = inf.values(&format!("{install}.Services"), "AddService").next()?;
            inf.value(fields.get(2)?, "ServiceBinary")
        })
        .collect();
    let expected: BTreeSet<String> =
        ["%12%\\partyline.sys", "%13%\\partyline.sys"].into_iter().map(str::to_owned).collect();
    assert_eq!(binaries, expected);
}

/// Each check's failing case: the real INF with one defect, and exactly the finding it must cause.
mod catches {
    use super::*;

    /// The INF with `from` replaced by `to` exactly once (the mutation must apply).
    fn mutated(from: &str, to: &str) -> String {
        assert_eq!(INF.matches(from).count(), 1, "mutation {from:?} must match exactly once");
        INF.replacen(from, to, 1)
    }

    fn only(text: &str, check: Check) -> String {
        let found = check_inf(text);
        assert_eq!(found.len(), 1, "expected exactly one {check:?} finding, got {found:#?}");
        assert_eq!(found[0].check, check, "{found:#?}");
        found[0].detail.clone()
    }

    #[test]
    fn unbalanced_quote() {
        assert!(only(
            &mutated("\"partyline installation disk\"", "\"partyline installation disk"),
            Check::Syntax
        )
        .contains("quote"));
    }

    #[test]
    fn unterminated_section_header() {
        assert!(only(&mutated("[Strings]", "[Strings"), Check::Syntax).contains("without `]`"));
    }

    #[test]
    fn services_section_missing() {
        let found = check_inf(&mutated("[Partyline.Install.Services]", "[Partyline.Install.Servicez]"));
        let kinds: Vec<Check> = found.iter().map(|f| f.check).collect();
        // Sections names the cause; CoServices lists a service that nothing adds now.
        assert_eq!(kinds, [Check::Sections, Check::CoServices], "{found:#?}");
        assert!(found[0].detail.contains("[Partyline.Install.Services]"));
    }

    #[test]
    fn add_reg_section_missing() {
        let text = mutated("[Partyline.Ndi]", "[Partyline.Ndx]");
        let found = check_inf(&text);
        // Without the section, the Ndi keys are gone too: Sections names the cause, Binding the effect.
        assert!(
            found.iter().any(|f| f.check == Check::Sections && f.detail.contains("[Partyline.Ndi]")),
            "{found:#?}"
        );
        assert!(
            found.iter().all(|f| matches!(f.check, Check::Sections | Check::Binding | Check::CoServices)),
            "{found:#?}"
        );
    }

    #[test]
    fn net_class_instead_of_nettrans() {
        assert!(
            only(&mutated("Class       = NetTrans", "Class       = Net"), Check::Version).contains("Class")
        );
    }

    #[test]
    fn wrong_class_guid() {
        let text =
            mutated("{4d36e975-e325-11ce-bfc1-08002be10318}", "{4d36e972-e325-11ce-bfc1-08002be10318}");
        assert!(only(&text, Check::Version).contains("ClassGuid"));
    }

    #[test]
    fn pnp_lockdown_off() {
        assert!(only(&mutated("PnpLockdown = 1", "PnpLockdown = 0"), Check::Version).contains("PnpLockdown"));
    }

    #[test]
    fn no_catalog_file() {
        assert!(only(&mutated("CatalogFile = partyline.cat\n", ""), Check::Version).contains("CatalogFile"));
    }

    #[test]
    fn malformed_driver_ver() {
        assert!(only(
            &mutated("DriverVer   = 11/24/2025,0.1.0.0", "DriverVer   = 2025-11-24,0.1"),
            Check::Version
        )
        .contains("DriverVer"));
    }

    #[test]
    fn x86_decoration() {
        let text = mutated(
            "NTamd64.10.0...25319, NTamd64\n",
            "NTamd64.10.0...25319, NTamd64, NTx86\n\n[Partyline.NTx86]\n%Partyline.DeviceDesc% = Partyline.Install.Copy, PL_PARTYLINE\n",
        );
        assert!(only(&text, Check::Models).contains("NTx86"));
    }

    #[test]
    fn no_plain_ntamd64_fallback() {
        let text = mutated("NTamd64.10.0...25319, NTamd64\n", "NTamd64.10.0...25319\n");
        assert!(only(&text, Check::Models).contains("plain NTamd64"));
    }

    #[test]
    fn other_component_id() {
        let text = mutated("= Partyline.Install, PL_PARTYLINE", "= Partyline.Install, PL_OTHER");
        assert!(only(&text, Check::Models).contains("PL_OTHER"));
    }

    #[test]
    fn other_service_name() {
        let text = mutated(
            "AddService = partyline, , Partyline.Service.Drivers",
            "AddService = partylin, , Partyline.Service.Drivers",
        );
        let found = check_inf(&text);
        let kinds: Vec<Check> = found.iter().map(|f| f.check).collect();
        // Service names the wrong name; CoServices no longer matches the services added.
        assert_eq!(kinds, [Check::Service, Check::CoServices], "{found:#?}");
        assert!(found[0].detail.contains("\"partylin\""));
    }

    #[test]
    fn auto_start() {
        let text = mutated(
            "StartType     = 3 ; SERVICE_DEMAND_START\nErrorControl  = 1 ; SERVICE_ERROR_NORMAL\nServiceBinary = %13%",
            "StartType     = 2 ; SERVICE_AUTO_START\nErrorControl  = 1 ; SERVICE_ERROR_NORMAL\nServiceBinary = %13%",
        );
        assert!(only(&text, Check::Service).contains("StartType"));
    }

    #[test]
    fn not_a_kernel_driver() {
        let text = mutated(
            "ServiceType   = 1 ; SERVICE_KERNEL_DRIVER\nStartType     = 3 ; SERVICE_DEMAND_START\nErrorControl  = 1 ; SERVICE_ERROR_NORMAL\nServiceBinary = %12%",
            "ServiceType   = 2 ; SERVICE_FILE_SYSTEM_DRIVER\nStartType     = 3 ; SERVICE_DEMAND_START\nErrorControl  = 1 ; SERVICE_ERROR_NORMAL\nServiceBinary = %12%",
        );
        assert!(only(&text, Check::Service).contains("ServiceType"));
    }

    #[test]
    fn service_binary_not_where_the_file_is_copied() {
        let text = mutated("ServiceBinary = %13%\\partyline.sys", "ServiceBinary = %12%\\partyline.sys");
        assert!(only(&text, Check::Service).contains("copies it to DIRID"));
    }

    #[test]
    fn service_binary_is_another_file() {
        let text = mutated("ServiceBinary = %13%\\partyline.sys", "ServiceBinary = %13%\\other.sys");
        let found = check_inf(&text);
        let kinds: Vec<Check> = found.iter().map(|f| f.check).collect();
        // Service names the wrong binary; Files notices other.sys is not on the source disk.
        assert_eq!(kinds, [Check::Service, Check::Files], "{found:#?}");
    }

    #[test]
    fn lower_range_without_atm() {
        let text = mutated("LowerRange, 0, \"ndisatm\"", "LowerRange, 0, \"ndis5\"");
        assert!(only(&text, Check::Binding).contains("ndisatm"));
    }

    #[test]
    fn lower_range_list_with_atm_is_accepted() {
        let text = mutated("LowerRange, 0, \"ndisatm\"", "LowerRange, 0, \"ndis5, ndisatm\"");
        assert!(check_inf(&text).is_empty());
    }

    #[test]
    fn ndi_service_not_the_service() {
        let text = mutated("Service,    0, \"partyline\"", "Service,    0, \"ndisprot\"");
        let found = check_inf(&text);
        let kinds: Vec<Check> = found.iter().map(|f| f.check).collect();
        // Binding names the wrong primary service (once for the shared AddReg section); CoServices,
        // for each install, that it is not among the CoServices.
        assert_eq!(kinds, [Check::Binding, Check::CoServices, Check::CoServices], "{found:#?}");
        assert!(found[0].detail.contains("Ndi\\Service"));
        assert!(found[1].detail.contains("does not include Ndi\\Service \"ndisprot\""));
    }

    #[test]
    fn no_help_text() {
        let text = mutated("HKR, Ndi,            HelpText,   0, %Partyline.HelpText%\n", "");
        assert!(only(&text, Check::Binding).contains("HelpText"));
    }

    #[test]
    fn image_not_in_source_disks_files() {
        let text = mutated("partyline.sys = 1\n", "");
        assert!(only(&text, Check::Files).contains("partyline.sys is not in [SourceDisksFiles]"));
    }

    #[test]
    fn image_on_undeclared_disk() {
        let text = mutated("partyline.sys = 1\n", "partyline.sys = 2\n");
        assert!(only(&text, Check::Files).contains("disk \"2\""));
    }

    #[test]
    fn extra_copied_file_not_on_disk() {
        let text = mutated(
            "[Partyline.Files.Drivers]\npartyline.sys,,,2\n",
            "[Partyline.Files.Drivers]\npartyline.sys,,,2\npartyline.pdb,,,2\n",
        );
        assert!(only(&text, Check::Files).contains("partyline.pdb"));
    }

    #[test]
    fn copy_files_without_destination() {
        let text = mutated("Partyline.Files.Drivers     = 12\n", "");
        assert!(only(&text, Check::Files).contains("[Partyline.Files.Drivers]"));
    }

    #[test]
    fn undefined_string() {
        let text = mutated(
            "Partyline.HelpText   = \"NDIS 6 connection-oriented client that makes ATM UNI 3.1 point-to-multipoint calls.\"\n",
            "",
        );
        let found = check_inf(&text);
        let kinds: Vec<Check> = found.iter().map(|f| f.check).collect();
        // The unexpanded token still counts as help text; only Strings reports it.
        assert_eq!(kinds, [Check::Strings], "{found:#?}");
        assert!(found[0].detail.contains("%Partyline.HelpText%"));
    }

    /// The INF with each `(from, to)` replaced exactly once.
    fn mutated_all(edits: &[(&str, &str)]) -> String {
        let mut text = INF.to_owned();
        for (from, to) in edits {
            assert_eq!(text.matches(from).count(), 1, "mutation {from:?} must match exactly once");
            text = text.replacen(from, to, 1);
        }
        text
    }

    // "Adding Service-Related Values to the Ndi Key": CoServices is required for NetTrans.
    #[test]
    fn no_co_services() {
        let text = mutated("HKR, Ndi,            CoServices, 0x00010000, \"partyline\"\n", "");
        let found = check_inf(&text);
        assert!(found.iter().all(|f| f.check == Check::CoServices) && found.len() == 2, "{found:#?}");
        assert!(found[0].detail.contains("no Ndi\\CoServices"));
    }

    // ... and it is a MULTI_SZ value.
    #[test]
    fn co_services_as_reg_sz() {
        let text = mutated("CoServices, 0x00010000, \"partyline\"", "CoServices, 0, \"partyline\"");
        let found = check_inf(&text);
        assert!(found.iter().all(|f| f.check == Check::CoServices) && found.len() == 2, "{found:#?}");
        assert!(found[0].detail.contains("not REG_MULTI_SZ"));
    }

    // ... listing every service the component installs (here one that nothing adds).
    #[test]
    fn co_services_names_a_service_nothing_adds() {
        let text = mutated(
            "CoServices, 0x00010000, \"partyline\"",
            "CoServices, 0x00010000, \"partyline\", \"atmarp\"",
        );
        let found = check_inf(&text);
        assert!(found.iter().all(|f| f.check == Check::CoServices) && found.len() == 2, "{found:#?}");
        assert!(found[0].detail.contains("atmarp"));
    }

    // "Manufacturer Section in a Network INF File": DIRID 13 needs build 25319 or later.
    #[test]
    fn driver_store_section_for_build_25292() {
        let text = mutated_all(&[
            ("NTamd64.10.0...25319, NTamd64\n", "NTamd64.10.0...25292, NTamd64\n"),
            ("[Partyline.NTamd64.10.0...25319]", "[Partyline.NTamd64.10.0...25292]"),
        ]);
        let detail = only(&text, Check::DriverStore);
        assert!(detail.contains("build Some(25292)") && detail.contains("25319"), "{detail}");
    }

    // ... and the undecorated section (every older build) may not run from the driver store.
    #[test]
    fn driver_store_in_the_undecorated_section() {
        let text = mutated(
            "%Partyline.DeviceDesc% = Partyline.Install.Copy, PL_PARTYLINE",
            "%Partyline.DeviceDesc% = Partyline.Install, PL_PARTYLINE",
        );
        assert!(only(&text, Check::DriverStore).contains("[Partyline.NTamd64] (build None)"));
    }

    // ... while the section for 25319 and later runs from it (Windows Driver isolation).
    #[test]
    fn drivers_directory_in_the_driver_store_section() {
        let text = mutated(
            "%Partyline.DeviceDesc% = Partyline.Install, PL_PARTYLINE",
            "%Partyline.DeviceDesc% = Partyline.Install.Copy, PL_PARTYLINE",
        );
        assert!(only(&text, Check::DriverStore).contains("copies the image to DIRID 12"));
    }

    // "INF DelService Directive": not valid in a Windows Driver package.
    #[test]
    fn del_service_is_not_for_a_windows_driver() {
        let text = mutated(
            "[Partyline.Service.DriverStore]\n",
            "[Partyline.Install.Remove.Services]\nDelService = partyline, 0x200\n\n[Partyline.Service.DriverStore]\n",
        );
        assert!(only(&text, Check::WindowsDriver).contains("DelService"));
    }

    // "INF DelFiles Directive": neither is DelFiles.
    #[test]
    fn del_files_is_not_for_a_windows_driver() {
        let text = mutated(
            "CopyFiles       = Partyline.Files.Drivers\n",
            "CopyFiles       = Partyline.Files.Drivers\nDelFiles        = Partyline.Files.Drivers\n",
        );
        assert!(only(&text, Check::WindowsDriver).contains("DelFiles"));
    }

    // "Installation Requirements for Network Protocols": Characteristics is required ...
    #[test]
    fn no_characteristics() {
        let text = mutated("[Partyline.Install.Copy]\nCharacteristics = 0x0\n", "[Partyline.Install.Copy]\n");
        assert!(
            only(&text, Check::Characteristics).contains("[Partyline.Install.Copy] has no Characteristics")
        );
    }

    // ... and only NCF_HIDDEN, NCF_NO_SERVICE, NCF_NOT_USER_REMOVABLE, NCF_HAS_UI are allowed
    // (0x1 is NCF_VIRTUAL, an adapter's).
    #[test]
    fn adapter_characteristics() {
        let text = mutated(
            "[Partyline.Install]\nCharacteristics = 0x0\n",
            "[Partyline.Install]\nCharacteristics = 0x1\n",
        );
        assert!(only(&text, Check::Characteristics).contains("has 0x1"));
    }

    #[test]
    fn allowed_characteristics_pass() {
        let text = mutated(
            "[Partyline.Install]\nCharacteristics = 0x0\n",
            "[Partyline.Install]\nCharacteristics = 0xB8\n",
        );
        assert!(check_inf(&text).is_empty(), "{:#?}", check_inf(&text));
    }

    // ... the allowable binding interfaces of a protocol (UpperRange).
    #[test]
    fn upper_range_an_adapter_interface() {
        let text = mutated("UpperRange, 0, \"noupper\"", "UpperRange, 0, \"ndis5\"");
        assert!(only(&text, Check::Binding).contains("\"ndis5\", which a protocol may not"));
    }

    // ... (LowerRange).
    #[test]
    fn lower_range_a_media_type() {
        let text = mutated("LowerRange, 0, \"ndisatm\"", "LowerRange, 0, \"ndisatm, atm\"");
        assert!(only(&text, Check::Binding).contains("\"atm\", which a protocol may not"));
    }

    // ... and the hw-id is <provider>_<product>.
    #[test]
    fn hw_id_without_provider() {
        let text = mutated_all(&[
            ("= Partyline.Install, PL_PARTYLINE", "= Partyline.Install, PARTYLINE"),
            ("= Partyline.Install.Copy, PL_PARTYLINE", "= Partyline.Install.Copy, PARTYLINE"),
        ]);
        let found = check_inf(&text);
        assert!(found.iter().all(|f| f.check == Check::Models), "{found:#?}");
        assert!(
            found.iter().any(|f| f.detail.contains("\"PARTYLINE\" is not <provider>_<product>")),
            "{found:#?}"
        );
    }
}
