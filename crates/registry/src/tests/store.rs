//! The memory store answers as the SQL store does: its errors, pages,
//! secrets, usage and audit trail.

use std::net::{IpAddr, Ipv4Addr};

use chrono::Duration;

use super::support::{Fixture, PROJECT, admin, code, everything, manager};
use crate::{
    AuditAction, AuditEvent, AuditFilter, CreateProject, CredentialStore, CredentialUse, LastUse,
    ListCredentials, ListMembers, MemberStore, NoTokenSync, PageRequest, Position, RegistryError,
    RotateSecret, UpdateCredential, UpdateMember, now,
};

#[tokio::test]
async fn errors_are_the_sql_stores() {
    let fixture = Fixture::new().await;
    let store = &fixture.store;
    let key = fixture
        .create(&manager(), "app", "key", &["orders.read"])
        .await
        .unwrap()
        .credential;
    let absent = uuid::Uuid::now_v7().to_string();
    assert!(matches!(
        store.get_project("nowhere").await,
        Err(RegistryError::NotFound {
            kind: "project",
            ..
        })
    ));
    assert!(matches!(
        store.get_credential(&absent).await,
        Err(RegistryError::NotFound {
            kind: "credential",
            ..
        })
    ));
    let unknown_member = store
        .update_member(
            PROJECT,
            "nobody",
            &crate::MemberUpdate::default(),
            now(),
            &NoTokenSync,
            &AuditEvent::by(&admin(), AuditAction::UpdateMember),
        )
        .await;
    assert!(matches!(
        unknown_member,
        Err(RegistryError::NotFound { kind: "member", .. })
    ));
    let taken_project = fixture
        .registry
        .create_project(
            &admin(),
            CreateProject {
                project_id: PROJECT.into(),
                ..CreateProject::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(taken_project.to_string(), "project \"acme\" already exists");
    let taken_name = fixture
        .create(&manager(), "other", "key", &["orders.read"])
        .await
        .unwrap_err();
    assert_eq!(
        taken_name.to_string(),
        "a credential named \"key\" already exists in the project"
    );
    let other = fixture
        .create(&manager(), "app", "other", &["orders.read"])
        .await
        .unwrap()
        .credential;
    let rename = UpdateCredential {
        name: Some("key".into()),
        ..UpdateCredential::default()
    };
    let renaming = fixture
        .registry
        .update_credential(&manager(), &other.id, rename)
        .await;
    assert_eq!(code(renaming), "ALREADY_EXISTS");

    let stale = UpdateCredential {
        description: Some("late edit".into()),
        etag: crate::etag::of(key.policy_version + 1),
        ..UpdateCredential::default()
    };
    let stale = fixture
        .registry
        .update_credential(&manager(), &key.id, stale)
        .await;
    assert_eq!(code(stale), "ABORTED");
    let wrong_name = fixture
        .registry
        .delete_credential(&manager(), &key.id, "Key")
        .await;
    assert_eq!(code(wrong_name), "FAILED_PRECONDITION");

    assert_eq!(fixture.stored(&key.id).await, key, "nothing changed");
    assert_eq!(fixture.stored(&other.id).await, other);
    assert!(fixture.issuer.applied().is_empty(), "nothing was sent");
    let listing = fixture
        .registry
        .list_credentials(
            &admin(),
            ListCredentials {
                project_id: "nowhere".into(),
                ..ListCredentials::default()
            },
        )
        .await;
    assert_eq!(code(listing), "NOT_FOUND");
}

#[tokio::test]
async fn pages_follow_creation_order_either_way() {
    let fixture = Fixture::new().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let key = fixture
            .create(&manager(), "app", &format!("key-{i}"), &["orders.read"])
            .await
            .unwrap();
        ids.push(key.credential.id);
    }
    for (order_by, expected) in [
        ("", ids.clone()),
        ("create_time desc", ids.iter().rev().cloned().collect()),
    ] {
        let mut seen = Vec::new();
        let mut page_token = String::new();
        loop {
            let (page, next) = fixture
                .registry
                .list_credentials(
                    &manager(),
                    ListCredentials {
                        project_id: PROJECT.into(),
                        order_by: order_by.into(),
                        page_size: 2,
                        page_token,
                        ..ListCredentials::default()
                    },
                )
                .await
                .unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.into_iter().map(|credential| credential.id));
            if next.is_empty() {
                break;
            }
            page_token = next;
        }
        assert_eq!(seen, expected, "{order_by:?}");
    }

    for user in ["m1", "m2", "m3"] {
        fixture.member(user, &["orders.read"]).await;
    }
    fixture
        .registry
        .remove_member(&manager(), PROJECT, "m2")
        .await
        .unwrap();
    let list = |include_removed, newest_first| ListMembers {
        project_id: PROJECT.into(),
        include_removed,
        newest_first,
        ..ListMembers::default()
    };
    let users = |members: Vec<crate::Member>| -> Vec<String> {
        members.into_iter().map(|member| member.user_id).collect()
    };
    let (present, _) = fixture
        .registry
        .list_members(&manager(), list(false, false))
        .await
        .unwrap();
    assert_eq!(users(present), ["m1", "m3"]);
    let (all, _) = fixture
        .registry
        .list_members(&manager(), list(true, true))
        .await
        .unwrap();
    assert_eq!(users(all), ["m3", "m2", "m1"]);

    // Keyset positions are strict: starting after the last item is empty.
    let last = fixture.stored(&ids[4]).await;
    let after_last = PageRequest {
        after: Some(Position {
            create_time: last.create_time,
            id: last.id,
        }),
        ..everything()
    };
    let page = fixture
        .store
        .list_credentials(PROJECT, &crate::CredentialFilter::default(), &after_last)
        .await
        .unwrap();
    assert!(page.items.is_empty() && page.next.is_none());
}

