//! The caller's own login sessions.
//!
//! GET    /api/auth/sessions/
//! DELETE /api/auth/sessions/{id}/

use serde::Serialize;
use utoipa::ToSchema;

use super::{Call, PageRequest};
use crate::domain::{Id, Timestamp};
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::ops::Caller;
use crate::store::sessions::{self, Session};

#[derive(Serialize, ToSchema)]
pub(super) struct SessionDto {
    id: Id,
    created_at: Timestamp,
    last_seen_at: Timestamp,
    expires_at: Timestamp,
    ip: Option<String>,
    user_agent: Option<String>,
    current: bool,
}

impl SessionDto {
    fn new(s: Session, current: Option<Id>) -> Self {
        SessionDto {
            id: s.id,
            created_at: Timestamp(s.created_at),
            last_seen_at: Timestamp(s.last_seen_at),
            expires_at: Timestamp(s.expires_at),
            ip: s.ip,
            user_agent: s.user_agent,
            current: Some(s.id) == current,
        }
    }
}

/// GET /api/auth/sessions/
pub async fn list(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let page = PageRequest::from(call.ctx)?;
    let caller = caller.principal().clone();
    let user_id = caller.user_id;
    let all = call
        .app
        .store
        .read(move |c| sessions::live_for_user(c, user_id))
        .await?;
    let count = all.len() as u64;
    let results = all
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.size as usize)
        .map(|s| SessionDto::new(s, caller.session_id))
        .collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// DELETE /api/auth/sessions/{id}/
pub async fn revoke(call: Call<'_>, caller: Caller) -> Result<Response, ApiError> {
    let sid = call.id()?;
    let session = call.app.store.read(move |c| sessions::get(c, sid)).await?;
    // Another user's session does not exist as far as this caller can tell.
    if session.user_id != caller.user_id() || session.revoked_at.is_some() {
        return Err(ApiError::NotFound);
    }
    crate::ops::sessions::end(call.app, &caller.actor(), sid, "revoked").await?;
    Ok(reply::no_content())
}
