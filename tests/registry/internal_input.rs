//! What token issuers report through `UsageSink` is checked like public
//! input (finding 5 of issue 12): a use dated in the future, a bad address
//! or credential ID, or an oversized batch is refused naming the field, and
//! nothing of the batch is written.

use chrono::{Duration, Utc};
use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::usage_sink_client::UsageSinkClient;
use latchkey_tests::{Backend, Stack};
use tonic::Code;

use crate::support::{assert_refused, create_credential, create_project, new_credential};

fn used(credential_id: &str, seconds_ago: i64, ip: &str) -> pb::CredentialUse {
    let time = Utc::now() - Duration::seconds(seconds_ago);
    pb::CredentialUse {
        credential_id: credential_id.to_owned(),
        time: Some(prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        }),
        ip: ip.to_owned(),
    }
}

async fn last_use(stack: &Stack, credential_id: &str) -> (Option<prost_types::Timestamp>, String) {
    let credential = stack
        .registry
        .client()
        .get_credential(pb::GetCredentialRequest {
            credential_id: credential_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    (credential.last_used_time, credential.last_used_ip)
}

async fn reported_uses_are_bounded_and_never_from_the_future(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    create_project(&mut client, "acme").await;
    let (credential, _) = create_credential(&mut client, new_credential("acme", "alice")).await;
    let (other, _) = create_credential(&mut client, new_credential("acme", "bob")).await;
    let mut sink = UsageSinkClient::new(stack.registry.internal_channel());
    let id = credential.id.as_str();

    let bad = |second: pb::CredentialUse, field: &str| {
        (
            pb::RecordRequest {
                // A good use first: the refusal must take it down too.
                uses: vec![used(&other.id, 1, "10.0.0.1"), second],
                ..Default::default()
            },
            field.to_owned(),
        )
    };
    let year_2099 = pb::CredentialUse {
        time: Some(prost_types::Timestamp {
            seconds: 4_070_908_800,
            nanos: 0,
        }),
        ..used(id, 0, "6.6.6.6")
    };
    for (request, field) in [
        bad(year_2099, "uses[1].time"),
        bad(used(id, -120, "10.0.0.1"), "uses[1].time"),
        bad(
            pb::CredentialUse {
                time: None,
                ..used(id, 0, "10.0.0.1")
            },
            "uses[1].time",
        ),
        bad(used(id, 0, "6.6.6"), "uses[1].ip"),
        bad(
            used(id, 0, &format!("10.0.0.1{}", " ".repeat(100))),
            "uses[1].ip",
        ),
        bad(
            used("not-a-credential", 0, "10.0.0.1"),
            "uses[1].credential_id",
        ),
    ] {
        assert_refused(sink.record(request).await, Code::InvalidArgument, &field);
    }
    let too_many = pb::RecordRequest {
        uses: (0..=latchkey_registry::MAX_USES_PER_BATCH)
            .map(|_| used(id, 0, "10.0.0.1"))
            .collect(),
        ..Default::default()
    };
    assert_refused(
        sink.record(too_many).await,
        Code::InvalidArgument,
        "uses: at most",
    );
    for refused in [id, other.id.as_str()] {
        assert_eq!(
            last_use(&stack, refused).await,
            (None, String::new()),
            "a refused batch writes nothing"
        );
    }

    // A use a little ahead (clocks differ by a few seconds) is taken, and a
    // later true use still replaces it.
    sink.record(pb::RecordRequest {
        uses: vec![used(id, -20, "10.0.0.1")],
        ..Default::default()
    })
    .await
    .unwrap();
    let (ahead, _) = last_use(&stack, id).await;
    let later = used(id, -40, "10.0.0.2");
    sink.record(pb::RecordRequest {
        uses: vec![later.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    let (time, ip) = last_use(&stack, id).await;
    assert!(time.unwrap().seconds > ahead.unwrap().seconds);
    assert_eq!((time, ip.as_str()), (later.time, "10.0.0.2"));
}

on_both_backends!(reported_uses_are_bounded_and_never_from_the_future);
