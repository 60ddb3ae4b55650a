//! The gRPC adapter of the cost service: usage metering, the price book, per-tenant cost with
//! shared costs split, budgets, forecasts and recommendations.
//!
//! Every RPC of the contract is built. Access is checked before a call reaches here, by the
//! auth layer, from each RPC's option in the contract.

pub mod budgets;
pub mod convert;
pub mod reports;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use mfg_common::audit::Asker;
use mfg_common::clock::SharedClock;
use mfg_proto::cost::v1::{self as pb, cost_service_server::CostService};
use tonic::{Request, Response, Status};

use crate::{
    costing::Costing, domain::budget::DEFAULT_THRESHOLDS, error::CostError, forecasts::Forecasts,
    store::CostStore, tenants::Directory,
};

/// How many times an update of the price book is tried when other updates keep coming first.
const PRICE_BOOK_ATTEMPTS: usize = 5;

/// What the API works on once the database is ready.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Reports, over the ledger and the tenants, with the summaries of recent periods.
    pub costing: Arc<Costing>,
    /// The month's forecasts, with the days that have settled.
    pub forecasts: Arc<Forecasts>,
    /// The recommendations, from the storage service's facts of usage.
    pub recommender: crate::recommendations::Recommender,
    /// The clock.
    pub clock: SharedClock,
    /// Records the changes of budgets and the price book.
    pub auditor: mfg_common::audit::Auditor,
}

/// The API's state, set once the database is ready.
pub type ReadyCost = Arc<OnceLock<Ready>>;

/// Serves `mfg.cost.v1.CostService`.
#[derive(Debug, Clone)]
pub struct CostApi {
    ready: ReadyCost,
}

impl CostApi {
    /// Creates the adapter over a state that becomes ready later.
    pub fn new(ready: ReadyCost) -> Self {
        Self { ready }
    }

    fn ready(&self) -> Result<&Ready, CostError> {
        self.ready.get().ok_or(CostError::NotReady)
    }
}

impl Ready {
    /// The ledger and the price books.
    pub fn store(&self) -> &dyn CostStore {
        self.costing.store()
    }

    /// The tenants, with their plans and budgets.
    pub fn tenants(&self) -> &Directory {
        self.costing.tenants()
    }

    /// The tenant of a request's `tenant_id`, NOT_FOUND when there is none.
    async fn tenant(&self, id: &str) -> Result<crate::tenants::Tenant, CostError> {
        let id = reports::tenant_id(id)?;
        self.tenants()
            .get(id)
            .await?
            .ok_or_else(|| CostError::TenantNotFound(id.to_string()))
    }

    /// The forecasts of the current month.
    async fn month_forecasts(
        &self,
        version: i64,
    ) -> Result<Arc<crate::forecasts::MonthForecasts>, CostError> {
        self.forecasts
            .of_month(&self.costing, self.now(), version)
            .await
    }

    /// The time, to the microsecond, as the store keeps it.
    fn now(&self) -> DateTime<Utc> {
        mfg_common::clock::micros(self.clock.system_now())
    }
}

#[tonic::async_trait]
impl CostService for CostApi {
    async fn record_usage(
        &self,
        request: Request<pb::RecordUsageRequest>,
    ) -> Result<Response<pb::RecordUsageResponse>, Status> {
        let ready = self.ready()?;
        let now = ready.now();
        let request = request.into_inner();
        let batch = convert::batch_key(&request.batch_key)?;
        let records = convert::usage_records(request.records, batch.is_some(), now)?;
        let counted = match batch {
            Some(key) => {
                let usage: Vec<_> = records.iter().map(|r| r.usage.clone()).collect();
                ready.store().record_batch(key, &usage, now).await?
            }
            None => ready.store().record_usage(&records, now).await?,
        };
        // Usage of a period taken as settled (a backfill, or a flush held up past an hour)
        // changes the summaries kept here; the settled buckets and days follow the ledger's
        // version, which it moved.
        if counted.recorded > 0
            && records
                .iter()
                .any(|r| r.usage.start < now - crate::forecasts::SETTLED)
        {
            ready.costing.forget();
        }
        Ok(Response::new(pb::RecordUsageResponse {
            recorded: counted.recorded,
            duplicates: counted.duplicates,
        }))
    }

    async fn get_tenant_cost(
        &self,
        request: Request<pb::GetTenantCostRequest>,
    ) -> Result<Response<pb::GetTenantCostResponse>, Status> {
        let ready = self.ready()?;
        let request = request.into_inner();
        let tenant = ready.tenant(&request.tenant_id).await?;
        let period = reports::period(
            request.start_time.as_ref(),
            request.end_time.as_ref(),
            ready.now(),
        )?;
        let id = tenant.id;
        let version = ready.costing.version().await?;
        let report = ready.costing.tenant(tenant, period, version).await?;
        let month = ready.month_forecasts(version).await?;
        Ok(Response::new(pb::GetTenantCostResponse {
            report: Some(pb::CostReport {
                forecast: reports::forecast_of(&month, id),
                ..reports::tenant_report(&report)
            }),
        }))
    }

    async fn get_cost_summary(
        &self,
        request: Request<pb::GetCostSummaryRequest>,
    ) -> Result<Response<pb::GetCostSummaryResponse>, Status> {
        let ready = self.ready()?;
        let request = request.into_inner();
        let period = reports::period(
            request.start_time.as_ref(),
            request.end_time.as_ref(),
            ready.now(),
        )?;
        let version = ready.costing.version().await?;
        let costed = ready.costing.summary_at(period, version).await?;
        let month = ready.month_forecasts(version).await?;
        Ok(Response::new(reports::summary(&costed, &month)))
    }

