//! Data sources of the caller's organization: what reports are generated from.
//!
//! GET|POST        /api/v1/data-sources/           GET|DELETE /api/v1/data-sources/{id}/

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{org_page, text, Call, Sortable};
use crate::domain::{Id, Timestamp};
use crate::error::{ApiError, FieldErrors};
use crate::http::reply::{self, Response};
use crate::ops::content;
use crate::ops::Caller;
use crate::store::data_sources::{self, DataSource};

const SOURCE_TYPES: [&str; 6] = [
    "file",
    "database",
    "api",
    "google_analytics",
    "google_sheets",
    "bigquery_query",
];

#[derive(Serialize, ToSchema)]
pub(super) struct DataSourceDto {
    id: Id,
    name: String,
    source_type: String,
    status: String,
    created_by: Option<Id>,
    created_at: Timestamp,
}

impl From<DataSource> for DataSourceDto {
    fn from(d: DataSource) -> Self {
        DataSourceDto {
            id: d.id,
            name: d.name,
            source_type: d.source_type,
            status: d.status,
            created_by: d.created_by,
            created_at: Timestamp(d.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDataSource {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    source_type: String,
}

/// The fields the list may be ordered by (`?ordering=`), newest first without one.
pub(super) const SORTABLE: Sortable = Sortable::newest_first(
    "the name",
    &[
        ("name", "LOWER(name)"),
        ("source_type", "source_type"),
        ("status", "status"),
        ("created_at", "created_at"),
    ],
);

/// GET /api/v1/data-sources/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    org_page::<_, DataSourceDto, _>(
        call,
        caller,
        &SORTABLE,
        super::Reads::OneStatement,
        data_sources::list,
    )
    .await
}

/// GET /api/v1/data-sources/{id}/
pub async fn get(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let (org, id) = (caller.organization_id(), call.id()?);
    let d = call
        .app
        .store
        .read(move |c| data_sources::get(c, org, id))
        .await?;
    Ok(reply::ok(&DataSourceDto::from(d)))
}

/// POST /api/v1/data-sources/
pub async fn create(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let request: NewDataSource = call.json()?;
    let mut errors = FieldErrors::new();
    let name = text(&mut errors, "name", &request.name, 1, 100);
    if !SOURCE_TYPES.contains(&request.source_type.as_str()) {
        errors.insert(
            "source_type".into(),
            vec![format!("must be one of {}", SOURCE_TYPES.join(", "))],
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let d = content::create_data_source(call.app, &caller, name, request.source_type).await?;
    Ok(reply::created(&DataSourceDto::from(d)))
}

/// DELETE /api/v1/data-sources/{id}/
pub async fn delete(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    content::delete_data_source(call.app, &caller, call.id()?).await?;
    Ok(reply::no_content())
}
