//! Notices of API keys about to expire (contract 10.4): an email to whoever answers for the
//! key and a signed webhook, once per key and threshold, across restarts and servers.
//!
//! Every server, every `notify.interval`, on a task of its own (never holding a request):
//! 1. looks for usable keys crossing one of `notify.key_expiry_days` and makes their notices,
//!    once: the table's unique key lets only the first server's insert in;
//! 2. claims the notices due that no server holds (for `CLAIM` seconds, under a token of its
//!    own), sends each within `SEND_DEADLINE`, and marks it sent, or failed with the next
//!    attempt after a backoff (one interval, doubling, at most 6 hours). A key revoked, rotated
//!    or expired before its notice leaves (as committed when it is claimed) drops it.
//!
//! A send is bounded well inside its claim, so no other server takes a notice over while it is
//! being sent. Only a server killed between a send and its record sends that notice again, once
//! the claim runs out: at least once, exactly once unless a crash falls in that window. The
//! webhook carries `X-Claribi-Delivery: <notice id>`, the same on such a repeat, for receivers
//! that want to drop it.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use sha2::Sha256;

use super::AppState;
use crate::config::NotifyConfig;
use crate::domain::{now, Id, Timestamp, UnixTime};
use crate::store::notices::{self, Candidate, Claim, Due};

/// How long a server holds a notice it is sending: four times the longest send.
const CLAIM: i64 = 4 * SEND_DEADLINE.as_secs() as i64;
/// Notices sent per round at most (the rest wait for the next round).
const BATCH: u32 = 50;
/// Keys given notices per round at most (the rest are found in the next round).
const KEYS_PER_ROUND: usize = 500;
/// The longest wait between two attempts.
const MAX_BACKOFF: i64 = 6 * 3_600;
/// One send's deadline, the whole SMTP conversation or webhook exchange.
const SEND_DEADLINE: Duration = Duration::from_secs(30);

/// The threshold a key is past now: the nearest of `days` (in days before expiry) that the
/// key's remaining time has reached and its whole lifetime exceeded (a key made for 30 days
/// is not "30 days from expiry" news); `None` before the first.
pub fn crossed(
    days: &[u32],
    created_at: UnixTime,
    expires_at: UnixTime,
    now: UnixTime,
) -> Option<i64> {
    days.iter()
        .map(|d| i64::from(*d))
        .filter(|d| expires_at - now <= d * 86_400 && expires_at - created_at > d * 86_400)
        .min()
}

/// The wait before attempt `attempts + 1`: `unit` seconds (the interval), doubling, at most
/// `MAX_BACKOFF`.
pub fn backoff(unit: i64, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    unit.max(1).saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Whole days left, rounded up (a key expiring in 6 days and 23 hours has 7 days left).
pub fn days_left(expires_at: UnixTime, now: UnixTime) -> i64 {
    ((expires_at - now).max(0) + 86_399) / 86_400
}

/// `sha256=` and the hex HMAC-SHA256 of `body` with `secret`: `X-Claribi-Signature`.
pub fn signature(secret: &str, body: &[u8]) -> Result<String, String> {
    // HMAC takes a key of any length: this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .map_err(|e| format!("the webhook's key: {e}"))?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        crate::domain::hex(&mac.finalize().into_bytes())
    ))
}

/// The email relay, built once from `notify.smtp_url`.
struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

fn relay(config: &NotifyConfig) -> Result<Option<Relay>, String> {
    if config.smtp_url.is_empty() {
        return Ok(None);
    }
    let url = url::Url::parse(&config.smtp_url).map_err(|e| format!("notify.smtp_url: {e}"))?;
    let host = url.host_str().unwrap_or_default().to_string();
    let tls = TlsParameters::new(host.clone()).map_err(|e| format!("notify.smtp_url: {e}"))?;
    let credentials = !url.username().is_empty();
    let (tls, port) = match url.scheme() {
        "smtps" => (Tls::Wrapper(tls), 465),
        // Credentials never cross in clear: with them, STARTTLS is required, not offered.
        _ if credentials => (Tls::Required(tls), 25),
        _ => (Tls::Opportunistic(tls), 25),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(url.port().unwrap_or(port))
        .tls(tls)
        .timeout(Some(SEND_DEADLINE));
    if credentials {
        let (user, password) = credentials_of(&url)?;
        builder = builder.credentials(Credentials::new(user, password));
    }
    let from: Mailbox = config
        .from
        .trim()
        .parse()
        .map_err(|e| format!("notify.from: {e}"))?;
    Ok(Some(Relay {
        transport: builder.build(),
        from,
    }))
}

/// The user and password of an SMTP address, which the URL keeps percent-encoded.
fn credentials_of(url: &url::Url) -> Result<(String, String), String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|d| d.into_owned())
            .map_err(|_| "notify.smtp_url: credentials are not UTF-8".to_string())
    };
    Ok((
        decode(url.username())?,
        decode(url.password().unwrap_or_default())?,
    ))
}

