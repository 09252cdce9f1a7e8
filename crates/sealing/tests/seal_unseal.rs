//! Round trips, scopes, negatives and output shape of the sealing library.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use hush_crypto::SystemEntropy;
use hush_crypto::rsa::RsaPrivateKey;
use hush_sealing::codec::{self, Format};
use hush_sealing::seal::{self, Prepare};
use hush_sealing::unseal::{Keyring, UnsealOptions, ValueError};
use hush_sealing::{Error, Scope, b64};

fn key() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| RsaPrivateKey::generate(2048).unwrap())
}

fn other_key() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| RsaPrivateKey::generate(2048).unwrap())
}

fn keyring() -> Keyring {
    let mut ring = Keyring::new();
    ring.add_named("other", other_key().clone());
    ring.add_named("main", key().clone());
    ring
}

const INPUT: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
  uid: "1234"
  resourceVersion: "9"
  creationTimestamp: "2024-01-01T00:00:00Z"
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"data":{"password":"aHVudGVyMg=="}}'
    team: core
  ownerReferences:
  - apiVersion: v1
    kind: Pod
    name: x
    uid: y
data:
  password: aHVudGVyMg==
  empty: ""
  binary: AP8Agw==
stringData:
  password: from-string-data
  user: admin
"#;

fn prepared(scope: Scope) -> hush_sealing::Secret {
    let mut secret = codec::read_secrets(INPUT.as_bytes()).unwrap().remove(0);
    seal::prepare(
        &mut secret,
        &Prepare {
            scope,
            namespace: "default",
            ..Prepare::default()
        },
    )
    .unwrap();
    secret
}

#[test]
fn every_scope_round_trips_and_reports_the_key() {
    for scope in Scope::ALL {
        let secret = prepared(scope);
        let sealed = seal::seal_secret(key().public_key(), &secret, &mut SystemEntropy).unwrap();
        assert_eq!(sealed.scope(), scope);
        let un = keyring()
            .unseal(&sealed, &UnsealOptions::default())
            .unwrap();
        let data = &un.secret.data;
        assert_eq!(
            data["password"].expose(),
            b"from-string-data",
            "stringData wins"
        );
        assert_eq!(data["user"].expose(), b"admin");
        assert_eq!(data["empty"].expose(), b"");
        assert_eq!(data["binary"].expose(), &[0x00, 0xff, 0x00, 0x83]);
        assert!(
            un.opened_by.values().all(|k| k == "main"),
            "{:?}",
            un.opened_by
        );
        assert_eq!(un.opened_by.len(), 4);
        // Template: last-applied and ownerReferences stripped, server fields cleared.
        let t = &sealed.spec.template.metadata;
        assert!(
            !t.annotations
                .contains_key("kubectl.kubernetes.io/last-applied-configuration")
        );
        assert_eq!(t.annotations["team"], "core");
        assert!(t.owner_references.is_empty() && t.uid.is_empty());
        assert!(t.creation_timestamp.is_none() && t.resource_version.is_empty());
        // The unsealed Secret is owned by the SealedSecret.
        assert_eq!(un.secret.metadata.owner_references.len(), 1);
    }
}

#[test]
fn strict_value_moved_to_another_namespace_or_name_is_refused() {
    let sealed = seal::seal_secret(
        key().public_key(),
        &prepared(Scope::Strict),
        &mut SystemEntropy,
    )
    .unwrap();
    for (ns, name) in [("staging", "db"), ("prod", "db2")] {
        let mut moved = sealed.clone();
        moved.metadata.namespace = ns.into();
        moved.metadata.name = name.into();
        let err = keyring()
            .unseal(&moved, &UnsealOptions::default())
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("no key could decrypt secret: sealed for another namespace/name"),
            "{msg}"
        );
        assert!(msg.ends_with("(binary, empty, password, user)"), "{msg}");
        assert!(!msg.contains("admin") && !msg.contains("from-string-data"));
    }
}

#[test]
fn namespace_wide_moves_within_namespace_only_and_scope_mismatch_is_named() {
    let sealed = seal::seal_secret(
        key().public_key(),
        &prepared(Scope::NamespaceWide),
        &mut SystemEntropy,
    )
    .unwrap();
    let mut renamed = sealed.clone();
    renamed.metadata.name = "renamed".into();
    assert!(
        keyring()
            .unseal(&renamed, &UnsealOptions::default())
            .is_ok()
    );

    let mut moved = sealed.clone();
    moved.metadata.namespace = "staging".into();
    let msg = keyring()
        .unseal(&moved, &UnsealOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("sealed for another namespace/name"), "{msg}");

    // The annotation was dropped from the SealedSecret: the diagnosis names the real scope.
    let mut stripped = sealed.clone();
    stripped.metadata.annotations.clear();
    let msg = keyring()
        .unseal(&stripped, &UnsealOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("sealed for namespace-wide scope, but the SealedSecret's annotations select strict scope"),
        "{msg}"
    );
}

