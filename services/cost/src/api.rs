//! The gRPC adapter of the cost service: usage metering, the price book, per-tenant cost with
//! shared costs split, budgets, forecasts and recommendations.
//!
//! Built so far: `RecordUsage`, `GetPriceBook` and `UpdatePriceBook`. The other RPCs answer
//! UNIMPLEMENTED through the generated default bodies, never a made-up result. Access is
//! checked before a call reaches here, by the auth layer, from each RPC's option in the
//! contract.

pub mod convert;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use mfg_common::clock::SharedClock;
use mfg_proto::cost::v1::{self as pb, cost_service_server::CostService};
use tonic::{Request, Response, Status};

use crate::{error::CostError, store::CostStore};

/// What the API works on once the database is ready.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The ledger and the price books.
    pub store: Arc<dyn CostStore>,
    /// The clock.
    pub clock: SharedClock,
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
    /// The time, to the microsecond, as the store keeps it.
    fn now(&self) -> DateTime<Utc> {
        let now: DateTime<Utc> = self.clock.system_now().into();
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }
}

#[tonic::async_trait]
impl CostService for CostApi {
    async fn record_usage(
        &self,
        request: Request<pb::RecordUsageRequest>,
    ) -> Result<Response<pb::RecordUsageResponse>, Status> {
        let ready = self.ready()?;
        let records = convert::usage_records(request.into_inner().records)?;
        let counted = ready.store.record_usage(&records, ready.now()).await?;
        Ok(Response::new(pb::RecordUsageResponse {
            recorded: counted.recorded,
            duplicates: counted.duplicates,
        }))
    }

    async fn get_price_book(
        &self,
        _request: Request<pb::GetPriceBookRequest>,
    ) -> Result<Response<pb::GetPriceBookResponse>, Status> {
        let ready = self.ready()?;
        let history = ready.store.price_history().await?;
        let (since, book) = history.in_force(ready.now());
        Ok(Response::new(pb::GetPriceBookResponse {
            price_book: Some(convert::price_book(book, since)),
        }))
    }

    async fn update_price_book(
        &self,
        request: Request<pb::UpdatePriceBookRequest>,
    ) -> Result<Response<pb::UpdatePriceBookResponse>, Status> {
        let ready = self.ready()?;
        let request = request.into_inner();
        let now = ready.now();
        let history = ready.store.price_history().await?;
        let book =
            convert::price_book_update(request.price_book, request.update_mask, history.at(now))?;
        ready.store.change_prices(now, &book).await?;
        Ok(Response::new(pb::UpdatePriceBookResponse {
            price_book: Some(convert::price_book(&book, Some(now))),
        }))
    }
}