    async fn get_budget(
        &self,
        request: Request<pb::GetBudgetRequest>,
    ) -> Result<Response<pb::GetBudgetResponse>, Status> {
        let ready = self.ready()?;
        let tenant = ready.tenant(&request.get_ref().tenant_id).await?;
        let set = ready.store().budget_thresholds(tenant.id).await?;
        Ok(Response::new(pb::GetBudgetResponse {
            budget: Some(budgets::budget(&tenant, set)),
        }))
    }

    async fn update_budget(
        &self,
        request: Request<pb::UpdateBudgetRequest>,
    ) -> Result<Response<pb::UpdateBudgetResponse>, Status> {
        let ready = self.ready()?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        let mut tenant = ready.tenant(&request.tenant_id).await?;
        let change = budgets::budget_change(request.budget, request.update_mask)?;
        // The limit is the tenant's, in the tenant service; the change is recorded here once
        // it holds, with the thresholds.
        if let Some(usd) = change.monthly_limit_usd {
            tenant = ready
                .tenants()
                .set_monthly_budget(tenant.id, usd, &asker)
                .await?
                .ok_or_else(|| CostError::TenantNotFound(tenant.id.to_string()))?;
        }
        let resource = format!("tenants/{}/budget", tenant.id);
        let audit = ready.auditor.record(
            &asker,
            Some(tenant.id),
            "budget.update",
            resource,
            ready.now(),
        );
        ready
            .store()
            .set_budget(
                tenant.id,
                change.thresholds.as_deref(),
                ready.now(),
                audit.as_ref(),
            )
            .await?;
        ready.auditor.recorded();
        let set = ready.store().budget_thresholds(tenant.id).await?;
        Ok(Response::new(pb::UpdateBudgetResponse {
            budget: Some(budgets::budget(&tenant, set)),
        }))
    }

    async fn delete_tenant_costs(
        &self,
        request: Request<pb::DeleteTenantCostsRequest>,
    ) -> Result<Response<pb::DeleteTenantCostsResponse>, Status> {
        let ready = self.ready()?;
        let id = reports::tenant_id(&request.get_ref().tenant_id)?;
        // Asked of the tenant service now: the snapshot may be older than the deletion.
        ready.tenants().refresh().await?;
        let tenant = ready.tenant(&id.to_string()).await?;
        if tenant.deleted.is_none() {
            return Err(CostError::NotDeleted(id.to_string()).into());
        }
        let usage_rows_deleted = ready.store().forget_tenant(id, ready.now()).await?;
        ready.costing.forget();
        tracing::info!(tenant = %id, usage_rows_deleted, "an offboarded tenant's costs deleted");
        Ok(Response::new(pb::DeleteTenantCostsResponse {
            usage_rows_deleted,
        }))
    }

    async fn get_cost_forecast(
        &self,
        request: Request<pb::GetCostForecastRequest>,
    ) -> Result<Response<pb::GetCostForecastResponse>, Status> {
        let ready = self.ready()?;
        let tenant = ready.tenant(&request.get_ref().tenant_id).await?;
        let version = ready.costing.version().await?;
        let month = ready.month_forecasts(version).await?;
        let thresholds = ready
            .store()
            .budget_thresholds(tenant.id)
            .await?
            .map_or_else(|| DEFAULT_THRESHOLDS.to_vec(), |(t, _)| t);
        Ok(Response::new(reports::forecast_response(
            &month,
            &tenant,
            &thresholds,
        )))
    }

    async fn get_price_book(
        &self,
        _request: Request<pb::GetPriceBookRequest>,
    ) -> Result<Response<pb::GetPriceBookResponse>, Status> {
        let ready = self.ready()?;
        let history = ready.store().price_history().await?;
        let (since, book) = history.latest();
        Ok(Response::new(pb::GetPriceBookResponse {
            price_book: Some(convert::price_book(book, since)),
        }))
    }

    async fn update_price_book(
        &self,
        request: Request<pb::UpdatePriceBookRequest>,
    ) -> Result<Response<pb::UpdatePriceBookResponse>, Status> {
        let ready = self.ready()?;
        let asker = Asker::of(&request)?;
        let request = request.into_inner();
        for _ in 0..PRICE_BOOK_ATTEMPTS {
            let history = ready.store().price_history().await?;
            let (replaces, current) = history.latest();
            // A change takes effect now, and never at or before the one it replaces.
            let from = replaces.map_or(ready.now(), |r| {
                ready.now().max(r + chrono::Duration::microseconds(1))
            });
            let book = convert::price_book_update(
                request.price_book.clone(),
                request.update_mask.clone(),
                current,
            )?;
            let audit = ready.auditor.record(
                &asker,
                None,
                "price_book.update",
                "price-book".to_owned(),
                ready.now(),
            );
            let changed = ready
                .store()
                .change_prices(from, replaces, &book, audit.as_ref());
            if changed.await? {
                ready.auditor.recorded();
                ready.costing.forget();
                return Ok(Response::new(pb::UpdatePriceBookResponse {
                    price_book: Some(convert::price_book(&book, Some(from))),
                }));
            }
        }
        Err(Status::aborted(
            "the price book kept changing under this update; send it again",
        ))
    }

    async fn list_recommendations(
        &self,
        request: Request<pb::ListRecommendationsRequest>,
    ) -> Result<Response<pb::ListRecommendationsResponse>, Status> {
        let ready = self.ready()?;
        let tenant = ready.tenant(&request.get_ref().tenant_id).await?;
        let found = ready.recommender.recommend(ready, &tenant).await?;
        Ok(Response::new(pb::ListRecommendationsResponse {
            recommendations: found.into_iter().map(convert::recommendation).collect(),
        }))
    }
}
