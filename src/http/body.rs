//! Request bodies: read with a size limit (chunked too), checked to be JSON, and parsed into a
//! wire type with errors that name the field.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldErrors};

use super::request::RequestCtx;

/// Reads the whole body, refusing past `limit` bytes whether or not a Content-Length was sent.
/// An oversized body that is not huge is read to its end and dropped, so that the client,
/// still sending, receives the `413` rather than a reset connection.
pub async fn read_limited<S, B>(ctx: &RequestCtx, stream: S, limit: u64) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let drain_cap = limit.saturating_mul(16).max(1 << 20);
    let declared = ctx
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > drain_cap) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            ApiError::ParseError(format!("the request body could not be read: {e}"))
        })?;
        total += chunk.remaining() as u64;
        if total > drain_cap {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        if total > limit {
            chunk.advance(chunk.remaining());
            continue;
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    if total > limit {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    Ok(body.freeze())
}

/// A JSON body is required: `Content-Type: application/json` (parameters allowed).
pub fn require_json_content_type(ctx: &RequestCtx) -> Result<(), ApiError> {
    let is_json = ctx
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Parses `bytes` into `T` (a `deny_unknown_fields` wire type). Malformed JSON is
/// `parse_error`; a wrong shape, unknown, missing or duplicate field is `invalid` naming it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // JSON can only carry a NUL as the escape \u0000; no field of ours may hold one. The
    // answer names the field that holds it.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            if let Some(field) = nul_field(&value, "") {
                return Err(ApiError::field(&field, "must not contain NUL characters"));
            }
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        classify(&path, &inner)
    })?;
    deserializer.end().map_err(|e| classify("", &e))?;
    Ok(value)
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The path (`name`, `widgets.0.type`) of the first string or key holding a NUL character.
fn nul_field(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    let here = || {
        if path.is_empty() {
            "non_field_errors".to_string()
        } else {
            path.to_string()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, &child(path, &i.to_string()))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let inner = child(path, k);
            if k.contains('\0') {
                Some(if path.is_empty() {
                    "non_field_errors".into()
                } else {
                    path.to_string()
                })
            } else {
                nul_field(v, &inner)
            }
        }),
        _ => None,
    }
}

fn classify(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::ParseError(format!(
            "malformed JSON at line {} column {}",
            error.line(),
            error.column()
        )),
        Category::Data => {
            let text = error.to_string();
            // serde's messages end with " at line L column C"; the position is noise here.
            let text = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(head, _)| head);
            let (field, problem) = if let Some(name) = quoted_after(text, "unknown field `") {
                (join(path, &name), "is not a known field".to_string())
            } else if let Some(name) = quoted_after(text, "missing field `") {
                (join(path, &name), "is required".to_string())
            } else if let Some(name) = quoted_after(text, "duplicate field `") {
                (join(path, &name), "appears more than once".to_string())
            } else if path.is_empty() || path == "." {
                ("non_field_errors".to_string(), text.to_string())
            } else {
                (path.to_string(), text.to_string())
            };
            let mut errors = FieldErrors::new();
            errors.insert(field, vec![problem]);
            ApiError::fields(errors)
        }
    }
}

fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let end = text[start..].find('`')? + start;
    Some(text[start..end].to_string())
}

/// The dotted field name; serde_path_to_error already ends some paths with the field itself.
fn join(path: &str, field: &str) -> String {
    if path.rsplit('.').next() == Some(field) {
        path.to_string()
    } else if path.is_empty() || path == "." {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        #[allow(dead_code)]
        email: String,
        #[allow(dead_code)]
        count: Option<u32>,
    }

    fn errors(e: ApiError) -> (String, FieldErrors) {
        match e {
            ApiError::Invalid { errors, .. } => ("invalid".into(), errors),
            other => (other.code().into(), FieldErrors::new()),
        }
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        for bad in [
            &b"{"[..],
            b"{\"email\": }",
            b"",
            b"nope",
            b"{\"email\":\"a\"} trailing",
        ] {
            let err = parse_json::<Login>(bad).unwrap_err();
            assert_eq!(
                err.code(),
                "parse_error",
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        let (code, e) = errors(parse_json::<Login>(br#"{"email":"a","extra":1}"#).unwrap_err());
        assert_eq!(code, "invalid");
        assert_eq!(e["extra"], vec!["is not a known field"]);
        let (_, e) = errors(parse_json::<Login>(br#"{}"#).unwrap_err());
        assert_eq!(e["email"], vec!["is required"]);
        let (_, e) = errors(parse_json::<Login>(br#"{"email":"a","email":"b"}"#).unwrap_err());
        assert_eq!(e["email"], vec!["appears more than once"]);
        let (_, e) = errors(parse_json::<Login>(br#"{"email":5}"#).unwrap_err());
        assert!(e["email"][0].contains("invalid type"), "{e:?}");
        let (_, e) = errors(parse_json::<Login>(br#"{"email":"a","count":-1}"#).unwrap_err());
        assert!(e.contains_key("count"), "{e:?}");
        let (code, e) = errors(parse_json::<Login>(br#"[]"#).unwrap_err());
        assert_eq!(code, "invalid");
        assert!(e.contains_key("non_field_errors"), "{e:?}");
    }

    #[test]
    fn nul_characters_are_refused_naming_their_field() {
        let (code, e) = errors(parse_json::<Login>(br#"{"email":"a\u0000b"}"#).unwrap_err());
        assert_eq!(code, "invalid");
        assert!(e.contains_key("email"), "{e:?}");
        let (_, e) = errors(
            parse_json::<serde_json::Value>(br#"{"widgets":[{"type":"ok"},{"type":"x\u0000"}]}"#)
                .unwrap_err(),
        );
        assert!(e.contains_key("widgets.1.type"), "{e:?}");
        // An escaped backslash before `u0000` is no NUL.
        assert!(parse_json::<serde_json::Value>(br#"{"a":"\\u0000"}"#).is_ok());
    }
}
