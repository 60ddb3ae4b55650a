//! Tenants through a real tonic client: defaults, lifecycle, unique names, paging, and bad
//! input that names its field and writes nothing.

mod support;

use mfg_proto::{
    common::v1::Retention,
    tenant::v1::{self as pb},
};
use tonic::Code;

use support::*;

#[tokio::test]
async fn tenants_have_defaults_and_a_full_lifecycle() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;

    let acme = create_tenant(client, "acme").await;
    assert_eq!(acme.display_name, "acme");
    assert_eq!(acme.plan(), pb::Plan::Shared);
    assert_eq!(acme.state(), pb::TenantState::Active);
    assert_eq!(
        acme.retention,
        Some(Retention {
            hot_days: 30,
            warm_days: 365,
            cold_days: 2555
        })
    );
    assert_eq!(acme.limits.unwrap().max_machines, 100);
    assert!(acme.create_time.is_some() && acme.delete_time.is_none());

    let got = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(got, acme);

    let updated = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant {
                display_name: "ACME Stamping".to_owned(),
                plan: pb::Plan::Dedicated.into(),
                name: "ignored-because-not-in-mask".to_owned(),
                limits: Some(pb::Limits {
                    max_machines: 3,
                    ..Default::default()
                }),
                retention: Some(Retention {
                    hot_days: 7,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&[
                "display_name",
                "plan",
                "limits.max_machines",
                "retention.hot_days",
            ]),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(updated.display_name, "ACME Stamping");
    assert_eq!(updated.name, "acme");
    assert_eq!(updated.plan(), pb::Plan::Dedicated);
    assert_eq!(updated.limits.unwrap().max_machines, 3);
    assert_eq!(
        updated.limits.unwrap().ingest_readings_per_second,
        5_000,
        "untouched"
    );
    assert_eq!(updated.retention.unwrap().hot_days, 7);
    assert_eq!(updated.retention.unwrap().warm_days, 365);

    let deleted = client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: acme.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(deleted.state(), pb::TenantState::Deleted);
    assert!(deleted.delete_time.is_some());

    let listed = client
        .list_tenants(pb::ListTenantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.tenants.is_empty(),
        "deleted tenants are hidden by default"
    );
    let listed = client
        .list_tenants(pb::ListTenantsRequest {
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.tenants.len(), 1);

    let update_deleted = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant::default()),
            update_mask: mask(&["labels"]),
        })
        .await
        .unwrap_err();
    assert_eq!(update_deleted.code(), Code::FailedPrecondition);
    service.stop().await;
}

#[tokio::test]
async fn hot_retention_rounds_up_to_its_class() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;

    let mut request = new_tenant("acme");
    request.tenant.as_mut().unwrap().retention = Some(Retention {
        hot_days: 10,
        ..Default::default()
    });
    let acme = client.create_tenant(request).await.unwrap().into_inner();
    assert_eq!(acme.tenant.unwrap().retention.unwrap().hot_days, 14);

    let mut request = new_tenant("globex");
    request.tenant.as_mut().unwrap().retention = Some(Retention {
        hot_days: 10,
        warm_days: 0,
        cold_days: 10,
    });
    let refused = client.create_tenant(request).await.unwrap_err();
    assert_eq!(violated_fields(&refused), ["tenant.retention.cold_days"]);
    assert!(
        refused.message().contains("14 days, its retention class"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn names_are_unique_forever() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let acme = create_tenant(client, "acme").await;
    let again = client.create_tenant(new_tenant("acme")).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().contains("acme"), "{}", again.message());
    client
        .delete_tenant(pb::DeleteTenantRequest {
            tenant_id: acme.id,
            ..Default::default()
        })
        .await
        .unwrap();
    let after_delete = client.create_tenant(new_tenant("acme")).await.unwrap_err();
    assert_eq!(after_delete.code(), Code::AlreadyExists);
    service.stop().await;
}

