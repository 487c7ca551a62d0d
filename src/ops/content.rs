//! Changes to the BI content of an organization: data sources, reports, dashboards, goals and
//! the public links that share reports and dashboards. Each is one transaction that re-checks
//! the caller's credential (`ops::change`), decides who may change what against the rows it
//! reads inside that transaction, and records its audit entry there. The caller's
//! organization and user come from the caller; the transport has validated the fields.

use rand::rngs::OsRng;
use rand::Rng;

use super::{change, Caller};
use crate::domain::{Id, Timestamp, UnixTime};
use crate::error::ApiError;
use crate::store::dashboards::{self, Dashboard};
use crate::store::data_sources::{self, DataSource};
use crate::store::goals::{self, Goal, GoalFields};
use crate::store::public_links::{self, PublicLink, Shared};
use crate::store::reports::{self, NewReport, Report};
use crate::store::StoreError;

/// A caller whose role reaches only its own content may change only what it created.
fn may_change(caller: &Caller, created_by: Option<Id>, refusal: &str) -> Result<(), ApiError> {
    if caller.may_change(created_by) {
        Ok(())
    } else {
        Err(ApiError::denied(refusal))
    }
}

fn details(pairs: &[(&str, &str)]) -> Option<String> {
    Some(crate::domain::json_object(pairs))
}

pub async fn create_data_source(
    app: &crate::ops::AppState,
    caller: &Caller,
    name: String,
    source_type: String,
) -> Result<DataSource, ApiError> {
    let (org, by) = (caller.organization_id(), caller.user_id());
    change(app, &caller.actor(), move |c| {
        Ok(data_sources::create(c.tx, org, &name, &source_type, by)?)
    })
    .await
}

pub async fn delete_data_source(
    app: &crate::ops::AppState,
    caller: &Caller,
    id: Id,
) -> Result<(), ApiError> {
    let org = caller.organization_id();
    change(app, &caller.actor(), move |c| {
        let source = data_sources::get(c.tx, org, id)?;
        data_sources::delete(c.tx, org, id)?;
        c.audit(
            "data_source.deleted",
            "data_source",
            id,
            details(&[("name", &source.name)]),
        )?;
        Ok(())
    })
    .await
}

/// What a generation asks for.
pub struct ReportRequest {
    pub title: String,
    pub prompt: String,
    pub data_source_id: Id,
}

