//! `ApiError`: the one table from what went wrong to (status, `error` code, message).
//! It knows nothing of warp; `http::reply` turns it into a response.

use std::collections::BTreeMap;

use crate::store::StoreError;

/// Field name -> what is wrong with it, for `400 invalid`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Every error a client can see. The message is safe to send; causes are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid {
        message: String,
        errors: FieldErrors,
    },
    #[error("{0}")]
    ParseError(String),
    #[error("authentication credentials were not provided")]
    NotAuthenticated,
    #[error("the token is not valid or has expired")]
    TokenNotValid,
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// The password was right; the account asks for a second factor: which ones, and with a
    /// passkey, the ceremony to answer.
    #[error("a second factor is required: a code from the authenticator app, a passkey or a recovery code")]
    MfaRequired(Box<MfaChallenge>),
    #[error("the one-time code is wrong or was already used")]
    MfaInvalid,
    /// A wrong TOTP code inside a body (`confirm`, `disable`): a 400, not a 401.
    #[error("the one-time code is wrong or was already used")]
    MfaCodeRejected,
    #[error("the API key is not valid")]
    ApiKeyInvalid,
    #[error("the API key has been revoked")]
    ApiKeyRevoked,
    #[error("the API key has expired")]
    ApiKeyExpired,
    #[error("this refresh token was already used; the session has been revoked")]
    TokenReused,
    #[error("the organization's monthly credits are insufficient: {0}")]
    InsufficientCredits(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// The scope missing from an API key, if a single scope would grant the call.
    #[error("{}", insufficient_scope_message(.0.as_deref()))]
    InsufficientScope(Option<&'static str>),
    #[error("this endpoint needs an interactive session (log in with a password); API keys cannot use it")]
    InteractiveSessionRequired,
    /// A session opened with a temporary password, before its user chose their own.
    #[error("your password is temporary: choose your own with POST /api/auth/password/ first")]
    PasswordChangeRequired,
    /// The organization requires MFA of the session's user, who has none yet.
    #[error("your organization requires multi-factor authentication: set it up first (Settings > Security)")]
    MfaEnrollmentRequired,
    /// A key (or change to one) the organization's security policy forbids: the rule in the
    /// message, the field that breaks it in `errors`.
    #[error("{message}")]
    PolicyViolation {
        message: String,
        errors: FieldErrors,
    },
    #[error("{0}")]
    ScopeExceedsRole(String),
    #[error("this API key may not be used from this address")]
    IpNotAllowed,
    /// The site's directory knows the user but gives them no role here (or no account here
    /// and no provisioning).
    #[error("{0}")]
    SsoNotAllowed(String),
    /// The address signs in through its organization's identity provider (`enforce`), whose
    /// id the answer carries.
    #[error("this address signs in through {name}; use \"Sign in with {name}\"")]
    SsoRequired {
        provider: crate::domain::Id,
        name: String,
    },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(u64),
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("{message}")]
    Throttled { message: String, retry_after: u64 },
    #[error("the server is busy; try again shortly")]
    Unavailable { retry_after: u64 },
    /// The site's directory did not answer (or refused the service account): what it is.
    #[error("{0}")]
    DirectoryUnavailable(String),
    /// The change is committed, but not every server confirmed it in time.
    #[error("the change is committed, but these servers did not confirm it within {waited:?}: {servers}")]
    NotConfirmed {
        servers: String,
        waited: std::time::Duration,
    },
    /// This server has not been able to follow the database's change feed within its lease.
    #[error("this server is catching up with the database; try again shortly")]
    NotCurrent,
    #[error("internal error")]
    Internal(String),
}

/// What `401 mfa_required` offers: the account's methods (`totp`, `webauthn`,
/// `recovery_code`) and, with a passkey, `{challenge_id, publicKey}`.
#[derive(Debug, Default)]
pub struct MfaChallenge {
    pub methods: Vec<&'static str>,
    pub webauthn: Option<serde_json::Value>,
}

fn insufficient_scope_message(scope: Option<&str>) -> String {
    match scope {
        Some(scope) => format!("this API key lacks the scope `{scope}`"),
        None => "this API key's scopes do not cover this endpoint".into(),
    }
}