#[tokio::test]
async fn listing_pages_through_every_tenant_once() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(create_tenant(client, &format!("plant-{i}")).await.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_tenants(pb::ListTenantsRequest {
                page_size: 3,
                page_token: token.clone(),
                show_deleted: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.tenants.len() <= 3);
        seen.extend(page.tenants.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, created);
    service.stop().await;
}

#[tokio::test]
async fn changes_are_listed_after_a_revision() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(create_tenant(client, &format!("plant-{i}")).await);
    }
    let revisions: Vec<i64> = created.iter().map(|t| t.revision).collect();
    assert!(revisions.is_sorted() && revisions[0] > 0, "{revisions:?}");
    let mut changes = async |after_revision: i64, page_size: i32| {
        let request = pb::ListTenantChangesRequest {
            after_revision,
            page_size,
        };
        let page = client.list_tenant_changes(request).await?.into_inner();
        let ids: Vec<String> = page.tenants.into_iter().map(|t| t.id).collect();
        Ok::<_, tonic::Status>(ids)
    };
    let ids = |tenants: &[&pb::Tenant]| tenants.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    let [first, second, third] = [&created[0], &created[1], &created[2]];
    assert_eq!(changes(0, 0).await.unwrap(), ids(&[first, second, third]));
    assert_eq!(changes(0, 1).await.unwrap(), ids(&[first]));
    assert_eq!(
        changes(revisions[0], 0).await.unwrap(),
        ids(&[second, third])
    );
    assert_eq!(
        changes(revisions[2], 0).await.unwrap(),
        Vec::<String>::new()
    );

    let bad = changes(-1, 0).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("after_revision"), "{bad:?}");
    let bad = changes(0, -1).await.unwrap_err();
    assert!(bad.message().contains("page_size"), "{bad:?}");

    let renamed = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: first.id.clone(),
            tenant: Some(pb::Tenant {
                display_name: "Plant zero".to_owned(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["display_name".to_owned()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert!(renamed.revision > revisions[2]);
    let listed = client
        .list_tenant_changes(pb::ListTenantChangesRequest {
            after_revision: revisions[2],
            page_size: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .tenants;
    let listed: Vec<_> = listed.iter().map(|t| (&t.id, t.revision)).collect();
    assert_eq!(listed, [(&renamed.id, renamed.revision)]);
    service.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let mut service = Service::sqlite().await;
    let client = &mut service.client;

    let missing = client
        .create_tenant(pb::CreateTenantRequest { tenant: None })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&missing), ["tenant"]);

    let bad_name = client
        .create_tenant(new_tenant("Not A Slug"))
        .await
        .unwrap_err();
    assert_eq!(bad_name.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad_name), ["tenant.name"]);

    let mut several = new_tenant("acme");
    let tenant = several.tenant.as_mut().unwrap();
    tenant.labels.insert("Bad Key".to_owned(), "x".to_owned());
    tenant.monthly_budget_usd = f64::NAN;
    tenant.retention = Some(Retention {
        hot_days: 90,
        warm_days: 0,
        cold_days: 30,
    });
    let several = client.create_tenant(several).await.unwrap_err();
    assert_eq!(
        violated_fields(&several),
        [
            "tenant.labels",
            "tenant.retention.cold_days",
            "tenant.monthly_budget_usd"
        ]
    );

    let listed = client
        .list_tenants(pb::ListTenantsRequest {
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tenants.is_empty(), "failed requests wrote nothing");

    let bad_id = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: "acme".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (bad_id.code(), violated_fields(&bad_id)),
        (Code::InvalidArgument, vec!["tenant_id".to_owned()])
    );
    let unknown = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let acme = create_tenant(client, "acme").await;
    let no_mask = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant::default()),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_mask), ["update_mask"]);
    let immutable = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant::default()),
            update_mask: mask(&["name", "color"]),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&immutable), ["update_mask", "update_mask"]);
    let to_deleted = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant {
                state: pb::TenantState::Deleted.into(),
                ..Default::default()
            }),
            update_mask: mask(&["state"]),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&to_deleted), ["tenant.state"]);
    let zero_limit = client
        .update_tenant(pb::UpdateTenantRequest {
            tenant_id: acme.id.clone(),
            tenant: Some(pb::Tenant {
                retention: Some(Retention {
                    hot_days: 99_999,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["retention.hot_days"]),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&zero_limit),
        ["tenant.retention.hot_days", "tenant.retention.cold_days"]
    );
    let unchanged = client
        .get_tenant(pb::GetTenantRequest {
            tenant_id: acme.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unchanged.tenant.unwrap(),
        acme,
        "failed updates wrote nothing"
    );

    let negative = client
        .list_tenants(pb::ListTenantsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&negative), ["page_size"]);
    let forged = client
        .list_tenants(pb::ListTenantsRequest {
            page_token: "bm9wZQ".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&forged), ["page_token"]);
    service.stop().await;
}

/// A tenant handed to the provisioning service is provisioning until its run's outcome is
/// recorded: a failure with its reason, then a success, which no later run's outcome undoes.
#[tokio::test]
async fn onboarding_outcomes_move_a_new_tenant_to_active() {
    let mut service = Service::handing_off().await;
    let client = &mut service.client;
    let acme = create_tenant(client, "acme").await;
    assert_eq!(acme.state(), pb::TenantState::Provisioning);
    let outcome = |run: &str, succeeded: bool, error: &str| {
        let mut client = client.clone();
        let request = pb::SetProvisioningOutcomeRequest {
            tenant_id: acme.id.clone(),
            run_id: run.to_owned(),
            succeeded,
            error: error.to_owned(),
        };
        async move {
            client
                .set_provisioning_outcome(request)
                .await
                .unwrap()
                .into_inner()
                .tenant
                .unwrap()
        }
    };
    let failed = outcome(
        "run-1",
        false,
        "budget: the cost service answered Unavailable",
    )
    .await;
    assert_eq!(failed.state(), pb::TenantState::ProvisioningFailed);
    assert_eq!(
        failed.provisioning_error,
        "budget: the cost service answered Unavailable"
    );
    assert_eq!(failed.provisioning_run_id, "run-1");
    let active = outcome("run-1", true, "").await;
    assert_eq!(active.state(), pb::TenantState::Active);
    assert_eq!(active.provisioning_error, "");
    let later = outcome("run-2", false, "archive: refused").await;
    assert_eq!(
        later.state(),
        pb::TenantState::Active,
        "onboarded stays active"
    );
    assert_eq!(later.provisioning_run_id, "run-2");

    let missing = client
        .set_provisioning_outcome(pb::SetProvisioningOutcomeRequest {
            tenant_id: acme.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains("run_id"), "{missing:?}");
    service.stop().await;
}