#[tokio::test]
async fn a_rotation_keeps_older_secrets_only_for_the_grace_period() {
    let fixture = Fixture::new().await;
    let created = fixture
        .create(&manager(), "app", "key", &["orders.read"])
        .await
        .unwrap();
    let client_id = &created.credential.client_id;
    let ip = "192.0.2.1";
    let rotate = |grace_period_seconds| RotateSecret {
        credential_id: created.credential.id.clone(),
        grace_period_seconds,
        revoke_tokens: false,
    };
    let graced = fixture
        .registry
        .rotate_secret(&manager(), rotate(3600))
        .await
        .unwrap();
    for secret in [&created.client_secret, &graced.client_secret] {
        let used = fixture
            .registry
            .authenticate(client_id, secret, ip)
            .await
            .unwrap();
        assert_eq!(used.credential.policy_version, 2);
    }
    let old = fixture
        .registry
        .authenticate(client_id, &created.client_secret, ip)
        .await
        .unwrap();
    assert_eq!(old.secret_expire_time, graced.previous_secret_expire_time);
    assert_eq!(
        fixture
            .issuer
            .last_for(&created.credential.id)
            .credential
            .policy_version,
        2,
        "every rotation is a new version on the token side"
    );

    let at_once = fixture
        .registry
        .rotate_secret(&manager(), rotate(0))
        .await
        .unwrap();
    for refused in [&created.client_secret, &graced.client_secret] {
        assert!(
            fixture
                .registry
                .authenticate(client_id, refused, ip)
                .await
                .is_err()
        );
    }
    fixture
        .registry
        .authenticate(client_id, &at_once.client_secret, ip)
        .await
        .expect("the newest secret works");
}

#[tokio::test]
async fn usage_keeps_the_latest_and_audit_batches_count_once() {
    let fixture = Fixture::new().await;
    let key = fixture
        .create(&manager(), "app", "key", &["orders.read"])
        .await
        .unwrap()
        .credential;
    let store = &fixture.store;
    let use_at = |time, last_octet| CredentialUse {
        credential_id: key.id.clone(),
        last_use: LastUse {
            time,
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, last_octet)),
        },
    };
    let later = now();
    let earlier = later - Duration::seconds(5);
    let unknown = CredentialUse {
        credential_id: uuid::Uuid::now_v7().to_string(),
        ..use_at(later, 9)
    };
    store
        .record_usage(&[use_at(later, 1), use_at(earlier, 2), unknown])
        .await
        .unwrap();
    let last_use = fixture.stored(&key.id).await.last_use.unwrap();
    assert_eq!(last_use.time, later);
    assert_eq!(last_use.ip.to_string(), "192.0.2.1");

    let mut event = AuditEvent::by(&admin(), AuditAction::IssueToken);
    event.project_id = PROJECT.into();
    event.time = now() - Duration::days(10);
    store
        .append_audit(&[event.clone(), event.clone()])
        .await
        .unwrap();
    store
        .append_audit(std::slice::from_ref(&event))
        .await
        .unwrap();
    let filter = AuditFilter {
        project_id: Some(PROJECT.into()),
        ..AuditFilter::default()
    };
    let count = |events: &[AuditEvent]| {
        events
            .iter()
            .filter(|stored| stored.action == AuditAction::IssueToken)
            .count()
    };
    let listed = store.list_audit(&filter, &everything()).await.unwrap();
    assert_eq!(count(&listed.items), 1, "a resent event is stored once");
    assert_eq!(
        store.purge_audit(now() - Duration::days(1)).await.unwrap(),
        1
    );
    let listed = store.list_audit(&filter, &everything()).await.unwrap();
    assert_eq!(count(&listed.items), 0);
    assert!(
        listed
            .items
            .windows(2)
            .all(|pair| pair[0].time >= pair[1].time),
        "newest first"
    );

    // A member that does not exist is not found, one that does is read.
    fixture.member("m", &["orders.read"]).await;
    assert!(store.get_member(PROJECT, "m").await.unwrap().is_some());
    let suspend = UpdateMember {
        state: Some(crate::MemberState::Suspended),
        ..UpdateMember::default()
    };
    fixture
        .registry
        .update_member(&manager(), PROJECT, "m", suspend)
        .await
        .unwrap();
    assert_eq!(
        store.get_member(PROJECT, "m").await.unwrap().unwrap().state,
        crate::MemberState::Suspended
    );
}

#[tokio::test]
async fn debug_output_shows_sizes_not_data() {
    let fixture = Fixture::new().await;
    fixture
        .create(&manager(), "app", "secret-looking-name", &["orders.read"])
        .await
        .unwrap();
    let shown = format!("{:?}", fixture.store);
    assert!(shown.contains("credentials: 1"), "{shown}");
    assert!(!shown.contains("secret-looking-name"), "{shown}");
}
