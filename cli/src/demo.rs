//! `mfg up --demo`: the brief's scenario streaming in-process, with a line for each alert that
//! opens or resolves, so a newcomer sees the platform work at once.

use std::io::Write as _;

use mfg_common::shutdown::CancellationToken;

use crate::{simulate::SimTenant, up::Addresses};

mod rules;

/// Streams the brief's scenario until `shutdown`. A failure of the demo is logged, not fatal:
/// the platform stays up.
pub async fn run(addresses: Addresses, shutdown: CancellationToken) -> anyhow::Result<()> {
    use mfg_proto::tenant::v1::tenant_service_client::TenantServiceClient;

    let run = async {
        crate::platform::ready(&addresses, std::time::Duration::from_secs(60)).await?;
        let scenario = crate::simulate::Scenario::demo();
        rules::set_onboarding_template(&addresses).await?;
        let mut tenants = TenantServiceClient::new(
            mfg_common::grpc::lazy_channel(&format!("http://{}", addresses.tenant))?
                .with_bearer(addresses.operator_token.expose())?,
        );
        let prepared = crate::simulate::prepare(&mut tenants, &scenario).await?;
        set_platform_target(&addresses).await?;
        rules::give_tenants_without_rules(&addresses, &prepared).await?;
        for tenant in &prepared {
            tokio::spawn(announce_alerts(
                addresses.clone(),
                tenant.clone(),
                shutdown.clone(),
            ));
        }
        {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "demo: {} tenants × {} machines × {} metrics at 1 Hz ({:.0} readings/s), for example",
                scenario.tenants.len(),
                scenario.machines,
                scenario.metrics,
                scenario.rate()
            )?;
            for tenant in &prepared {
                writeln!(
                    out,
                    "  curl -H \"Authorization: Bearer $TOKEN\" http://{}/v1/tenants/{}/machines/{}/latest   # {}",
                    addresses.gateway, tenant.id, tenant.machines[0], tenant.name
                )?;
            }
            if let Some(tenant) = prepared.first() {
                writeln!(
                    out,
                    "  curl -N -H \"Authorization: Bearer $TOKEN\" http://{}/v1/tenants/{}/alert-events   # its alerts, live (SSE)",
                    addresses.gateway, tenant.id
                )?;
            }
            writeln!(
                out,
                "  curl -H \"Authorization: Bearer $TOKEN\" http://{}/v1/cost   # each tenant's month so far and forecast, the platform's against its ${DEMO_TARGET_USD:.0} target",
                addresses.gateway
            )?;
        }
        let stats = std::sync::Arc::new(mfg_uplink::UplinkStats::default());
        tokio::spawn(crate::simulate::progress(
            stats.clone(),
            std::time::Duration::from_secs(10),
            "demo ",
            false,
            shutdown.clone(),
        ));
        crate::simulate::stream(
            &addresses.storage.to_string(),
            &prepared,
            &scenario,
            stats,
            shutdown.clone(),
            std::time::Duration::from_secs(5),
        )
        .await
    };
    if let Err(error) = run.await {
        tracing::error!(error = %format!("{error:#}"), "the demo stopped");
    }
    Ok(())
}

/// The platform's monthly cost target in the brief's scenario.
pub const DEMO_TARGET_USD: f64 = 50_000.0;

/// Gives the platform the scenario's monthly cost target, unless the operator set one.
async fn set_platform_target(addresses: &Addresses) -> anyhow::Result<()> {
    use mfg_proto::cost::v1::{self as pb, cost_service_client::CostServiceClient};

    let mut cost = CostServiceClient::new(
        mfg_common::grpc::lazy_channel(&format!("http://{}", addresses.cost))?
            .with_bearer(addresses.operator_token.expose())?,
    );
    let book = cost
        .get_price_book(pb::GetPriceBookRequest {})
        .await?
        .into_inner()
        .price_book
        .unwrap_or_default();
    if book.platform_monthly_target_usd > 0.0 {
        return Ok(());
    }
    cost.update_price_book(pb::UpdatePriceBookRequest {
        price_book: Some(pb::PriceBook {
            platform_monthly_target_usd: DEMO_TARGET_USD,
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask {
            paths: vec!["platform_monthly_target_usd".to_owned()],
        }),
    })
    .await?;
    Ok(())
}

/// Prints a line for each alert of `tenant` that opens or resolves, until `shutdown`.
async fn announce_alerts(addresses: Addresses, tenant: SimTenant, shutdown: CancellationToken) {
    use mfg_proto::storage::v1::{
        self as pb, alert_service_client::AlertServiceClient,
        subscribe_alerts_request::Message as Inbound,
        subscribe_alerts_response::Message as Outbound,
    };
    let Ok(channel) = mfg_common::grpc::lazy_channel(&format!("http://{}", addresses.storage))
    else {
        return;
    };
    let Ok(channel) = channel.with_bearer(addresses.operator_token.expose()) else {
        return;
    };
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    let subscribe = pb::SubscribeAlertsRequest {
        message: Some(Inbound::Subscribe(pb::AlertSubscription {
            tenant_id: tenant.id.clone(),
            ..Default::default()
        })),
    };
    if requests.send(subscribe).await.is_err() {
        return;
    }
    let stream = AlertServiceClient::new(channel)
        .subscribe_alerts(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await;
    let Ok(stream) = stream else { return };
    let mut events = stream.into_inner();
    loop {
        let message = tokio::select! {
            message = events.message() => message,
            () = shutdown.cancelled() => return,
        };
        let Ok(Some(pb::SubscribeAlertsResponse {
            message: Some(Outbound::Event(event)),
        })) = message
        else {
            if matches!(message, Ok(None) | Err(_)) {
                return;
            }
            continue;
        };
        let Some(alert) = event.alert else { continue };
        let what = match pb::AlertEventType::try_from(event.r#type) {
            Ok(pb::AlertEventType::Opened) => "opened  ",
            Ok(pb::AlertEventType::Resolved) => "resolved",
            _ => continue,
        };
        let severity = pb::Severity::try_from(alert.severity)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("SEVERITY_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stdout(),
            "demo: alert {what} {}  {} {} = {:.1} ({severity})",
            tenant.name,
            alert.machine_id,
            alert.metric,
            alert.last_value,
        );
    }
}