/// Starts this server's notices on a task of its own; `None` when `notify` sends nowhere. A
/// relay or sender that cannot be used is an error at start, not a silent loss of notices.
pub fn start(app: &AppState) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let config = app.config.notify.clone();
    if !config.enabled() {
        return Ok(None);
    }
    let relay = relay(&config)?;
    Ok(Some(tokio::spawn(run(app.clone(), config, relay))))
}

async fn run(app: AppState, config: NotifyConfig, relay: Option<Relay>) {
    let mut tick = tokio::time::interval(config.interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = make_notices(&app, &config).await {
            tracing::warn!(error = %e, "looking for keys about to expire failed");
        }
        // What is already due goes out whatever the look found.
        if let Err(e) = send_due(&app, &config, relay.as_ref()).await {
            tracing::warn!(error = %e, "sending key expiry notices failed");
        }
    }
}

/// A key past a threshold, and the channels whose notice for it is still to be made.
struct Crossed {
    key: Candidate,
    threshold: i64,
    email: bool,
    webhook: bool,
}

/// Makes the notices of the keys that crossed a threshold since the last look: the keys are
/// read in a read transaction; only those with notices to make take a write, in one batch.
async fn make_notices(app: &AppState, config: &NotifyConfig) -> Result<(), String> {
    let days = config.key_expiry_days.clone();
    let farthest = i64::from(days.iter().copied().max().unwrap_or(0));
    let (email, webhook) = (!config.smtp_url.is_empty(), !config.webhook_url.is_empty());
    let at = now();
    let candidates = app
        .store
        .read(move |db| notices::candidates(db, at, at + farthest * 86_400))
        .await
        .map_err(|e| e.to_string())?;
    // Each channel on its own: a server without SMTP that got there first made only the
    // webhook's notice, and the email's is still to be made.
    let news = |noticed: Option<i64>, threshold: i64| noticed.is_none_or(|n| n > threshold);
    let crossed: Vec<Crossed> = candidates
        .into_iter()
        .filter_map(|key| {
            let threshold = crossed(&days, key.created_at, key.expires_at, at)?;
            let (email, webhook) = (
                email && news(key.noticed_email, threshold),
                webhook && news(key.noticed_webhook, threshold),
            );
            (email || webhook).then_some(Crossed {
                key,
                threshold,
                email,
                webhook,
            })
        })
        .take(KEYS_PER_ROUND)
        .collect();
    if crossed.is_empty() {
        return Ok(());
    }
    let made = app
        .store
        .write(move |db| {
            let mut made = 0;
            for c in &crossed {
                made += make_for(db, c, at)?;
            }
            Ok(made)
        })
        .await
        .map_err(|e| e.to_string())?;
    if made > 0 {
        tracing::info!(notices = made, "keys about to expire: notices to send");
    }
    Ok(())
}

fn make_for(
    db: &crate::store::Db<'_>,
    c: &Crossed,
    at: UnixTime,
) -> crate::store::StoreResult<usize> {
    let (key, threshold) = (&c.key, c.threshold);
    let mut made = 0;
    notices::drop_farther(db, key.key_id, threshold)?;
    if c.email {
        for address in notices::recipients(db, key.user_id)? {
            made += usize::from(notices::make(
                db, key.key_id, threshold, "email", &address, at,
            )?);
        }
    }
    if c.webhook {
        made += usize::from(notices::make(db, key.key_id, threshold, "webhook", "", at)?);
    }
    Ok(made)
}