impl ApiError {
    /// `400 invalid` naming one field.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        let mut errors = FieldErrors::new();
        errors.insert(field.to_string(), vec![problem.clone()]);
        ApiError::Invalid {
            message: format!("{field}: {problem}"),
            errors,
        }
    }

    /// `400 invalid` for several fields at once.
    pub fn fields(errors: FieldErrors) -> Self {
        let message = errors
            .iter()
            .map(|(field, problems)| format!("{field}: {}", problems.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::Invalid { message, errors }
    }

    /// `403 policy_violation`: `field` breaks the policy's `rule`, which the message names
    /// before saying it in words (the field's error says it in words only).
    pub fn policy(field: &str, rule: &str, words: impl Into<String>) -> Self {
        let words = words.into();
        let mut errors = FieldErrors::new();
        errors.insert(field.to_string(), vec![words.clone()]);
        ApiError::PolicyViolation {
            message: format!("{rule}: {words}"),
            errors,
        }
    }

    pub fn denied(message: impl Into<String>) -> Self {
        ApiError::PermissionDenied(message.into())
    }

    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            Invalid { .. } | ParseError(_) | MfaCodeRejected => 400,
            NotAuthenticated | TokenNotValid | InvalidCredentials | MfaRequired(_) | MfaInvalid
            | ApiKeyInvalid | ApiKeyRevoked | ApiKeyExpired | TokenReused => 401,
            InsufficientCredits(_) => 402,
            PermissionDenied(_)
            | InsufficientScope(_)
            | InteractiveSessionRequired
            | PasswordChangeRequired
            | MfaEnrollmentRequired
            | PolicyViolation { .. }
            | ScopeExceedsRole(_)
            | IpNotAllowed
            | SsoNotAllowed(_)
            | SsoRequired { .. } => 403,
            NotFound => 404,
            MethodNotAllowed { .. } => 405,
            RequestTimeout => 408,
            Conflict(_) => 409,
            PayloadTooLarge(_) => 413,
            UnsupportedMediaType => 415,
            Throttled { .. } => 429,
            Internal(_) => 500,
            Unavailable { .. } | NotConfirmed { .. } | NotCurrent | DirectoryUnavailable(_) => 503,
        }
    }

    /// The stable machine code of the contract's error table.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            Invalid { .. } => "invalid",
            ParseError(_) => "parse_error",
            NotAuthenticated => "not_authenticated",
            TokenNotValid => "token_not_valid",
            InvalidCredentials => "invalid_credentials",
            MfaRequired(_) => "mfa_required",
            MfaInvalid | MfaCodeRejected => "mfa_invalid",
            ApiKeyInvalid => "api_key_invalid",
            ApiKeyRevoked => "api_key_revoked",
            ApiKeyExpired => "api_key_expired",
            TokenReused => "token_reused",
            InsufficientCredits(_) => "insufficient_credits",
            PermissionDenied(_) => "permission_denied",
            InsufficientScope(_) => "insufficient_scope",
            InteractiveSessionRequired => "interactive_session_required",
            PasswordChangeRequired => "password_change_required",
            MfaEnrollmentRequired => "mfa_enrollment_required",
            PolicyViolation { .. } => "policy_violation",
            ScopeExceedsRole(_) => "scope_exceeds_role",
            IpNotAllowed => "ip_not_allowed",
            SsoNotAllowed(_) => "sso_not_allowed",
            SsoRequired { .. } => "sso_required",
            NotFound => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            RequestTimeout => "request_timeout",
            Conflict(_) => "conflict",
            PayloadTooLarge(_) => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Throttled { .. } => "throttled",
            Unavailable { .. } | NotConfirmed { .. } | NotCurrent | DirectoryUnavailable(_) => {
                "unavailable"
            }
            Internal(_) => "internal_error",
        }
    }

    /// What the client may read: for a 500, never the cause.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "internal error; the server log has the details under this request id".into()
            }
            other => other.to_string(),
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Throttled { retry_after, .. } | ApiError::Unavailable { retry_after } => {
                Some(*retry_after)
            }
            ApiError::NotConfirmed { .. } | ApiError::NotCurrent => Some(1),
            ApiError::DirectoryUnavailable(_) => Some(5),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(what) => ApiError::Conflict(what),
            StoreError::InsufficientCredits(what) => ApiError::InsufficientCredits(what),
            StoreError::Unavailable { trouble, cause } => {
                crate::telemetry::database_unavailable(trouble.as_str());
                tracing::warn!(%trouble, %cause, "the database is unavailable; answering 503");
                ApiError::Unavailable {
                    retry_after: trouble.retry_after(),
                }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_never_reach_the_client() {
        let err = ApiError::from(StoreError::Database("no such table: users".into()));
        assert_eq!(err.status(), 500);
        assert_eq!(err.code(), "internal_error");
        assert!(!err.public_message().contains("users"));
    }

    #[test]
    fn database_trouble_is_a_503_with_retry_after_and_no_cause() {
        use crate::store::Trouble;
        for (trouble, wait) in [
            (Trouble::Locked, 1),
            (Trouble::Full, 5),
            (Trouble::ReadOnly, 5),
        ] {
            let err = ApiError::from(StoreError::Unavailable {
                trouble,
                cause: "database or disk is full: /var/lib/claribi/claribi.db".into(),
            });
            assert_eq!(err.status(), 503);
            assert_eq!(err.code(), "unavailable");
            assert_eq!(err.retry_after(), Some(wait));
            assert!(!err.public_message().contains("/var/lib"));
        }
    }

    #[test]
    fn field_errors_name_the_field() {
        let err = ApiError::field("email", "is not a valid email address");
        assert_eq!(err.status(), 400);
        let ApiError::Invalid { errors, message } = &err else {
            panic!("not invalid")
        };
        assert_eq!(errors["email"], vec!["is not a valid email address"]);
        assert!(message.contains("email"));
    }

    #[test]
    fn scope_message_names_the_scope() {
        let err = ApiError::InsufficientScope(Some("reports:delete"));
        assert!(err.public_message().contains("reports:delete"));
        assert_eq!(err.status(), 403);
    }
}