#[test]
fn tampering_truncation_wrong_key_and_bad_prefix_are_clear_errors() {
    let label = Scope::Strict.label("prod", "db");
    let text = seal::seal_raw(
        key().public_key(),
        Scope::Strict,
        "prod",
        "db",
        b"hunter2",
        &mut SystemEntropy,
    )
    .unwrap();
    let bytes = b64::decode(&text).unwrap();
    let ring = keyring();
    assert_eq!(
        ring.open_with_label(&bytes, &label).unwrap().0.expose(),
        b"hunter2"
    );

    // A flip in the AES part: RSA opens, GCM refuses.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 0x01;
    assert_eq!(
        ring.open_with_label(&flipped, &label).unwrap_err(),
        ValueError::Tampered
    );
    // A flip in the RSA part: no key opens it.
    let mut flipped = bytes.clone();
    flipped[10] ^= 0x80;
    assert_eq!(
        ring.open(&flipped, Scope::Strict, "prod", "db")
            .unwrap_err(),
        ValueError::NoKey
    );
    // Truncation and a length prefix beyond the input.
    for bad in [&bytes[..1], &bytes[..100], &bytes[..2 + 256 + 15]] {
        assert!(
            matches!(
                ring.open_with_label(bad, &label),
                Err(ValueError::Malformed(_))
            ),
            "{}",
            bad.len()
        );
    }
    let mut big = bytes.clone();
    big[0] = 0xff;
    let err = ring.open_with_label(&big, &label).unwrap_err();
    assert!(err.to_string().contains("length prefix"), "{err}");
    // Wrong key only.
    let mut only_other = Keyring::new();
    only_other.add(other_key().clone());
    assert_eq!(
        only_other
            .open(&bytes, Scope::Strict, "prod", "db")
            .unwrap_err(),
        ValueError::NoKey
    );
    assert_eq!(
        Keyring::new().open_with_label(&bytes, &label).unwrap_err(),
        ValueError::NoKeys
    );
}

#[test]
fn raw_rules_follow_kubeseal() {
    let pk = key().public_key();
    assert!(matches!(
        seal::seal_raw(pk, Scope::Strict, "ns", "", b"v", &mut SystemEntropy),
        Err(Error::RawNeedsName { .. })
    ));
    assert!(matches!(
        seal::seal_raw(pk, Scope::NamespaceWide, "", "", b"v", &mut SystemEntropy),
        Err(Error::RawNeedsNamespace { .. })
    ));
    let cw = seal::seal_raw(pk, Scope::ClusterWide, "", "", b"", &mut SystemEntropy).unwrap();
    let ring = keyring();
    let opened = ring
        .open_with_label(&b64::decode(&cw).unwrap(), b"")
        .unwrap();
    assert!(opened.0.is_empty());
}

#[test]
fn namespace_rules_follow_kubeseal() {
    let mut s = codec::read_secrets(
        b"{\"metadata\":{\"name\":\"a\",\"namespace\":\"x\"},\"data\":{\"k\":\"dg==\"}}",
    )
    .unwrap()
    .remove(0);
    let explicit = Prepare {
        namespace: "y",
        namespace_explicit: true,
        ..Prepare::default()
    };
    let err = seal::prepare(&mut s.clone(), &explicit).unwrap_err();
    assert_eq!(
        err.to_string(),
        "namespace mismatch: input secret is in namespace \"x\" but \"y\" was specified"
    );
    // Not explicit: the Secret's own namespace stays.
    seal::prepare(
        &mut s,
        &Prepare {
            namespace: "y",
            ..Prepare::default()
        },
    )
    .unwrap();
    assert_eq!(s.metadata.namespace, "x");
    // Missing namespace: filled; cluster-wide: may stay empty.
    let mut n = codec::read_secrets(b"metadata: {name: a}\ndata: {k: dg==}\n")
        .unwrap()
        .remove(0);
    let mut cw = n.clone();
    seal::prepare(
        &mut n,
        &Prepare {
            namespace: "ctx",
            ..Prepare::default()
        },
    )
    .unwrap();
    assert_eq!(n.metadata.namespace, "ctx");
    seal::prepare(
        &mut cw,
        &Prepare {
            scope: Scope::ClusterWide,
            namespace: "ctx",
            ..Prepare::default()
        },
    )
    .unwrap();
    assert_eq!(cw.metadata.namespace, "");
    assert!(seal::seal_secret(key().public_key(), &cw, &mut SystemEntropy).is_ok());
    // Empty data and missing name.
    let mut e = codec::read_secrets(b"metadata: {name: a}\n")
        .unwrap()
        .remove(0);
    assert!(matches!(
        seal::prepare(&mut e, &Prepare::default()),
        Err(Error::EmptyData)
    ));
    let mut nn = codec::read_secrets(b"data: {k: dg==}\n").unwrap().remove(0);
    assert!(matches!(
        seal::prepare(&mut nn, &Prepare::default()),
        Err(Error::MissingName)
    ));
}

