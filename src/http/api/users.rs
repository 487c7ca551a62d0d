//! User administration (administrators and the owner).
//!
//! POST /api/v1/users/{id}/reset-mfa/

use super::Call;
use crate::error::ApiError;
use crate::http::reply::{self, Response};
use crate::store::audit::{self, Outcome};
use crate::store::users;

/// POST /api/v1/users/{id}/reset-mfa/: the user then logs in with the password alone.
pub async fn reset_mfa(call: Call<'_>) -> Result<Response, ApiError> {
    let target_id = call.id()?;
    let caller = call.authorized()?.principal().clone();
    let app = call.app;
    let target = app
        .auth
        .live
        .user(target_id)
        .filter(|u| u.organization_id == caller.organization_id)
        .ok_or(ApiError::NotFound)?;
    // An administrator cannot act on the owner: that would be a step up.
    if target.role > caller.role {
        return Err(ApiError::denied(
            "you cannot reset the MFA of a user whose role is above yours",
        ));
    }
    let mut entry = call.audit("mfa.reset", Outcome::Success);
    entry.target_type = Some("user");
    entry.target_id = Some(target_id);
    let updated = app
        .store
        .write(move |tx| {
            users::set_mfa_enabled(tx, target_id, false)?;
            audit::record(tx, &entry)?;
            users::get(tx, target_id)
        })
        .await?;
    app.auth.live.put_user(&updated);
    Ok(reply::no_content())
}
