use latchkey_token::{
    CredentialPolicy, LimitPolicy, NewToken, PolicyOrigin, PolicyState, StoreError, TokenRecord,
    TokenStore, unix_now,
};

use super::*;

fn credential(last: u8) -> CredentialKey {
    CredentialKey::from_credential_id(&format!("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a{last:02x}"))
        .unwrap()
}

fn policy(version: i64, state: PolicyState) -> CredentialPolicy {
    CredentialPolicy {
        version,
        state,
        client_id: "lkc_client".to_owned(),
        project_id: "acme".to_owned(),
        owner: "alice".to_owned(),
        allowed_apis: vec!["read".to_owned()],
        allowed_ips: latchkey_net::IpAllowlist::parse(&["10.0.0.0/8"]).unwrap(),
        expire_time: Some(unix_now() + 86_400),
    }
}

async fn issue(store: &MemoryTokenStore, credential: CredentialKey, hash: u8, lifetime: i64) {
    let now = unix_now();
    let record = TokenRecord {
        issued_at: now,
        expires_at: now + lifetime,
        scopes: vec!["read".to_owned()],
    };
    let policy = policy(1, PolicyState::Active);
    store
        .issue(&NewToken {
            credential,
            hash: TokenHash([hash; 16]),
            record: &record,
            policy: &policy,
            origin: PolicyOrigin::Registry,
            limit: LimitPolicy {
                max_tokens: 10,
                evict_oldest: false,
            },
            now,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn live_tokens_revocations_and_policies_survive_a_save_and_restore() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("tokens.snapshot");
    let store = MemoryTokenStore::new();
    issue(&store, credential(1), 1, 3600).await;
    issue(&store, credential(1), 2, 3600).await;
    assert!(
        store
            .revoke(credential(1), &TokenHash([2; 16]))
            .await
            .unwrap()
    );
    // A deleted credential's tombstone policy refuses late issuances: kept.
    store
        .apply_policy(credential(2), &policy(7, PolicyState::Deleted), true)
        .await
        .unwrap();

    let saved = store.close_and_save(&path, unix_now()).unwrap();
    assert_eq!(
        saved,
        Saved {
            credentials: 2,
            tokens: 1
        }
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("lkt_"), "no token in the file: {text}");

    let (restored, outcome) = MemoryTokenStore::restore(&path, unix_now()).unwrap();
    assert_eq!(
        outcome,
        Restored::Loaded {
            credentials: 2,
            tokens: 1
        }
    );
    assert!(!path.exists(), "a snapshot is read once");
    let live = restored
        .lookup(credential(1), &TokenHash([1; 16]))
        .await
        .unwrap();
    assert_eq!(live.token.unwrap().scopes, ["read"]);
    assert_eq!(*live.policy.unwrap(), policy(1, PolicyState::Active));
    let revoked = restored
        .lookup(credential(1), &TokenHash([2; 16]))
        .await
        .unwrap();
    assert!(revoked.token.is_none() && revoked.revoked);
    let deleted = restored.policy(credential(2)).await.unwrap().unwrap();
    assert_eq!(deleted.state, PolicyState::Deleted);
    assert_eq!(deleted.version, 7);
}

#[tokio::test]
async fn writes_after_the_save_are_refused_so_none_is_lost() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("tokens.snapshot");
    let store = MemoryTokenStore::new();
    issue(&store, credential(1), 1, 3600).await;
    store.close_and_save(&path, unix_now()).unwrap();

    let revoke = store
        .apply_policy(credential(1), &policy(2, PolicyState::Disabled), true)
        .await;
    assert!(
        matches!(revoke, Err(StoreError::Unavailable(_))),
        "{revoke:?}"
    );
    assert!(matches!(
        store.revoke(credential(1), &TokenHash([1; 16])).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.close_and_save(&path, unix_now()),
        Err(SnapshotError::AlreadyClosed)
    ));
    // Reads still answer from the state that was saved.
    assert!(
        store
            .lookup(credential(1), &TokenHash([1; 16]))
            .await
            .unwrap()
            .token
            .is_some()
    );
}

#[tokio::test]
async fn expired_tokens_are_not_taken_back() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("tokens.snapshot");
    let store = MemoryTokenStore::new();
    issue(&store, credential(1), 1, 60).await;
    issue(&store, credential(1), 2, 3600).await;
    store.close_and_save(&path, unix_now()).unwrap();

    let (restored, outcome) = MemoryTokenStore::restore(&path, unix_now() + 120).unwrap();
    assert_eq!(
        outcome,
        Restored::Loaded {
            credentials: 1,
            tokens: 1
        }
    );
    let tokens: usize = restored
        .shards
        .iter()
        .map(|shard| {
            lock(shard)
                .values()
                .map(|stored| stored.tokens.len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(tokens, 1);
}

#[test]
fn no_snapshot_starts_empty() {
    let directory = tempfile::tempdir().unwrap();
    let (_, outcome) =
        MemoryTokenStore::restore(&directory.path().join("tokens.snapshot"), unix_now()).unwrap();
    assert_eq!(outcome, Restored::Nothing);
}

#[test]
fn a_corrupt_snapshot_is_discarded_whole_and_removed() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("tokens.snapshot");
    let good = r#"{"c":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01","w":1,"p":"{}","t":[],"r":[]}"#;
    for (contents, reason) in [
        ("", "empty file"),
        ("not json\n", "no header"),
        (
            "{\"latchkey_token_snapshot\":99,\"saved_at\":1}\n",
            "format 99",
        ),
        (
            &*format!("{{\"latchkey_token_snapshot\":1,\"saved_at\":1}}\n{good}\n"),
            "line 2: malformed policy",
        ),
        (
            "{\"latchkey_token_snapshot\":1,\"saved_at\":1}\n{\"c\":\"x\",\"w\":1,\"p\":\"\",\"t\":[],\"r\":[]}\n",
            "line 2: not a credential ID",
        ),
    ] {
        fs::write(&path, contents).unwrap();
        let (store, outcome) = MemoryTokenStore::restore(&path, unix_now()).unwrap();
        match outcome {
            Restored::Discarded { reason: found } => {
                assert!(found.starts_with(reason), "{found:?} for {contents:?}");
            }
            other => panic!("{other:?} for {contents:?}"),
        }
        assert!(!path.exists());
        assert_eq!(
            store
                .shards
                .iter()
                .map(|shard| lock(shard).len())
                .sum::<usize>(),
            0
        );
    }
}