#[test]
fn multi_document_and_concatenated_json_input() {
    let yaml = "---\nmetadata: {name: a}\ndata: {k: dg==}\n---\n---\nmetadata: {name: b}\nstringData: {k: v}\n";
    assert_eq!(codec::read_secrets(yaml.as_bytes()).unwrap().len(), 2);
    let json = "{\"metadata\":{\"name\":\"a\"}}\n{\"metadata\":{\"name\":\"b\"}} {}";
    assert_eq!(codec::read_secrets(json.as_bytes()).unwrap().len(), 2);
    assert!(codec::read_secrets(b"").unwrap().is_empty());
}

#[test]
fn json_shape_matches_kubeseal() {
    let secret = codec::read_secrets(b"{\"metadata\":{\"name\":\"mysecret\",\"namespace\":\"default\"},\"data\":{\"foo\":\"YmFy\"}}").unwrap().remove(0);
    let mut sealed = seal::seal_secret(key().public_key(), &secret, &mut SystemEntropy).unwrap();
    sealed
        .spec
        .encrypted_data
        .insert("foo".into(), "AgB".into());
    let out = codec::write_sealed_secret(&sealed, Format::Json).unwrap();
    let mut sealed2 = sealed.clone();
    sealed2.spec.template.type_ = "Opaque".into();
    let expected = r#"{
  "kind": "SealedSecret",
  "apiVersion": "bitnami.com/v1alpha1",
  "metadata": {
    "name": "mysecret",
    "namespace": "default"
  },
  "spec": {
    "template": {
      "metadata": {
        "name": "mysecret",
        "namespace": "default"
      }
    },
    "encryptedData": {
      "foo": "AgB"
    }
  }
}
"#;
    assert_eq!(out, expected);
    let yaml = codec::write_sealed_secret(&sealed2, Format::Yaml).unwrap();
    let expected_yaml = "---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: mysecret
  namespace: default
spec:
  encryptedData:
    foo: AgB
  template:
    metadata:
      name: mysecret
      namespace: default
    type: Opaque
";
    assert_eq!(yaml, expected_yaml);
    // And it reads back.
    assert_eq!(
        codec::read_sealed_secret(yaml.as_bytes()).unwrap().spec,
        sealed2.spec
    );
}

#[test]
fn merge_into_keeps_target_and_adds_items() {
    let mut target = seal::seal_secret(
        key().public_key(),
        &prepared(Scope::Strict),
        &mut SystemEntropy,
    )
    .unwrap();
    let mut extra =
        codec::read_secrets(b"metadata: {name: other, labels: {l: v}}\nstringData: {new: value}\n")
            .unwrap()
            .remove(0);
    seal::prepare(
        &mut extra,
        &Prepare {
            override_name: Some("db"),
            override_namespace: Some("prod"),
            namespace: "default",
            ..Prepare::default()
        },
    )
    .unwrap();
    let update = seal::seal_secret(key().public_key(), &extra, &mut SystemEntropy).unwrap();
    seal::merge_into(&mut target, update);
    assert_eq!(target.spec.encrypted_data.len(), 5);
    assert_eq!(target.spec.template.metadata.labels["l"], "v");
    let un = keyring()
        .unseal(&target, &UnsealOptions::default())
        .unwrap();
    assert_eq!(un.secret.data["new"].expose(), b"value");
}

