//! `GET /api/v1/reports/acknowledgement`: the acknowledgement report of
//! the notifications created in a period (see `crate::report`).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::{ApiError, Params};
use super::period::PeriodQuery;
use crate::hub::Hub;
use crate::report::Report;

#[derive(Deserialize)]
pub struct ReportQuery {
    #[serde(flatten)]
    period: PeriodQuery,
    severity: Option<String>,
}

pub async fn acknowledgement(
    State(hub): State<Arc<Hub>>,
    Params(q): Params<ReportQuery>,
) -> Result<Json<Report>, ApiError> {
    let period = q.period.resolve(hub.now())?;
    let severity = q.severity.as_deref().filter(|s| !s.is_empty());
    let report = hub
        .acknowledgement_report(period.from, period.to, severity)
        .await?;
    Ok(Json(report))
}
