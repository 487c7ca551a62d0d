//! The read-only page a public link opens for people at `/s/{token}`: a report's Markdown
//! rendered with no raw HTML let through, a dashboard's widgets as labelled values, dates in
//! words. Styled by the console's stylesheet and served under its own policy (`POLICY`: no
//! script, no inline style), so nothing in a shared text can run or restyle the page.

use std::fmt::Write as _;

use pulldown_cmark::{
    Alignment, CodeBlockKind, CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd,
};
use serde_json::Value;
use time::{macros::format_description, OffsetDateTime};

use crate::domain::{format_rfc3339, UnixTime};
use crate::store::dashboards::Dashboard;
use crate::store::reports::Report;

/// What the page may load: the stylesheet, from this server; no script, image, frame or form.
pub const POLICY: &str = "default-src 'none'; style-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// How deep a widget's nested settings are drawn as lists before the rest is shown as text.
const WIDGET_DEPTH: usize = 3;

pub fn report(r: &Report) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<p class=\"muted\">Report{}</p>",
        r.completed_at
            .map(|at| format!(", completed {}", date(at)))
            .unwrap_or_default()
    );
    if !r.summary.is_empty() {
        let _ = writeln!(body, "<p class=\"lead\">{}</p>", escape(&r.summary));
    }
    let _ = writeln!(
        body,
        "<article class=\"card markdown\">\n{}</article>",
        markdown(&r.content)
    );
    page(&r.title, &body)
}

pub fn dashboard(d: &Dashboard) -> String {
    let mut body = String::new();
    let refreshed = d
        .last_refreshed_at
        .map(|at| format!("last refreshed {}", date(at)))
        .unwrap_or_else(|| "never refreshed".into());
    let _ = writeln!(
        body,
        "<p class=\"muted\">Dashboard, updated {}, {refreshed}</p>",
        date(d.updated_at)
    );
    if !d.description.is_empty() {
        let _ = writeln!(body, "<p class=\"lead\">{}</p>", escape(&d.description));
    }
    let widgets: Vec<Value> = serde_json::from_str(&d.widgets).unwrap_or_default();
    if widgets.is_empty() {
        body.push_str("<p class=\"muted\">This dashboard has no widgets.</p>\n");
    } else {
        body.push_str("<div class=\"widgets\">\n");
        for widget in &widgets {
            body.push_str(&self::widget(widget));
        }
        body.push_str("</div>\n");
    }
    page(&d.name, &body)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{t} - clariBI</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n<body>\n\
         <main class=\"narrow shared\">\n<h1>{t}</h1>\n{body}\
         <p class=\"muted\">Shared from clariBI, read-only.</p>\n</main>\n</body>\n</html>\n",
        t = escape(title)
    )
}

