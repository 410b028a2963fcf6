//! The authenticator's unit tests.

use super::*;
use clap::Parser;

/// AUTH_MODE=api-key with these API_KEYS, parsed as the binary parses them.
fn api_key_settings(inline: &str) -> AuthSettings {
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        auth: AuthSettings,
    }
    Args::try_parse_from(["draftstore", "--auth-mode", "api-key", "--api-keys", inline]).expect("parses").auth
}

fn api_keys(keys: &[(&str, &str)]) -> Authenticator {
    let inline =
        keys.iter().map(|(t, k)| format!("{t}:{}", hex::encode(Sha256::digest(k)))).collect::<Vec<_>>().join(",");
    Authenticator::from_settings(&api_key_settings(&inline), TenantNames::AsGiven).expect("valid")
}

#[test]
fn api_keys_identify_their_tenant_and_nothing_else_passes() {
    let auth = api_keys(&[("alice", "k-alice"), ("bob", "k-bob")]);
    let tenant = |header: &str| auth.authenticate(Some(header)).map(|c| c.tenant().map(|t| t.as_str().to_owned()));
    assert_eq!(tenant("Bearer k-alice").ok().flatten().as_deref(), Some("alice"));
    assert_eq!(tenant("bearer k-bob").ok().flatten().as_deref(), Some("bob"));
    for bad in ["Bearer k-carol", "Basic k-alice", "Bearer ", "k-alice", ""] {
        assert!(matches!(auth.authenticate(Some(bad)), Err(Error::Unauthenticated)), "{bad:?}");
    }
    assert!(matches!(auth.authenticate(None), Err(Error::Unauthenticated)));
}

#[test]
fn bad_key_lists_are_refused_at_start_up() {
    for inline in ["alice", "alice:nothex", "a/b:00", ""] {
        assert!(Authenticator::from_settings(&api_key_settings(inline), TenantNames::AsGiven).is_err(), "{inline:?}");
    }
}

#[test]
fn tenants_prefix_keys_and_are_single_segments() {
    let caller = Caller { tenant: Some(Tenant::parse("alice").expect("valid")), operator: false };
    let key = caller.key(&ObjectName::parse("docs/a.txt").expect("valid")).expect("fits");
    assert_eq!(key.as_str(), "alice/docs/a.txt");
    assert!(caller.key(&ObjectName::parse(&"x".repeat(1020)).expect("valid")).is_err());
    for bad in ["", "a/b", "..", ".", "nul\0"] {
        assert!(Tenant::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_tenant_name_is_at_most_128_bytes() {
    assert!(Tenant::parse(&"a".repeat(MAX_TENANT_LEN)).is_ok());
    let refused = Tenant::parse(&"a".repeat(MAX_TENANT_LEN + 1)).expect_err("too long");
    assert!(refused.contains("at most 128 bytes"), "{refused}");
    let long = format!("{}:{}", "a".repeat(129), hex::encode(Sha256::digest("k")));
    let error = Authenticator::from_settings(&api_key_settings(&long), TenantNames::AsGiven).expect_err("refused");
    assert!(error.to_string().starts_with("API_KEYS: a tenant name is at most 128 bytes"), "{error}");
}

#[test]
fn a_case_sensitive_data_dir_keeps_tenant_names_as_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(TenantNames::probe(dir.path()).expect("probed"), TenantNames::AsGiven);
    assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 0, "the probe leaves nothing behind");
    let keys = api_keys(&[("Alice", "k-upper"), ("alice", "k-lower")]);
    let tenant = |key: &str| keys.authenticate(Some(&format!("Bearer {key}"))).expect("known").tenant().cloned();
    assert_ne!(tenant("k-upper"), tenant("k-lower"));
}

#[test]
fn a_case_insensitive_data_dir_admits_lower_case_ascii_tenants_only() {
    let rule = TenantNames::LowerCaseAscii;
    for fine in ["alice", "team-7", "a.b_c@d"] {
        assert!(rule.check(&Tenant::parse(fine).expect("valid")).is_ok(), "{fine}");
    }
    for merged in ["Alice", "ALICE", "alicé"] {
        let refused = rule.check(&Tenant::parse(merged).expect("valid")).expect_err("refused");
        assert!(refused.contains("case-insensitive filesystem"), "{refused}");
    }
    let inline = format!("Alice:{}", hex::encode(Sha256::digest("k")));
    let error = Authenticator::from_settings(&api_key_settings(&inline), rule).expect_err("refused at start-up");
    assert!(error.to_string().starts_with("API_KEYS: tenant 'Alice' must be lower-case ASCII"), "{error}");
}

#[test]
fn a_key_set_key_is_used_only_as_it_says() {
    let rsa = |extra: serde_json::Value| {
        let mut jwk = serde_json::json!({
            "kty": "RSA", "kid": "k",
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
            "e": "AQAB"
        });
        for (name, value) in extra.as_object().expect("object") {
            jwk[name] = value.clone();
        }
        serde_json::from_value::<Jwk>(jwk).expect("a JWK")
    };
    let any = set_key(&rsa(serde_json::json!({}))).expect("usable");
    assert!(any.algorithms.contains(&Algorithm::RS256) && any.algorithms.contains(&Algorithm::PS512));
    let pinned = set_key(&rsa(serde_json::json!({ "use": "sig", "alg": "PS256" }))).expect("usable");
    assert_eq!(pinned.algorithms, [Algorithm::PS256]);
    for (extra, why) in [
        (serde_json::json!({ "use": "enc" }), "not sig"),
        (serde_json::json!({ "key_ops": ["encrypt"] }), "verify"),
        (serde_json::json!({ "alg": "RSA-OAEP" }), "not for signatures"),
        (serde_json::json!({ "alg": "ES256" }), "does not fit"),
    ] {
        let refused = set_key(&rsa(extra.clone())).err().expect("not usable");
        assert!(refused.contains(why), "{extra}: {refused}");
    }
    let secret = serde_json::from_value::<Jwk>(serde_json::json!({ "kty": "oct", "k": "c2VjcmV0" })).expect("JWK");
    assert!(set_key(&secret).is_err(), "a secret key never verifies");
    assert!(usable_keys(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err(), "no usable key");
}
