//! Lists newest first as well as oldest first (AIP-132 `order_by`), with
//! paging correct in both orders and page tokens bound to their order.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use tonic::Code;

use crate::support::{Client, assert_refused, create_credential, create_project, new_credential};

/// Every page of `project_id`'s credentials in `order_by`, `size` at a time.
async fn pages(
    client: &mut Client,
    project_id: &str,
    order_by: &str,
    size: i32,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_credentials(pb::ListCredentialsRequest {
                project_id: project_id.to_owned(),
                order_by: order_by.to_owned(),
                page_size: size,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list credentials")
            .into_inner();
        pages.push(page.credentials.into_iter().map(|c| c.id).collect());
        if page.next_page_token.is_empty() {
            return pages;
        }
        page_token = page.next_page_token;
    }
}

async fn credentials_list_newest_first_across_pages(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    create_project(&mut client, "acme").await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(
            create_credential(&mut client, new_credential("acme", "alice"))
                .await
                .0
                .id,
        );
    }
    let mut newest_first = created.clone();
    newest_first.reverse();

    let oldest = pages(&mut client, "acme", "", 2).await;
    assert_eq!(oldest.len(), 3);
    assert_eq!(oldest.concat(), created);
    assert_eq!(
        pages(&mut client, "acme", "create_time", 2).await.concat(),
        created
    );
    let newest = pages(&mut client, "acme", "create_time desc", 2).await;
    assert_eq!(newest.len(), 3);
    assert_eq!(newest.concat(), newest_first);
    assert_eq!(
        pages(&mut client, "acme", "createTime desc", 4)
            .await
            .concat(),
        newest_first
    );

    // A page token of one order is refused in the other.
    let first = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "acme".into(),
            order_by: "create_time desc".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let replayed = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "acme".into(),
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await;
    assert_refused(replayed, Code::InvalidArgument, "page_token");

    for bad in ["name", "create_time descending", "update_time desc"] {
        let refused = client
            .list_credentials(pb::ListCredentialsRequest {
                project_id: "acme".into(),
                order_by: bad.into(),
                ..Default::default()
            })
            .await;
        assert_refused(refused, Code::InvalidArgument, "order_by: ");
    }
}

async fn projects_list_newest_first_across_pages(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    // The bootstrap created "admin" first.
    let mut created = vec!["admin".to_owned()];
    for id in ["p-one", "p-two", "p-three"] {
        create_project(&mut client, id).await;
        created.push(id.to_owned());
    }
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_projects(pb::ListProjectsRequest {
                page_size: 3,
                page_token,
                order_by: "create_time desc".into(),
            })
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.projects.into_iter().map(|p| p.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    created.reverse();
    assert_eq!(listed, created);
    let refused = client
        .list_projects(pb::ListProjectsRequest {
            order_by: "id".into(),
            ..Default::default()
        })
        .await;
    assert_refused(refused, Code::InvalidArgument, "order_by: ");
}

on_both_backends!(
    credentials_list_newest_first_across_pages,
    projects_list_newest_first_across_pages,
);