/// Claims, sends and marks the notices due.
async fn send_due(
    app: &AppState,
    config: &NotifyConfig,
    relay: Option<&Relay>,
) -> Result<(), String> {
    let mut channels: Vec<&'static str> = Vec::new();
    if relay.is_some() {
        channels.push("email");
    }
    if !config.webhook_url.is_empty() {
        channels.push("webhook");
    }
    let due = app
        .store
        .read(move |db| notices::due(db, now(), BATCH, &channels))
        .await
        .map_err(|e| e.to_string())?;
    for notice in due {
        let id = notice.id;
        let token = claim_token();
        let held = token.clone();
        let claim = app
            .store
            .write(move |db| {
                let at = now();
                notices::claim(db, id, at, at + CLAIM, &held)
            })
            .await
            .map_err(|e| e.to_string())?;
        match claim {
            Claim::Taken => continue, // another server has it
            Claim::Drop => {
                app.store
                    .write(move |db| notices::dropped(db, id, &token))
                    .await
                    .map_err(|e| e.to_string())?;
                continue;
            }
            Claim::Send => {}
        }
        let sending = async {
            match (notice.channel.as_str(), relay) {
                ("email", Some(relay)) => send_email(relay, &notice).await,
                ("webhook", _) if !config.webhook_url.is_empty() => {
                    send_webhook(app, config, &notice).await
                }
                // The channel was configured when the notice was made and is not now.
                _ => Err("this channel is not configured on this server".to_string()),
            }
        };
        let outcome = tokio::time::timeout(SEND_DEADLINE, sending)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {}s", SEND_DEADLINE.as_secs())));
        let attempts = notice.attempts;
        match outcome {
            Ok(()) => {
                tracing::info!(
                    key = %notice.prefix,
                    channel = %notice.channel,
                    recipient = %notice.recipient,
                    days = notice.threshold_days,
                    "key expiry notice sent"
                );
                let recorded = app
                    .store
                    .write(move |db| notices::sent(db, id, &token, now()))
                    .await
                    .map_err(|e| e.to_string())?;
                if !recorded {
                    tracing::warn!(
                        notice = id,
                        "a key expiry notice was sent after its claim ran out"
                    );
                }
            }
            Err(error) => {
                let unit = i64::try_from(config.interval.0.as_secs()).unwrap_or(MAX_BACKOFF);
                let next = now() + backoff(unit, attempts);
                tracing::warn!(
                    key = %notice.prefix,
                    channel = %notice.channel,
                    error = %error,
                    retry_in_seconds = next - now(),
                    "key expiry notice not sent"
                );
                app.store
                    .write(move |db| notices::failed(db, id, &token, next, &error))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// A claim's own token: 16 random bytes, hex.
fn claim_token() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    crate::domain::hex(&bytes)
}

/// "in 7 days", "tomorrow", "today".
fn when(days: i64) -> String {
    match days {
        0 => "today".into(),
        1 => "within a day".into(),
        n => format!("in {n} days"),
    }
}

async fn send_email(relay: &Relay, notice: &Due) -> Result<(), String> {
    let to: Mailbox = notice
        .recipient
        .parse()
        .map_err(|e| format!("recipient {}: {e}", notice.recipient))?;
    let at = now();
    let expires = notice.expires_at.unwrap_or(at);
    let days = days_left(expires, at);
    let (whose, what_to_do) = if notice.owner_is_service_account {
        (
            format!("the service account \"{}\"", notice.owner_name),
            "Make it a new key in the console (Settings > Service accounts, Keys), put the new \
             key where this one is used, then revoke this one.",
        )
    } else {
        (
            "your account".to_string(),
            "Rotate it in the console (Settings > Developer > API keys, Rotate), or make a new \
             key and replace it where it is used.",
        )
    };
    let body = format!(
        "The API key \"{name}\" ({prefix}) of {whose} in {organization} expires {when}, at {at} \
         (UTC).\n\nIntegrations that use it will be refused from then on. {what_to_do}\n\n\
         -- claribi\n",
        name = notice.key_name,
        prefix = notice.prefix,
        organization = notice.organization,
        when = when(days),
        at = crate::domain::format_rfc3339(expires),
    );
    let message = Message::builder()
        .from(relay.from.clone())
        .to(to)
        .subject(format!(
            "API key \"{}\" ({}) expires {}",
            notice.key_name,
            notice.prefix,
            when(days)
        ))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("the message: {e}"))?;
    relay
        .transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP: {e}"))
}

#[derive(Serialize)]
struct WebhookKey<'a> {
    id: Id,
    prefix: &'a str,
    name: &'a str,
    expires_at: Option<Timestamp>,
}

#[derive(Serialize)]
struct WebhookOrganization<'a> {
    id: Id,
    name: &'a str,
}