#[test]
fn deprecated_data_and_lenient_reading() {
    let doc = r#"{"metadata":{"name":"a","namespace":"b"},"spec":{"data":"AAAA","encryptedData":{"x":1,"y":"AgB="}}}"#;
    let ss = codec::read_sealed_secret(doc.as_bytes()).unwrap();
    assert_eq!(
        ss.spec.encrypted_data.len(),
        1,
        "non-string entries are dropped"
    );
    assert!(matches!(
        keyring().unseal(&ss, &UnsealOptions::default()),
        Err(Error::DeprecatedData)
    ));
    let opts = UnsealOptions {
        accept_deprecated_v1_data: true,
        ..Default::default()
    };
    assert!(matches!(
        keyring().unseal(&ss, &opts),
        Err(Error::DataAndEncryptedData)
    ));
}

#[test]
fn parse_errors_do_not_echo_values() {
    let err =
        codec::read_secrets(b"metadata: {name: a}\nstringData: {k: [\"hunter2\"]}\n").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = codec::read_secrets(b"{\"metadata\":{\"name\":\"a\"},\"data\":{\"k\":\"hunter2!\"}}")
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(
        err.to_string()
            .contains("illegal base64 data at input byte"),
        "{err}"
    );
}

/// A value of the right length for a 2048-bit key that no key opens.
fn bogus_value() -> String {
    let mut envelope = vec![0x01, 0x00];
    envelope.extend([0x42; 256]);
    envelope.extend([0; 32]);
    b64::encode(&envelope)
}

fn sealed_json(items: &[(String, String)], template: &str) -> hush_sealing::SealedSecret {
    let data: serde_json::Map<String, serde_json::Value> = items
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let text = serde_json::json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "prod"},
        "spec": {"encryptedData": data, "template": {"data": {"t": template}}}})
    .to_string();
    codec::read_sealed_secrets(text.as_bytes())
        .unwrap()
        .remove(0)
}

#[test]
fn unseal_work_is_bounded_by_the_key_operation_budget() {
    // Three values sealed with the second key of the ring: two operations each.
    let secret = prepared(Scope::Strict);
    let sealed = seal::seal_secret(key().public_key(), &secret, &mut SystemEntropy).unwrap();
    let n = sealed.spec.encrypted_data.len();
    let budget = |max| UnsealOptions {
        max_key_operations: max,
        ..UnsealOptions::default()
    };
    assert!(keyring().unseal(&sealed, &budget(Some(2 * n))).is_ok());
    let Err(Error::Unseal(e)) = keyring().unseal(&sealed, &budget(Some(2 * n - 1))) else {
        panic!("one operation short must fail");
    };
    assert_eq!(e.failures.len(), 1, "{e}");
    assert!(
        matches!(e.failures[0].1, ValueError::OverBudget { limit } if limit == 2 * n - 1),
        "{e}"
    );
    assert!(e.to_string().contains("budget of"), "{e}");

    // Values no key opens: two operations each without a diagnosis, which needs four more.
    let bogus: Vec<(String, String)> = (0..10).map(|i| (format!("v{i}"), bogus_value())).collect();
    let Err(Error::Unseal(e)) = keyring().unseal(&sealed_json(&bogus, ""), &budget(Some(5))) else {
        panic!("bogus values must fail");
    };
    let kinds: Vec<&ValueError> = e.failures.iter().map(|(_, v)| v).collect();
    assert_eq!(kinds[..2], [&ValueError::NoKey, &ValueError::NoKey], "{e}");
    assert!(
        kinds[2..]
            .iter()
            .all(|v| matches!(v, ValueError::OverBudget { limit: 5 })),
        "{e}"
    );
    // Unbounded (a CLI user's own file), every value is tried and diagnosed.
    let Err(Error::Unseal(e)) = keyring().unseal(&sealed_json(&bogus, ""), &budget(None)) else {
        panic!("bogus values must fail");
    };
    assert!(
        e.failures.iter().all(|(_, v)| *v == ValueError::NoKey),
        "{e}"
    );
}

#[test]
fn templates_are_not_rendered_when_a_value_does_not_open() {
    let items = vec![("a".to_owned(), bogus_value())];
    let Err(Error::Unseal(e)) = keyring().unseal(
        &sealed_json(&items, "{{ unclosed"),
        &UnsealOptions::default(),
    ) else {
        panic!("a bogus value must fail");
    };
    assert_eq!(e.failures.len(), 1, "{e}");
    assert_eq!(e.failures[0].1, ValueError::NoKey, "the template ran: {e}");
    // Nothing to decrypt: the template is all there is, and it is rendered.
    let Err(Error::Unseal(e)) =
        keyring().unseal(&sealed_json(&[], "{{ unclosed"), &UnsealOptions::default())
    else {
        panic!("a broken template must fail");
    };
    assert!(matches!(e.failures[0].1, ValueError::Template(_)), "{e}");
}
