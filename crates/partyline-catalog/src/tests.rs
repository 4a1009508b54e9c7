//! The catalog decodes back (with the same `der` types) to what was put in: one subject per
//! member, sorted by hash, each with its name, OS attribute, kind and digest.

use super::*;

fn options() -> Options {
    Options {
        os: "_v100_X64".into(),
        os_attr: "2:10.0".into(),
        hardware_ids: vec!["PL_PARTYLINE".into()],
        time: Duration::from_secs(1_764_000_000),
    }
}

fn name_values(attributes: &SetOfVec<Attribute>) -> Vec<(String, String)> {
    attributes
        .iter()
        .filter(|a| a.oid == CAT_NAMEVALUE)
        .map(|a| {
            let nv: CatNameValue = a.values.get(0).unwrap().decode_as().unwrap();
            assert_eq!(nv.flags, ATTR_AUTHENTICATED_ASCII);
            (nv.tag.to_string(), nv.value_text())
        })
        .collect()
}

#[test]
fn members_decode_back_sorted_with_their_attributes() {
    let image = crate::authenticode::tests::tiny_image();
    let inf = b"[Version]\r\nSignature = \"$Windows NT$\"\r\n";
    let members =
        [Member { name: "partyline.sys", bytes: &image }, Member { name: "partyline.inf", bytes: inf }];
    let der = make_catalog(&members, &options()).unwrap();
    let list = read_catalog(&der).unwrap();

    assert_eq!(list.subject_usage, [CATALOG_LIST]);
    assert_eq!(list.subject_algorithm.oid, CATALOG_LIST_MEMBER2);
    assert_eq!(list.trusted_subjects.len(), 2);
    let ids: Vec<&[u8]> = list.trusted_subjects.iter().map(|s| s.identifier.as_bytes()).collect();
    assert!(ids[0] < ids[1], "subjects sorted by hash");

    for subject in &list.trusted_subjects {
        let names = name_values(&subject.attributes);
        let file = names.iter().find(|(n, _)| n == "File").unwrap().1.clone();
        assert!(names.contains(&("OSAttr".into(), "2:10.0".into())), "{names:?}");
        let member = members.iter().find(|m| m.name == file).unwrap();
        assert_eq!(subject.identifier.as_bytes(), member_hash(member.bytes).unwrap());

        let indirect: SpcIndirectDataContent = subject
            .attributes
            .iter()
            .find(|a| a.oid == SPC_INDIRECT_DATA)
            .unwrap()
            .values
            .get(0)
            .unwrap()
            .decode_as()
            .unwrap();
        assert_eq!(indirect.message_digest.algorithm.oid, SHA256);
        assert_eq!(indirect.message_digest.digest, subject.identifier);
        let expected_kind = if file.ends_with(".sys") { SPC_PE_IMAGE_DATA } else { SPC_CAB_DATA };
        assert_eq!(indirect.data.kind, expected_kind);
        assert!(subject.attributes.iter().any(|a| a.oid == CAT_MEMBERINFO2));
    }
    // A PE image is listed by its Authenticode hash, not the hash of its bytes.
    let sys =
        list.trusted_subjects.iter().find(|s| s.identifier.as_bytes() != Sha256::digest(inf).as_slice());
    assert_ne!(sys.unwrap().identifier.as_bytes(), Sha256::digest(&image).as_slice());

    let extensions = list.extensions.unwrap();
    let catalog: Vec<(String, String)> = extensions
        .iter()
        .map(|e| {
            let nv = CatNameValue::from_der(e.extn_value.as_bytes()).unwrap();
            (nv.tag.to_string(), nv.value_text())
        })
        .collect();
    assert_eq!(catalog, [("OS".into(), "_v100_X64".into()), ("HWID1".into(), "pl_partyline".into())]);
}

#[test]
fn same_members_same_catalog() {
    let members = [Member { name: "a.inf", bytes: b"a" }];
    assert_eq!(make_catalog(&members, &options()).unwrap(), make_catalog(&members, &options()).unwrap());
}

#[test]
fn duplicates_are_refused() {
    let twice = [Member { name: "a.inf", bytes: b"a" }, Member { name: "A.INF", bytes: b"b" }];
    assert!(matches!(make_catalog(&twice, &options()), Err(Error::Duplicate(_))));
    let same_content = [Member { name: "a.inf", bytes: b"a" }, Member { name: "b.inf", bytes: b"a" }];
    assert!(matches!(make_catalog(&same_content, &options()), Err(Error::Duplicate(_))));
}

#[test]
fn a_broken_image_is_refused_not_listed_as_a_flat_file() {
    let mut image = crate::authenticode::tests::tiny_image();
    image[0x58] = 0x99; // optional header magic
    let members = [Member { name: "partyline.sys", bytes: &image }];
    assert!(matches!(make_catalog(&members, &options()), Err(Error::Image(_))));
}