/// Generates a report from one of the organization's data sources and charges its credits,
/// in one transaction: a generation is paid for exactly once or not at all.
pub async fn generate_report(
    app: &crate::ops::AppState,
    caller: &Caller,
    request: ReportRequest,
) -> Result<Report, ApiError> {
    let (org, by) = (caller.organization_id(), caller.user_id());
    let credits = &app.config.credits;
    let (cost, allowance) = (credits.report_generation, credits.monthly_allowance);
    let organization = app.auth.live.organization_name(org).to_string();
    change(app, &caller.actor(), move |c| {
        let source = match data_sources::get(c.tx, org, request.data_source_id) {
            Ok(source) => source,
            Err(StoreError::NotFound) => {
                return Err(ApiError::field(
                    "data_source_id",
                    "no such data source in your organization",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let figures = reports::figures(c.tx, org)?;
        let (summary, body) = compose(
            &organization,
            &source,
            &request.title,
            &request.prompt,
            figures,
        );
        Ok(reports::create(
            c.tx,
            &NewReport {
                organization_id: org,
                title: &request.title,
                data_source_id: source.id,
                prompt: &request.prompt,
                summary: &summary,
                content: &body,
                credits: cost,
                created_by: by,
            },
            allowance,
        )?)
    })
    .await
}

/// The report text: a deterministic account of what the installation knows.
fn compose(
    organization: &str,
    source: &DataSource,
    title: &str,
    prompt: &str,
    (reports, dashboards, goals, sources): (u64, u64, u64, u64),
) -> (String, String) {
    let summary = format!(
        "{title}: based on the {} data source \"{}\" of {organization}, which holds {reports} \
         earlier reports, {dashboards} dashboards, {goals} goals and {sources} data sources.",
        source.source_type.replace('_', " "),
        source.name
    );
    // The prompt is the organization's own: it stays in the report's `prompt` field and never
    // enters the content, which a public link shares.
    let question = if prompt.is_empty() {
        "No question was asked; this is an overview."
    } else {
        "This report answers the question recorded with it."
    };
    let content = format!(
        "# {}\n\n{question}\n\n## Source\n- name: {}\n- type: {}\n- status: {}\n- connected: {}\n\n\
         ## Organization figures\n- reports before this one: {reports}\n- dashboards: {dashboards}\n\
         - goals: {goals}\n- data sources: {sources}\n",
        literal(title),
        literal(&source.name),
        source.source_type,
        source.status,
        Timestamp(source.created_at)
    );
    (summary, content)
}

/// `text` as Markdown that reads as exactly that text: on one line, every character Markdown
/// gives a meaning escaped. A title or a source's name is the organization's words; written
/// into the report as they are, they could add a link or a section to the page a public link
/// shows.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '{' | '}' | '#' | '+' | '-' | '.'
            | '!' | '<' | '>' | '|' | '~' | '&' | '"' | '\'' | '=' | ':' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

pub async fn delete_report(
    app: &crate::ops::AppState,
    caller: &Caller,
    id: Id,
) -> Result<(), ApiError> {
    let org = caller.organization_id();
    let who = caller.clone();
    change(app, &caller.actor(), move |c| {
        let report = reports::get(c.tx, org, id)?;
        may_change(
            &who,
            report.created_by,
            "you may delete only reports you created",
        )?;
        let revoked = reports::delete(c.tx, org, id)?;
        c.journal_links(&revoked);
        c.audit(
            "report.deleted",
            "report",
            id,
            details(&[("title", &report.title)]),
        )?;
        Ok(())
    })
    .await
}

/// A dashboard's fields, validated; `widgets` is its JSON text.
pub struct DashboardFields {
    pub name: String,
    pub description: String,
    pub widgets: String,
}

pub async fn create_dashboard(
    app: &crate::ops::AppState,
    caller: &Caller,
    fields: DashboardFields,
) -> Result<Dashboard, ApiError> {
    let (org, by) = (caller.organization_id(), caller.user_id());
    change(app, &caller.actor(), move |c| {
        Ok(dashboards::create(
            c.tx,
            org,
            &fields.name,
            &fields.description,
            &fields.widgets,
            by,
        )?)
    })
    .await
}

/// Replaces a dashboard's fields; `edit` builds them from the dashboard as it is in the
/// transaction, so a concurrent change of another field is not undone.
pub async fn update_dashboard<E>(
    app: &crate::ops::AppState,
    caller: &Caller,
    id: Id,
    edit: E,
) -> Result<Dashboard, ApiError>
where
    E: FnOnce(Dashboard) -> DashboardFields + Send + 'static,
{
    let org = caller.organization_id();
    let who = caller.clone();
    change(app, &caller.actor(), move |c| {
        let current = dashboards::get(c.tx, org, id)?;
        may_change(
            &who,
            current.created_by,
            "you may change only dashboards you created",
        )?;
        let fields = edit(current);
        Ok(dashboards::update(
            c.tx,
            org,
            id,
            &fields.name,
            &fields.description,
            &fields.widgets,
        )?)
    })
    .await
}

pub async fn delete_dashboard(
    app: &crate::ops::AppState,
    caller: &Caller,
    id: Id,
) -> Result<(), ApiError> {
    let org = caller.organization_id();
    let who = caller.clone();
    change(app, &caller.actor(), move |c| {
        let dashboard = dashboards::get(c.tx, org, id)?;
        may_change(
            &who,
            dashboard.created_by,
            "you may delete only dashboards you created",
        )?;
        let revoked = dashboards::delete(c.tx, org, id)?;
        c.journal_links(&revoked);
        c.audit(
            "dashboard.deleted",
            "dashboard",
            id,
            details(&[("name", &dashboard.name)]),
        )?;
        Ok(())
    })
    .await
}

/// Refreshes a dashboard and charges its credits, in one transaction.
pub async fn refresh_dashboard(
    app: &crate::ops::AppState,
    caller: &Caller,
    id: Id,
) -> Result<Dashboard, ApiError> {
    let org = caller.organization_id();
    let credits = &app.config.credits;
    let (cost, allowance) = (credits.dashboard_refresh, credits.monthly_allowance);
    change(app, &caller.actor(), move |c| {
        Ok(dashboards::refresh(c.tx, org, id, cost, allowance)?)
    })
    .await
}

/// A goal's fields, validated (the owned form of `GoalFields`).
pub struct GoalSpec {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub target_value: f64,
    pub due_date: Option<String>,
    /// `None`: keep the milestones (an update) or none (a new goal).
    pub milestones: Option<Vec<(String, f64)>>,
}

impl GoalSpec {
    fn fields(&self) -> GoalFields<'_> {
        GoalFields {
            name: &self.name,
            description: &self.description,
            unit: &self.unit,
            target_value: self.target_value,
            due_date: self.due_date.as_deref(),
            milestones: self.milestones.as_deref(),
        }
    }
}

pub async fn create_goal(
    app: &crate::ops::AppState,
    caller: &Caller,
    spec: GoalSpec,
    current_value: f64,
) -> Result<Goal, ApiError> {
    let (org, by) = (caller.organization_id(), caller.user_id());
    change(app, &caller.actor(), move |c| {
        Ok(goals::create(c.tx, org, &spec.fields(), current_value, by)?)
    })
    .await
}

pub async fn update_goal(
    app: &crate::ops::AppState,
    caller: &Caller,
    id: Id,
    spec: GoalSpec,
) -> Result<Goal, ApiError> {
    let org = caller.organization_id();
    change(app, &caller.actor(), move |c| {
        Ok(goals::update(c.tx, org, id, &spec.fields())?)
    })
    .await
}

/// Records a measurement; answers the goal and its whole history as of this change.
pub async fn record_progress(
    app: &crate::ops::AppState,
    caller: &Caller,
    id: Id,
    value: f64,
) -> Result<(Goal, Vec<(UnixTime, f64)>), ApiError> {
    let org = caller.organization_id();
    change(app, &caller.actor(), move |c| {
        let goal = goals::record_progress(c.tx, org, id, value)?;
        Ok((goal, goals::history(c.tx, id)?))
    })
    .await
}

/// 32 characters of base62: about 190 random bits.
fn new_token() -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..32)
        .map(|_| BASE62[OsRng.gen_range(0..BASE62.len())] as char)
        .collect()
}

/// A new public link for a report or dashboard, replacing (revoking) the one it had.
pub async fn share(
    app: &crate::ops::AppState,
    caller: &Caller,
    shared: Shared,
    id: Id,
    expires_at: Option<UnixTime>,
) -> Result<PublicLink, ApiError> {
    let (org, by) = (caller.organization_id(), caller.user_id());
    change(app, &caller.actor(), move |c| {
        public_links::shared_exists(c.tx, org, shared, id)?;
        let (link, replaced) =
            public_links::create(c.tx, org, shared.as_str(), id, &new_token(), expires_at, by)?;
        c.journal_links(&replaced);
        c.audit("public_link.created", shared.as_str(), id, None)?;
        Ok(link)
    })
    .await
}

/// Revokes the working public link of a report or dashboard (`404` when it has none).
pub async fn unshare(
    app: &crate::ops::AppState,
    caller: &Caller,
    shared: Shared,
    id: Id,
) -> Result<(), ApiError> {
    let org = caller.organization_id();
    change(app, &caller.actor(), move |c| {
        public_links::shared_exists(c.tx, org, shared, id)?;
        let revoked = public_links::revoke(c.tx, shared.as_str(), id)?;
        c.journal_links(&revoked);
        c.audit("public_link.revoked", shared.as_str(), id, None)?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_tokens_are_long_base62_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_title_written_into_a_report_reads_as_its_text_and_nothing_more() {
        use pulldown_cmark::{Event, Parser, Tag, TagEnd};
        for title in [
            "Q4 close\n\n[Your session expired, sign in](https://evil.example)",
            "x\n## Organization figures\n- reports: 9999",
            "<img src=x onerror=alert(1)> **bold** _em_ `code` ![i](https://e/i.png)",
            "1. not a list | a | table |\n|---|---|",
            "trailing \\",
        ] {
            let markdown = format!("# {}\n", literal(title));
            let events: Vec<Event> = Parser::new(&markdown).collect();
            let text: String = events
                .iter()
                .filter_map(|e| match e {
                    Event::Text(t) => Some(t.to_string()),
                    _ => None,
                })
                .collect();
            let flat = title.replace(['\n', '\r', '\t'], " ");
            assert_eq!(text, flat.trim_end(), "{markdown}");
            assert!(
                events.iter().all(|e| matches!(
                    e,
                    Event::Text(_)
                        | Event::Start(Tag::Heading { .. })
                        | Event::End(TagEnd::Heading(_))
                )),
                "{title:?} became {events:?}"
            );
        }
    }
}