/// One widget: its title (or its type) over its other settings, each labelled.
fn widget(w: &Value) -> String {
    let Value::Object(fields) = w else {
        return format!("<section class=\"card widget\">{}</section>\n", value(w, 0));
    };
    let kind = fields
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("widget");
    let title = fields.get("title").and_then(|t| match t {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let title = title.as_deref();
    let mut out = String::from("<section class=\"card widget\">\n");
    let _ = writeln!(out, "<h2>{}</h2>", escape(title.unwrap_or(&label(kind))));
    if title.is_some() {
        let _ = writeln!(out, "<p class=\"muted\">{}</p>", escape(&label(kind)));
    }
    let rest: Vec<_> = fields
        .iter()
        .filter(|(k, _)| *k != "type" && *k != "title")
        .collect();
    if !rest.is_empty() {
        out.push_str(&fields_list(rest, 1));
    }
    out.push_str("</section>\n");
    out
}

fn fields_list<'a>(
    fields: impl IntoIterator<Item = (&'a String, &'a Value)>,
    depth: usize,
) -> String {
    let mut out = String::from("<dl class=\"details\">");
    for (k, v) in fields {
        let _ = write!(
            out,
            "<dt>{}</dt><dd>{}</dd>",
            escape(&label(k)),
            value(v, depth)
        );
    }
    out.push_str("</dl>\n");
    out
}

fn value(v: &Value, depth: usize) -> String {
    match v {
        Value::Null => "&mdash;".into(),
        Value::Bool(b) => (if *b { "yes" } else { "no" }).into(),
        Value::Number(n) => escape(&n.to_string()),
        Value::String(s) => escape(s),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => items
            .iter()
            .map(|i| value(i, depth))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(fields) if depth < WIDGET_DEPTH => fields_list(fields, depth + 1),
        Value::Array(items) if depth < WIDGET_DEPTH => {
            let items: String = items
                .iter()
                .map(|i| format!("<li>{}</li>", value(i, depth + 1)))
                .collect();
            format!("<ul>{items}</ul>")
        }
        deeper => format!("<code>{}</code>", escape(&deeper.to_string())),
    }
}

/// `chart_type` -> `Chart type`.
fn label(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// `8 December 2026, 01:24 UTC`, in a `<time>` that carries the exact instant.
fn date(at: UnixTime) -> String {
    let words = OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| format_rfc3339(at));
    format!("<time datetime=\"{}\">{words}</time>", format_rfc3339(at))
}

/// CommonMark to HTML where nothing written as HTML reaches the page as HTML: raw HTML blocks
/// are shown as code and inline HTML as text, links keep only `http`, `https` and `mailto`
/// addresses (others become their text), and images become links to their address (a
/// shared page loads nothing from elsewhere). Headings go one level down, under the page's
/// own title; tables lose their column alignment, which pulldown-cmark writes as an inline
/// style the page's policy refuses.
fn markdown(text: &str) -> String {
    // For each link or image open: whether its start was kept (its end is kept with it).
    let mut open_links: Vec<bool> = Vec::new();
    let events = Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH)
        .filter_map(move |event| match event {
            Event::Start(Tag::HtmlBlock) => {
                Some(Event::Start(Tag::CodeBlock(CodeBlockKind::Indented)))
            }
            Event::End(TagEnd::HtmlBlock) => Some(Event::End(TagEnd::CodeBlock)),
            Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => Some(Event::Start(Tag::Heading {
                level: lower(level),
                id,
                classes,
                attrs,
            })),
            Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(lower(level)))),
            Event::Start(Tag::Table(columns)) => Some(Event::Start(Tag::Table(vec![
                Alignment::None;
                columns.len()
            ]))),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            })
            | Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                // Links do not nest: one inside a kept link is dropped.
                let keep = !open_links.contains(&true)
                    && (link_type == LinkType::Email || safe_address(&dest_url));
                open_links.push(keep);
                keep.then_some(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            }
            Event::End(TagEnd::Link | TagEnd::Image) => open_links
                .pop()
                .unwrap_or(false)
                .then_some(Event::End(TagEnd::Link)),
            other => Some(other),
        });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// One heading level down (`#` is the page's second level), `######` staying the sixth.
fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
    }
}