/// Whom the key acts as.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WebhookOwner<'a> {
    User { id: Id, email: &'a str },
    ServiceAccount { id: Id, name: &'a str },
}

/// The webhook's body (contract 10.4).
#[derive(Serialize)]
struct WebhookBody<'a> {
    event: &'static str,
    key: WebhookKey<'a>,
    organization: WebhookOrganization<'a>,
    owner: WebhookOwner<'a>,
    days_left: i64,
}

async fn send_webhook(app: &AppState, config: &NotifyConfig, notice: &Due) -> Result<(), String> {
    let owner = if notice.owner_is_service_account {
        WebhookOwner::ServiceAccount {
            id: notice.owner_id,
            name: &notice.owner_name,
        }
    } else {
        WebhookOwner::User {
            id: notice.owner_id,
            email: &notice.owner_email,
        }
    };
    let body = WebhookBody {
        event: "api_key.expiring",
        key: WebhookKey {
            id: notice.key_id,
            prefix: &notice.prefix,
            name: &notice.key_name,
            expires_at: notice.expires_at.map(Timestamp),
        },
        organization: WebhookOrganization {
            id: notice.organization_id,
            name: &notice.organization,
        },
        owner,
        days_left: days_left(notice.expires_at.unwrap_or(0), now()),
    };
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let signed = signature(&config.webhook_secret, &body)?;
    let delivery = notice.id.to_string();
    app.http
        .post_json(
            &config.webhook_url,
            &[
                ("x-claribi-signature", &signed),
                ("x-claribi-delivery", &delivery),
            ],
            body,
        )
        .await
        .map(|_| ())
        // The address may carry a token in its query: logs and the table get it without.
        .map_err(|e| {
            e.to_string().replace(
                &config.webhook_url,
                &crate::config::redact_url_query(&config.webhook_url),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn the_nearest_threshold_reached_and_never_one_the_key_was_born_inside() {
        let days = [30, 7, 1];
        let made = 1_000 * DAY;
        // A 90-day key: nothing until 30 days are left, then 30, 7 and 1 in turn.
        let expires = made + 90 * DAY;
        assert_eq!(crossed(&days, made, expires, expires - 31 * DAY), None);
        assert_eq!(crossed(&days, made, expires, expires - 30 * DAY), Some(30));
        assert_eq!(crossed(&days, made, expires, expires - 8 * DAY), Some(30));
        assert_eq!(crossed(&days, made, expires, expires - 7 * DAY), Some(7));
        assert_eq!(crossed(&days, made, expires, expires - 3_600), Some(1));
        // Down for ten days past the 30-day mark: the 7-day notice, not both.
        assert_eq!(crossed(&days, made, expires, expires - 5 * DAY), Some(7));
        // A 30-day key is not news at its birth; its 7-day mark is.
        let month = made + 30 * DAY;
        assert_eq!(crossed(&days, made, month, made), None);
        assert_eq!(crossed(&days, made, month, month - 7 * DAY), Some(7));
    }

    #[test]
    fn backoff_doubles_from_the_interval_to_six_hours() {
        assert_eq!(backoff(60, 0), 60);
        assert_eq!(backoff(60, 1), 120);
        assert_eq!(backoff(60, 5), 1_920);
        assert_eq!(backoff(60, 9), MAX_BACKOFF);
        assert_eq!(backoff(60, i64::MAX), MAX_BACKOFF);
        assert_eq!(backoff(60, -3), 60);
        assert_eq!(backoff(1, 3), 8);
    }

    #[test]
    fn url_credentials_are_decoded() {
        let url = url::Url::parse("smtp://mail%40example.com:p%3Ass%25word@relay:587").unwrap();
        assert_eq!(
            credentials_of(&url).unwrap(),
            ("mail@example.com".to_string(), "p:ss%word".to_string())
        );
    }

    #[test]
    fn days_left_round_up_and_the_signature_is_rfc_2104() {
        assert_eq!(days_left(10 * DAY, 3 * DAY + 3_600), 7);
        assert_eq!(days_left(10 * DAY, 3 * DAY), 7);
        assert_eq!(days_left(10 * DAY, 11 * DAY), 0);
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?").unwrap(),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