fn safe_address(url: &CowStr<'_>) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_its_structure() {
        let html = markdown("# Title\n\n## Source\n- name: **CRM**\n- type: `database`\n");
        assert!(
            html.contains("<h2>Title</h2>"),
            "one level under the page's title: {html}"
        );
        assert!(html.contains("<h3>Source</h3>"), "{html}");
        assert!(
            html.contains("<li>name: <strong>CRM</strong></li>"),
            "{html}"
        );
        assert!(html.contains("<code>database</code>"), "{html}");
    }

    #[test]
    fn no_html_written_in_markdown_reaches_the_page_as_html() {
        let html = markdown(
            "<script>alert(1)</script>\n\nText <img src=x onerror=alert(2)> and \
             <a href=\"javascript:alert(3)\">a</a>\n\n<div onclick=\"x\">block</div>\n",
        );
        for raw in ["<script", "<img", "<a ", "<div"] {
            assert!(!html.contains(raw), "{raw} passed through: {html}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(2)&gt;"),
            "{html}"
        );
    }

    #[test]
    fn links_keep_only_web_and_mail_addresses_and_images_load_nothing() {
        let html = markdown(
            "[ok](https://example.com/a) [mail](mailto:a@b.c) [bad](javascript:alert(1)) \
             [data](data:text/html,x) [rel](/api/v1/users/) ![chart](https://example.com/c.png)",
        );
        assert!(
            html.contains("<a href=\"https://example.com/a\">ok</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"mailto:a@b.c\">mail</a>"), "{html}");
        assert!(
            !html.contains("javascript:") && !html.contains("data:"),
            "{html}"
        );
        assert!(html.contains(" bad ") && html.contains(" data ") && html.contains(" rel "));
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com/c.png\">chart</a>"),
            "{html}"
        );
    }

    #[test]
    fn tricky_links_are_dropped_and_none_nests() {
        let html = markdown(
            "<javascript:alert(1)> [x][ref] [y](jav&#x61;script:alert(2)) \
             [q](https://e.example/\"onmouseover=\"alert(3)) <ops@example.com> \
             [![a](https://ok.example/i.png)](javascript:alert(4)) \
             [![b](https://img.example/b.png)](https://out.example)\n\n\
             [ref]: javascript:alert(5)\n",
        );
        // Shown as text at most, never as an address.
        assert!(
            !html.to_ascii_lowercase().contains("href=\"javascript"),
            "{html}"
        );
        assert!(
            html.contains(" x y "),
            "dropped links keep their text: {html}"
        );
        assert!(!html.contains("onmouseover=\""), "{html}");
        assert!(html.contains("href=\"mailto:ops@example.com\""), "{html}");
        assert_eq!(
            html.matches("<a ").count(),
            html.matches("</a>").count(),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://out.example\">b</a>"),
            "no link in a link: {html}"
        );
        assert!(
            html.contains("<a href=\"https://ok.example/i.png\">a</a>"),
            "{html}"
        );
    }

    #[test]
    fn tables_keep_their_cells_but_not_an_inline_style() {
        let html = markdown("| a | b |\n|:--|--:|\n| 1 | 2 |\n");
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
        assert!(!html.contains("style="), "{html}");
    }

    #[test]
    fn a_shared_report_escapes_its_title_and_summary_and_says_when_in_words() {
        let r = Report {
            id: 1,
            title: "<b>Q3</b>".into(),
            status: "completed".into(),
            data_source_id: Some(1),
            prompt: String::new(),
            summary: "a & \"b\"".into(),
            content: "## Figures\n- one\n".into(),
            credits_used: 5,
            created_by: None,
            created_at: 1_796_000_000,
            completed_at: Some(1_796_000_000),
        };
        let html = report(&r);
        assert!(html.contains("<title>&lt;b&gt;Q3&lt;/b&gt; - clariBI</title>"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("a &amp; &quot;b&quot;"));
        assert!(html.contains("<h3>Figures</h3>"));
        assert_eq!(html.matches("<h1>").count(), 1, "one title: {html}");
        assert!(
            html.contains(
                "<time datetime=\"2026-11-30T00:53:20Z\">30 November 2026, 00:53 UTC</time>"
            ),
            "{html}"
        );
        assert!(html.contains("href=\"/assets/app.css\""));
    }

    #[test]
    fn widgets_are_labelled_values_not_json() {
        let d = Dashboard {
            id: 1,
            name: "Sales".into(),
            description: String::new(),
            widgets: r#"[{"type":"chart","title":"Revenue <by> month","chart_type":"bar",
                "metrics":["revenue","cost"],"filters":{"region":"EU","limit":10,"live":true},
                "note":null}, {"type":"kpi_tile"}]"#
                .into(),
            created_by: None,
            created_at: 1_796_000_000,
            updated_at: 1_796_000_000,
            last_refreshed_at: None,
        };
        let html = dashboard(&d);
        assert!(html.contains("<h2>Revenue &lt;by&gt; month</h2>"), "{html}");
        assert!(html.contains("<dt>Chart type</dt><dd>bar</dd>"), "{html}");
        assert!(
            html.contains("<dt>Metrics</dt><dd>revenue, cost</dd>"),
            "{html}"
        );
        assert!(html.contains("<dt>Region</dt><dd>EU</dd>"), "{html}");
        assert!(html.contains("<dt>Live</dt><dd>yes</dd>"), "{html}");
        assert!(html.contains("<dt>Note</dt><dd>&mdash;</dd>"), "{html}");
        assert!(html.contains("<h2>Kpi tile</h2>"), "{html}");
        assert!(html.contains("never refreshed"));
        assert!(!html.contains("{\""), "no JSON blob: {html}");
    }
}
